"""Hostile account input: what the inventory (ftps_users_accounts, checked by accounts.py) and a
users file (checked by passwd.validate_users, the daemon's loader) must refuse, with one set of
rules: every case runs through both, and a refused account changes nothing."""

from __future__ import annotations

import base64
import json
import time

import pytest

from ftpskit_common.accounts import check_accounts
from ftpskit_common.passwd import UsersFileError, parse_hash, validate_users, verify_password

HASH = "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _both(**account) -> tuple[list[str], list[str]]:
    """Problems of one account as the inventory's (module, preflight) and as the daemon's file."""
    wanted = {"name": "alice", "hash": HASH, "home": "/srv/ftps/alice", **account}
    inventory = check_accounts([wanted])
    entry = {k: v for k, v in wanted.items() if k != "state"}
    try:
        validate_users({"version": 1, "users": [entry]})
        daemon: list[str] = []
    except UsersFileError as exc:
        daemon = exc.problems
    return inventory, daemon


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("name", "alice\n", "may use only"),  # "$" matched before a final line break
        ("name", "alice\nbob", "may use only"),
        ("name", "\u0430lice", "may use only"),  # Cyrillic a: a look-alike of alice
        ("name", "alice\x00", "may use only"),
        ("name", "a" * 65, "may use only"),
        ("home", "/srv/ftps/al\x00ice", "printable"),
        ("home", "/srv/ftps/alice\n", "printable"),
        ("home", "/srv/ftps/\x1b[2Jalice", "printable"),
        ("home", "/srv/ftps/\u202ealice", "printable"),
        ("home", "/srv/" + "a" * 256, "at most"),
        ("home", "/srv" + "/abc" * 1100, "at most"),
    ],
)
def test_names_and_homes_are_refused_by_the_one_set_of_rules(field: str, value: str, says: str) -> None:
    inventory, daemon = _both(**{field: value})
    assert any(says in p for p in inventory), inventory
    assert any(says in p for p in daemon), daemon


def _pbkdf2(iterations: int, digest_bytes: int) -> str:
    return f"$pbkdf2-sha256${iterations}${_b64(b's' * 16)}${_b64(b'd' * digest_bytes)}"


@pytest.mark.parametrize(
    ("encoded", "says"),
    [
        # 2,000 digest blocks of 10 million iterations: hours of CPU for one login.
        (_pbkdf2(10_000_000, 32 * 2000), "too long"),
        (f"$scrypt$ln=14,r=8,p=1${_b64(b's' * 16)}${_b64(b'd' * 65)}", "too long"),
        (f"$scrypt$ln=14,r=8,p=1${_b64(b's' * 100_000)}${_b64(b'd' * 32)}", "too long"),
        # 4 GiB of memory per check (128 * r * N), and 16 times that work.
        (f"$scrypt$ln=20,r=32,p=16${_b64(b's' * 16)}${_b64(b'd' * 32)}", "out of range"),
        # 1 GiB per check.
        (f"$scrypt$ln=20,r=8,p=1${_b64(b's' * 16)}${_b64(b'd' * 32)}", "out of range"),
        # 128 MiB but 128 times the default's work.
        (f"$scrypt$ln=17,r=8,p=16${_b64(b's' * 16)}${_b64(b'd' * 32)}", "out of range"),
    ],
)
def test_a_hash_that_would_cost_a_login_minutes_is_refused(encoded: str, says: str) -> None:
    with pytest.raises(UsersFileError, match=says):
        parse_hash(encoded)
    inventory, daemon = _both(hash=encoded)
    assert any(says in p for p in inventory), inventory
    assert any(says in p for p in daemon), daemon
    start = time.monotonic()
    assert verify_password("guess", encoded) is False
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize(
    "encoded",
    [
        f"$scrypt$ln=17,r=8,p=1${_b64(b's' * 16)}${_b64(b'd' * 32)}",  # 128 MiB: the bound
        f"$scrypt$ln=15,r=8,p=4${_b64(b's' * 16)}${_b64(b'd' * 32)}",
        f"$scrypt$ln=14,r=8,p=1${_b64(b's' * 64)}${_b64(b'd' * 64)}",
        _pbkdf2(600_000, 32),
    ],
)
def test_strong_but_bounded_hashes_still_parse(encoded: str) -> None:
    parse_hash(encoded)


def test_names_differing_only_in_case_are_one_account_too_many() -> None:
    accounts = [
        {"name": "alice", "hash": HASH, "home": "/srv/ftps/alice"},
        {"name": "Alice", "hash": HASH, "home": "/srv/ftps/Alice"},
    ]
    inventory = check_accounts(accounts)
    assert inventory == [
        "users[1] (name 'Alice'): user name differing only in case from 'alice' (first at users[0])"
    ]
    with pytest.raises(UsersFileError, match="differing only in case") as raised:
        validate_users({"version": 1, "users": accounts})
    assert raised.value.problems == [
        "user 'Alice': user name differing only in case from 'alice' (first at users[0])"
    ]


@pytest.mark.parametrize("password", ["sec\nret", "sec\rret", "sec\x00ret"])
def test_a_password_no_ftp_client_can_send_is_refused(password: str) -> None:
    problems = check_accounts([{"name": "alice", "password": password, "home": "/srv/ftps/alice"}])
    assert any("must not contain CR, LF or NUL" in p for p in problems), problems


def test_the_users_file_refuses_a_hostile_entry_whole() -> None:
    """One bad entry: the whole file is refused (the daemon keeps its loaded users)."""
    doc = {
        "version": 1,
        "users": [
            {"name": "alice", "hash": HASH, "home": "/srv/ftps/alice"},
            {"name": "bob\n", "hash": HASH, "home": "/srv/ftps/bob"},
        ],
    }
    with pytest.raises(UsersFileError, match="bob"):
        validate_users(json.loads(json.dumps(doc)))


def test_ftpsd_hash_password_refuses_a_nul_with_the_reason(monkeypatch, capsys) -> None:
    """``ftpsd hash-password`` applies the same password rule, as a message, not a traceback."""
    import io

    from ftpsd.__main__ import main

    monkeypatch.setattr("sys.stdin", io.StringIO("sec\x00ret\n"))
    assert main(["hash-password"]) == 1
    assert "must not contain CR, LF or NUL" in capsys.readouterr().err


def _with_salt(size: int) -> str:
    return f"$scrypt$ln=14,r=8,p=1${_b64(b's' * size)}${_b64(b'd' * 32)}"


def test_the_number_of_hash_cost_classes_is_bounded() -> None:
    """Every login pays one check per cost class (the daemon's timing defence): 57 salt sizes
    times 49 digest sizes at the default parameters would make each login pay ~2,800 checks. A
    users file (and so ftps_users' result) holds at most 4 classes."""
    users = [{"name": f"u{i}", "hash": _with_salt(8 + i), "home": f"/srv/ftps/u{i}"} for i in range(5)]
    with pytest.raises(UsersFileError, match="5 cost classes"):
        validate_users({"version": 1, "users": users})
    validate_users({"version": 1, "users": users[:4]})
