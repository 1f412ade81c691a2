"""ftpsd.authorizer: virtual users and permission letters (no sockets; the home: test_homefs.py)."""

from __future__ import annotations

import os
import pathlib

import pytest
from pyftpdlib.authorizers import AuthenticationFailed

from ftpsd.authorizer import PERM_LETTERS, FtpsdAuthorizer
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


def _fail(limits, ip: str, threshold: int, window: float = 600) -> bool:
    """One failed password: reserve the attempt, then settle it as a failure."""
    from ftpsd.limits import Attempt

    verdict = limits.begin_attempt(ip, threshold, window)
    assert verdict in (Attempt.GO, Attempt.UNCOUNTED)
    return limits.finish_attempt(ip, False, threshold, window) if verdict is Attempt.GO else False


@pytest.mark.parametrize(("threshold", "bans_at"), [(1, 1), (3, 3), (0, None)])
def test_limits_ban_after_failures(threshold: int, bans_at: int | None) -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    results = [_fail(limits, "198.51.100.7", threshold) for _ in range(bans_at or 4)]
    assert (results.index(True) + 1 if True in results else None) == bans_at
    assert limits.banned("198.51.100.7", 600) is (bans_at is not None)
    assert not limits.banned("198.51.100.8", 600)
    # Banned: no further attempt is even reserved (the ban applies at PASS).
    verdict = limits.begin_attempt("198.51.100.7", threshold, 600)
    assert verdict.name == ("UNCOUNTED" if bans_at is None else "REFUSED")


def test_limits_attempts_in_flight_are_bounded() -> None:
    """Checks in flight at once (many sessions, many workers) never exceed the threshold: the
    rest wait (they are not failures: issue 22 row 7); only wrong passwords count."""
    from ftpsd.limits import Attempt, SharedLimits

    limits = SharedLimits(slots=128)
    granted = [limits.begin_attempt("198.51.100.7", 5, 600) for _ in range(15)]
    assert granted == [Attempt.GO] * 5 + [Attempt.WAIT] * 10
    # A success gives its reservation back and counts nothing: a waiting check may go.
    assert not limits.finish_attempt("198.51.100.7", True, 5, 600)
    assert limits.begin_attempt("198.51.100.7", 5, 600) is Attempt.GO
    assert limits.counts(0)["pending"] == 5
    results = [limits.finish_attempt("198.51.100.7", False, 5, 600) for _ in range(5)]
    assert results == [False] * 4 + [True]  # the fifth wrong password bans
    assert limits.begin_attempt("198.51.100.7", 5, 600) is Attempt.REFUSED
    assert limits.counts(0)["pending"] == 0


def test_limits_failures_outside_the_window_do_not_count() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    assert not _fail(limits, "198.51.100.7", 2, 0.0)  # window 0: every failure is the first
    assert not _fail(limits, "198.51.100.7", 2, 0.0)


def test_limits_user_cap() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    assert limits.user_login("dave", 1)
    assert not limits.user_login("dave", 1)
    assert limits.user_login("alice", 0)
    limits.user_logout("dave")
    assert limits.user_login("dave", 1)
    assert limits.counts(0) == {
        "sessions": 0,
        "logins": 2,
        "per_ip": 0,
        "per_user": 2,
        "passive": 0,
        "pending": 0,
    }


def test_limits_release_worker_gives_back_exactly_its_column() -> None:
    """A dead worker's sessions are released; the survivors' counts, failures and bans stay."""
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128, workers=2)
    limits.bind_worker(1)
    for _ in range(3):
        assert limits.connect("192.0.2.1", 0, 0, 600) is None
    assert limits.user_login("dave", 0)
    _fail(limits, "192.0.2.66", 1)
    limits.bind_worker(0)
    assert limits.connect("192.0.2.1", 0, 0, 600) is None
    assert limits.user_login("dave", 0)
    assert limits.sessions("192.0.2.1") == 4
    limits.release_worker(1)
    assert limits.counts(1) == {
        "sessions": 0,
        "logins": 0,
        "per_ip": 0,
        "per_user": 0,
        "passive": 0,
        "pending": 0,
    }
    assert limits.counts(0) == {
        "sessions": 1,
        "logins": 1,
        "per_ip": 1,
        "per_user": 1,
        "passive": 0,
        "pending": 0,
    }
    assert limits.sessions() == 1
    assert limits.sessions("192.0.2.1") == 1
    assert not limits.user_login("dave", 1)  # worker 0's login of dave still counts
    assert limits.banned("192.0.2.66", 600)
    with pytest.raises(ValueError, match="out of range"):
        limits.bind_worker(2)


