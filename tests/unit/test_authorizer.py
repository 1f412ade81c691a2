"""ftpsd.authorizer: virtual users, permission letters, the jail (no sockets involved)."""

from __future__ import annotations

import os
import pathlib

import pytest
from pyftpdlib.authorizers import AuthenticationFailed

from ftpsd.authorizer import PERM_LETTERS, FtpsdAuthorizer, JailedFS
from ftpskit_common.passwd import User, hash_password

HASH = hash_password("pw", "pbkdf2-sha256")


@pytest.fixture
def homes(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    result = {}
    for name in ("alice", "bob", "carol"):
        result[name] = tmp_path / name
        result[name].mkdir()
    return result


@pytest.fixture
def authorizer(homes) -> FtpsdAuthorizer:
    return FtpsdAuthorizer(
        [
            User("alice", HASH, str(homes["alice"]), "rw"),
            User("bob", HASH, str(homes["bob"]), "ro"),
            User("carol", HASH, str(homes["carol"]), "upload"),
            User("ghost", HASH, str(homes["alice"].parent / "missing"), "rw"),
        ]
    )


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [
        ("alice", "pw", True),
        ("alice", "PW", False),
        ("alice", "", False),
        ("mallory", "pw", False),
        ("anonymous", "", False),
        ("ghost", "pw", False),  # home missing: the user is not loaded
    ],
)
def test_authentication(authorizer: FtpsdAuthorizer, user: str, password: str, ok: bool) -> None:
    assert authorizer.check_password(user, password) is ok
    if ok:
        authorizer.validate_authentication(user, password, None)
    else:
        with pytest.raises(AuthenticationFailed):
            authorizer.validate_authentication(user, password, None)


@pytest.mark.parametrize(
    ("user", "letter", "allowed"),
    [
        ("alice", "r", True),
        ("alice", "w", True),
        ("alice", "d", True),
        ("alice", "f", True),
        ("alice", "M", False),  # SITE CHMOD never
        ("bob", "r", True),
        ("bob", "l", True),
        ("bob", "w", False),
        ("bob", "d", False),
        ("bob", "m", False),
        ("bob", "a", False),
        ("carol", "w", True),
        ("carol", "m", True),
        ("carol", "r", False),
        ("carol", "d", False),
        ("carol", "f", False),
        ("carol", "a", False),
    ],
)
def test_permissions(authorizer: FtpsdAuthorizer, homes, user: str, letter: str, allowed: bool) -> None:
    assert authorizer.has_perm(user, letter, str(homes[user] / "x")) is allowed


def test_perm_table_covers_design() -> None:
    assert set(PERM_LETTERS) == {"ro", "rw", "upload"}


def test_homes_are_real_paths(authorizer: FtpsdAuthorizer, homes) -> None:
    assert authorizer.get_home_dir("alice") == os.path.realpath(homes["alice"])
    assert not authorizer.has_user("ghost")


class _Channel:
    """The few attributes AbstractedFS reads from its command channel."""

    use_gmt_times = True
    encoding = "utf8"
    unicode_errors = "replace"


@pytest.fixture
def jail(tmp_path: pathlib.Path) -> JailedFS:
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    (home / "sub" / "f.txt").write_text("in")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("out")
    os.symlink(outside, home / "escape-dir")
    os.symlink(outside / "secret", home / "escape-file")
    os.symlink(home / "sub" / "f.txt", home / "inner-link")
    return JailedFS(str(home), _Channel())


@pytest.mark.parametrize(
    ("ftp_path", "inside"),
    [
        ("sub/f.txt", True),
        ("/sub/f.txt", True),
        ("../../../../etc/passwd", True),  # normalised to <home>/etc/passwd: still inside
        ("/etc/passwd", True),
        ("inner-link", True),  # a symlink that stays inside is fine
        ("escape-dir", False),
        ("escape-dir/secret", False),
        ("escape-file", False),
        ("sub/../escape-file", False),
    ],
)
def test_jail_paths(jail: JailedFS, ftp_path: str, inside: bool) -> None:
    real = jail.ftp2fs(ftp_path)
    assert real.startswith(jail.root)  # ftp2fs never leaves the root lexically
    assert jail.validpath(real) is inside


