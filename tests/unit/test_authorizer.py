"""ftpsd.authorizer: virtual users, permission letters, the jail (no sockets involved)."""

from __future__ import annotations

import os
import pathlib

import pytest
from pyftpdlib.authorizers import AuthenticationFailed

from ftpsd.authorizer import PERM_LETTERS, FtpsdAuthorizer, JailedFS
from ftpsd.passwd import User, hash_password

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