def test_limits_shared_across_fork() -> None:
    from ftpsd.limits import SharedLimits

    limits = SharedLimits(slots=128)
    pid = os.fork()
    if pid == 0:  # child: count a session and a ban, then leave without cleanup handlers
        limits.connect("192.0.2.1", 0, 0, 600)
        _fail(limits, "192.0.2.66", 1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert limits.sessions("192.0.2.1") == 1
    assert limits.banned("192.0.2.66", 600)


def test_limits_record_lock_excludes_forked_workers() -> None:
    """The record lock serialises the workers (and dies with its holder: no wedged daemon)."""
    from ftpsd import limits as limits_module

    limits = limits_module.SharedLimits(slots=16)
    pid = os.fork()
    if pid == 0:
        for _ in range(300):
            limits.connect("192.0.2.1", 0, 0, 600)
        os._exit(0)
    for _ in range(300):
        limits.connect("192.0.2.1", 0, 0, 600)
    os.waitpid(pid, 0)
    assert limits.sessions("192.0.2.1") == 600


# -- timing: an unknown name costs the same KDF as a known one ----------------------------------


def _recording(monkeypatch) -> list[tuple[str, dict]]:
    """Record the scheme and parameters of every hash verification (the test hook)."""
    import ftpsd.authorizer as authorizer_module
    from ftpskit_common.passwd import parse_hash

    calls: list[tuple[str, dict]] = []
    real = authorizer_module.verify_password

    def spy(password: str, encoded: str) -> bool:
        parsed = parse_hash(encoded)
        calls.append((parsed.scheme, {**parsed.params, "salt": len(parsed.salt), "dk": len(parsed.digest)}))
        return real(password, encoded)

    monkeypatch.setattr(authorizer_module, "verify_password", spy)
    return calls


def test_unknown_user_runs_the_same_kdf_as_a_pbkdf2_user(monkeypatch, homes) -> None:
    """Issue 11 row 12: pbkdf2-hashed user 179 ms vs unknown user 41 ms (user enumeration)."""
    auth = FtpsdAuthorizer([User("alice", HASH, str(homes["alice"]), "rw")])
    calls = _recording(monkeypatch)
    assert not auth.check_password("alice", "wrong")
    assert not auth.check_password("mallory", "wrong")
    assert not auth.check_password("mallory", "pw")  # no stand-in ever matches
    assert len(calls) == 3
    assert calls[0] == calls[1] == calls[2]
    assert calls[0][0] == "pbkdf2-sha256"


def test_every_name_pays_every_scheme_in_use(monkeypatch, tmp_path) -> None:
    """Issue 22 row 14: with scrypt and pbkdf2 users, unknown names cost scrypt and pbkdf2 users
    +90 ms (minority-scheme users enumerable). Now every check, known name or not, runs the same
    KDF calls with the same parameters in the same order: one per cost class in the file."""
    home = tmp_path / "h"
    home.mkdir()
    scrypt_hash = hash_password("pw")
    fast = "$pbkdf2-sha256$1000$" + HASH.split("$", 3)[3]
    users = [User("a", HASH, str(home)), User("b", scrypt_hash, str(home)), User("c", fast, str(home))]
    auth = FtpsdAuthorizer(users)
    calls = _recording(monkeypatch)
    sequences = []
    for name, password, ok in [
        ("a", "pw", True),
        ("b", "pw", True),
        ("c", "x", False),
        ("nobody", "pw", False),
    ]:
        del calls[:]
        assert auth.check_password(name, password) is ok
        sequences.append(list(calls))
    assert all(seq == sequences[0] for seq in sequences), sequences
    assert sorted(scheme for scheme, _ in sequences[0]) == ["pbkdf2-sha256", "pbkdf2-sha256", "scrypt"]


def test_importing_the_authorizer_hashes_nothing() -> None:
    """Issue 23: the stand-in for an empty users file is made on first need, not at import (which
    ran scrypt, 16 MiB and ~35 ms, in every process importing ftpsd: the daemon, ``ftpsd status``)."""
    import subprocess
    import sys

    probe = (
        "import hashlib, ftpskit_common.passwd as p\n"
        "calls = []\n"
        "real = hashlib.scrypt\n"
        "hashlib.scrypt = lambda *a, **k: calls.append(1) or real(*a, **k)\n"
        "import ftpsd.authorizer\n"
        "print(len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_an_empty_users_file_still_costs_one_hash_per_name(monkeypatch) -> None:
    """With no password account, an unknown name still pays a default-cost scrypt check."""
    auth = FtpsdAuthorizer([])
    calls = _recording(monkeypatch)
    assert not auth.check_password("mallory", "ftpsd-dummy-password-for-timing")
    assert len(calls) == 1 and calls[0][0] == "scrypt"