def test_jail_refuses_open_and_chdir_through_symlinks(jail: JailedFS) -> None:
    with pytest.raises(PermissionError):
        jail.open(jail.ftp2fs("escape-file"), "rb")
    with pytest.raises(PermissionError):
        jail.chdir(jail.ftp2fs("escape-dir"))
    with jail.open(jail.ftp2fs("sub/f.txt"), "rb") as handle:
        assert handle.read() == b"in"


# -- SharedLimits: daemon-wide connection counts and bans -------------------------------------


def test_limits_total_and_per_ip() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    assert limits.connect("192.0.2.1", 3, 2, 600) is None
    assert limits.connect("192.0.2.1", 3, 2, 600) is None
    assert limits.connect("192.0.2.1", 3, 2, 600) == "per_ip"
    assert limits.connect("2001:db8::1", 3, 2, 600) is None
    assert limits.connect("192.0.2.9", 3, 2, 600) == "total"
    limits.disconnect("192.0.2.1", 600)
    assert limits.sessions("192.0.2.1") == 1
    assert limits.connect("192.0.2.9", 3, 2, 600) is None
    assert limits.sessions() == 3


@pytest.mark.parametrize(("threshold", "bans_at"), [(1, 1), (3, 3), (0, None)])
def test_limits_ban_after_failures(threshold: int, bans_at: int | None) -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    results = [limits.record_failure("198.51.100.7", threshold, 600) for _ in range(4)]
    assert (results.index(True) + 1 if True in results else None) == bans_at
    assert limits.banned("198.51.100.7", 600) is (bans_at is not None)
    assert not limits.banned("198.51.100.8", 600)


def test_limits_failures_outside_the_window_do_not_count() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    assert not limits.record_failure("198.51.100.7", 2, 0.0)  # window 0: every failure is the first
    assert not limits.record_failure("198.51.100.7", 2, 0.0)


def test_limits_user_cap_and_reset() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    assert limits.user_login("dave", 1)
    assert not limits.user_login("dave", 1)
    assert limits.user_login("alice", 0)
    limits.user_logout("dave")
    assert limits.user_login("dave", 1)
    limits.connect("192.0.2.1", 0, 0, 600)
    limits.reset_sessions()
    assert limits.sessions() == 0
    assert limits.user_login("dave", 1)
    limits.register("192.0.2.1", "dave")
    assert limits.sessions("192.0.2.1") == 1
    assert not limits.user_login("dave", 2)


def test_limits_shared_across_fork() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    pid = os.fork()
    if pid == 0:  # child: count a session and a ban, then leave without cleanup handlers
        limits.connect("192.0.2.1", 0, 0, 600)
        limits.record_failure("192.0.2.66", 1, 600)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert limits.sessions("192.0.2.1") == 1
    assert limits.banned("192.0.2.66", 600)


def test_limits_fail_open_when_table_is_full() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=4)
    for i in range(4):
        assert limits.connect(f"192.0.2.{i}", 0, 1, 600) is None
    # No slot left for a fifth address: it is let in (counted in the total) rather than locked out.
    assert limits.connect("192.0.2.200", 0, 1, 600) is None
    assert limits.sessions() == 5


def test_limits_file_lock_fallback_excludes_forked_workers() -> None:
    """Without POSIX semaphores the record-lock fallback still serialises the workers."""
    from ftpsd import limits as limits_module

    limits = limits_module.SharedLimits(slots=16)
    limits._lock = limits_module._FileLock()
    pid = os.fork()
    if pid == 0:
        for _ in range(300):
            limits.connect("192.0.2.1", 0, 0, 600)
        os._exit(0)
    for _ in range(300):
        limits.connect("192.0.2.1", 0, 0, 600)
    os.waitpid(pid, 0)
    assert limits.sessions("192.0.2.1") == 600
