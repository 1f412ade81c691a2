"""ftpskit_common.passwd: hashes and the users file (the daemon's and the ftps_users module's)."""

from __future__ import annotations

import json
import re
import stat

import pytest

from ftpskit_common.passwd import (
    UsersFileError,
    dump_users,
    dumps_users,
    hash_password,
    load_users,
    loads_users,
    needs_rehash,
    parse_hash,
    validate_user_name,
    verify_password,
)

SCRYPT = hash_password("correct horse")
PBKDF2 = hash_password("correct horse", "pbkdf2-sha256")


@pytest.mark.parametrize("encoded", [SCRYPT, PBKDF2])
def test_verify(encoded: str) -> None:
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horse ", encoded)
    assert not verify_password("", encoded)


def test_default_scheme_and_cost() -> None:
    assert SCRYPT.startswith("$scrypt$ln=14,r=8,p=1$")
    assert PBKDF2.startswith("$pbkdf2-sha256$600000$")
    parsed = parse_hash(SCRYPT)
    assert len(parsed.salt) == 16
    assert len(parsed.digest) == 32


def test_salted() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize(
    ("encoded", "rehash"),
    [
        (SCRYPT, False),
        (PBKDF2, True),
        ("$scrypt$ln=13,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43, True),  # weaker than the default
        ("$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43, False),  # stronger: kept
        ("garbage", True),
    ],
)
def test_needs_rehash(encoded: str, rehash: bool) -> None:
    assert needs_rehash(encoded) is rehash


@pytest.mark.parametrize(
    ("encoded", "rehash"),
    [
        (PBKDF2, False),
        (SCRYPT, True),  # another scheme than the configured one
        ("$pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43, True),  # fewer iterations
        ("$pbkdf2-sha256$900000$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43, False),
    ],
)
def test_needs_rehash_for_pbkdf2(encoded: str, rehash: bool) -> None:
    assert needs_rehash(encoded, "pbkdf2-sha256") is rehash


@pytest.mark.parametrize(
    "encoded",
    [
        "plaintext",
        "$scrypt$ln=15,r=8$c2FsdHNhbHQ$" + "A" * 43,
        "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43,  # would allocate terabytes
        "$scrypt$ln=15,r=8,p=1$!!!$" + "A" * 43,
        "$pbkdf2-sha256$0$c2FsdHNhbHQ$" + "A" * 43,
        "$pbkdf2-sha256$99999999999$c2FsdHNhbHQ$" + "A" * 43,
        "$md5$x$y$z",
        "$scrypt$ln=15,r=8,p=1$c2E$" + "A" * 43,  # salt too short
    ],
)
def test_bad_hashes_never_verify(encoded: str) -> None:
    with pytest.raises(UsersFileError):
        parse_hash(encoded)
    assert verify_password("anything", encoded) is False


def test_unknown_scheme_refused() -> None:
    with pytest.raises(UsersFileError, match="unknown hash scheme"):
        hash_password("x", "md5")
    with pytest.raises(UsersFileError, match="non-empty"):
        hash_password("")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("a.b-c_d@example+x", True),
        ("", False),
        ("a/b", False),
        ("..", False),
        ("a..b", False),
        ("-rf", False),
        (".hidden", False),
        ("sp ace", False),
        ("x" * 65, False),
        (7, False),
    ],
)
def test_user_names(name: object, ok: bool) -> None:
    assert (validate_user_name(name) is None) is ok


def _doc(**fields: object) -> dict:
    user = {"name": "alice", "hash": PBKDF2, "home": "/srv/ftps/alice"}
    user.update(fields)
    return {"version": 1, "users": [user]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(perm="admin"), "user 'alice': field 'perm' must be one of ro, rw, upload, got 'admin'"),
        (_doc(max_rate=-1), "user 'alice': field 'max_rate' must be an integer >= 0 (0 = unlimited)"),
        (_doc(max_connections="2"), "user 'alice': field 'max_connections' must be an integer >= 0"),
        (_doc(max_rate=True), "user 'alice': field 'max_rate' must be an integer >= 0"),
        (_doc(home="srv/alice"), "user 'alice': field 'home' must be an absolute path"),
        (_doc(home="/"), "user 'alice': field 'home' must not be '/' or contain '..'"),
        (_doc(home="/srv/../etc"), "user 'alice': field 'home' must not be '/' or contain '..'"),
        (_doc(hash="secret"), "user 'alice': field 'hash': hash must be a string like"),
        (_doc(password="x"), "user 'alice': unknown field(s) password"),
        (_doc(name="../root"), "user '../root': field 'name' must not contain '/'"),
        (_doc(name="-x"), "user '-x': field 'name' must not start with '-'"),
        ({"version": 2, "users": []}, "users file: 'version' must be 1, got 2"),
        ({"version": 1}, "users file: 'users' must be a list"),
        ({"version": 1, "users": [], "extra": 1}, "users file: unknown top-level field(s) extra"),
        ([], "users file must be a JSON object"),
    ],
)
def test_users_file_validation(doc: object, message: str) -> None:
    with pytest.raises(UsersFileError) as info:
        loads_users(json.dumps(doc))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_user() -> None:
    doc = _doc()
    doc["users"].append(dict(doc["users"][0]))
    says = "user 'alice': duplicate user name 'alice' (first at users[0])"
    with pytest.raises(UsersFileError, match=re.escape(says)):
        loads_users(json.dumps(doc))


def test_not_json() -> None:
    with pytest.raises(UsersFileError, match="not valid JSON"):
        loads_users("{")


def test_defaults_and_round_trip(tmp_path) -> None:
    users = loads_users(json.dumps(_doc()))
    assert (users[0].perm, users[0].max_rate, users[0].max_connections) == ("rw", 0, 0)
    path = tmp_path / "users.json"
    dump_users([*users, dict(users[0].to_dict(), name="bob", perm="ro")], str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    loaded = load_users(str(path))
    assert [u.name for u in loaded] == ["alice", "bob"]
    assert json.loads(path.read_text())["version"] == 1
    assert dumps_users(loaded) == path.read_text()
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_dump_refuses_invalid(tmp_path) -> None:
    with pytest.raises(UsersFileError):
        dump_users([{"name": "-bad", "hash": PBKDF2, "home": "/srv/x"}], str(tmp_path / "u.json"))
    assert list(tmp_path.iterdir()) == []


def test_missing_file_message(tmp_path) -> None:
    with pytest.raises(UsersFileError, match=r"cannot read users file .*: No such file or directory"):
        load_users(str(tmp_path / "nope.json"))


@pytest.mark.parametrize("scheme", ["scrypt", "pbkdf2-sha256"])
def test_hash_password_cli(scheme: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ftpsd", "hash-password", "--scheme", scheme],
        input="s3cret pass\n",
        capture_output=True,
        text=True,
        check=True,
    )
    encoded = result.stdout.strip()
    assert encoded.startswith(f"${scheme}$")
    assert verify_password("s3cret pass", encoded)
    assert "s3cret" not in encoded
