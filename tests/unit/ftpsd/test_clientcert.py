"""Client certificates (issue 26): the mapping to one user, the login decision, verification
against the client CA and its CRL, the files' checks, and the account rules for ``auth``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_users_file import plan_users
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ftpsd import counters
from ftpsd.clientcert import (
    MAX_VALUES,
    REFUSALS,
    ClientTrustError,
    Verdict,
    decide,
    field_values,
    load_client_trust,
    map_identities,
)
from ftpsd.config import ConfigError, TLSConfig, parse_config
from ftpsd.load import check_config
from ftpskit_common.accounts import check_accounts
from ftpskit_common.passwd import User, UsersFileError, dumps_users, hash_password, validate_users
from tests.certs import ClientCA, TestCA

BY_IDENTITY = {"alice@example.org": "alice", "bob@example.org": "bob", "carol@example.org": "carol"}


# -- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identities", "expected"),
    [
        (("alice@example.org",), ("ok", "alice")),
        (("alice@example.org", "nobody@example.org"), ("ok", "alice")),
        (("alice@example.org", "alice@example.org"), ("ok", "alice")),
        (("alice@example.org", "bob@example.org"), ("ambiguous", "")),
        (("Alice@example.org",), ("no_user", "")),  # exact, case-sensitive
        (("alice@example.org ",), ("no_user", "")),
        (("alice",), ("no_user", "")),  # never a user name taken from the certificate
        (("alice@example.org\x00",), ("no_user", "")),
        ((), ("no_user", "")),
        (("alice@example.org", *(f"x{i}@example.org" for i in range(MAX_VALUES))), ("ambiguous", "")),
    ],
)
def test_map_identities(identities: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert map_identities(identities, BY_IDENTITY) == expected


def test_field_values_per_field() -> None:
    ca = ClientCA()
    person = ca.issue(email=("a@example.org", "b@example.org"), uri=("urn:ftps:alice",), cn=("alice", "x/.."))
    assert field_values(person.cert, "san_email") == ("a@example.org", "b@example.org")
    assert field_values(person.cert, "san_uri") == ("urn:ftps:alice",)
    assert set(field_values(person.cert, "cn")) == {"alice", "x/.."}
    bare = ca.issue(cn="alice")
    assert field_values(bare.cert, "san_email") == ()
    assert field_values(ca.issue(cn="alice\x00").cert, "cn") == ("alice\x00",)


# -- the decision ----------------------------------------------------------------------------


def _user(name: str, auth: str, identity: str = "") -> User:
    return User(name=name, hash="", home=f"/srv/{name}", auth=auth, certificate_identity=identity)


ALICE = _user("alice", "certificate", "alice@example.org")
BOB = _user("bob", "certificate+password", "bob@example.org")
CAROL = _user("carol", "password", "carol@example.org")
DAVE = _user("dave", "password")
OK_ALICE = Verdict("ok", identities=("alice@example.org",))
OK_BOB = Verdict("ok", identities=("bob@example.org",))
OK_CAROL = Verdict("ok", identities=("carol@example.org",))


@pytest.mark.parametrize(
    ("required", "verdict", "account", "password_ok", "expected"),
    [
        # certificate: the certificate alone, and only the right one
        (False, OK_ALICE, ALICE, False, (True, "ok")),
        (False, None, ALICE, False, (False, "none")),  # the listener asks for no certificate
        (False, Verdict("none"), ALICE, True, (False, "none")),
        (False, Verdict("revoked"), ALICE, False, (False, "revoked")),
        (False, Verdict("expired"), ALICE, False, (False, "expired")),
        (False, Verdict("untrusted"), ALICE, False, (False, "untrusted")),
        (False, Verdict("ok", identities=("zed@example.org",)), ALICE, False, (False, "no_user")),
        (
            False,
            Verdict("ok", identities=("alice@example.org", "bob@example.org")),
            ALICE,
            False,
            (False, "ambiguous"),
        ),
        (False, OK_BOB, ALICE, False, (False, "mismatch")),
        # certificate+password: both
        (False, OK_BOB, BOB, True, (True, "ok")),
        (False, OK_BOB, BOB, False, (False, None)),
        (False, Verdict("none"), BOB, True, (False, "none")),
        (False, OK_ALICE, BOB, True, (False, "mismatch")),
        # password: the password, whatever certificate; a certificate alone never
        (False, OK_CAROL, CAROL, True, (True, None)),
        (False, OK_CAROL, CAROL, False, (False, "not_allowed")),
        (False, Verdict("revoked"), CAROL, True, (True, None)),
        (False, None, DAVE, True, (True, None)),
        (False, OK_ALICE, DAVE, False, (False, None)),
        # require: nobody without a valid certificate
        (True, Verdict("none"), DAVE, True, (False, "none")),
        (True, Verdict("revoked"), DAVE, True, (False, "revoked")),
        (True, OK_ALICE, DAVE, True, (True, None)),
        # unknown users learn nothing from a certificate
        (False, OK_ALICE, None, False, (False, None)),
    ],
)
def test_decide(required, verdict, account, password_ok, expected) -> None:
    name = account.name if account else "alice"
    got = decide(
        required=required,
        verdict=verdict,
        account=account,
        name=name,
        by_identity=BY_IDENTITY,
        password_ok=password_ok,
    )
    assert got == expected


def test_every_reason_is_counted_and_has_a_reply() -> None:
    assert set(counters.CLIENT_CERT_RESULTS) == {"ok", "data_mismatch", *REFUSALS}
    for text in REFUSALS.values():
        assert text == text.capitalize()  # pyftpdlib's handle_auth_failed capitalises the reply
        assert "\n" not in text and len(text) < 100


# -- verification against the client CA and its CRL -------------------------------------------


def _trust(tmp_path: pathlib.Path, ca: ClientCA, **tls) -> object:
    ca_file, crl_file = ca.write(tmp_path / "client")
    config = TLSConfig(client_ca_file=str(ca_file), client_crl_file=str(crl_file), **tls)
    return load_client_trust(config)


def test_verify_chain_statuses(tmp_path: pathlib.Path) -> None:
    ca = ClientCA()
    revoked = ca.issue(email=("alice@example.org",))
    ca.revoke(revoked)
    trust = _trust(tmp_path, ca)
    good = ca.issue(email=("alice@example.org",))
    verdict = trust.verify_chain(good.cert, [])
    assert verdict.ok and verdict.identities == ("alice@example.org",)
    assert verdict.der == good.cert.public_bytes(serialization.Encoding.DER)
    server_ca = TestCA()
    cases = {
        "revoked": revoked,
        "expired": ca.issue(email=("alice@example.org",), expired=True),
        "untrusted": ClientCA("other").issue(email=("alice@example.org",)),
        "no_client_auth": ca.issue(email=("alice@example.org",), eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
        "chain_too_long": ca.issue(email=("alice@example.org",), intermediates=4),
    }
    for status, person in cases.items():
        assert trust.verify_chain(person.cert, list(person.chain)).status == status, status
    assert trust.verify_chain(ca.issue(eku=None).cert, []).status == "no_client_auth"
    # an intermediate the client brings has no CRL here: its revocation status is unknown
    deep = ca.issue(email=("alice@example.org",), intermediates=2)
    assert trust.verify_chain(deep.cert, list(deep.chain)).status == "crl"
    # the server CA's certificates are never client certificates
    assert trust.verify_chain(server_ca.issue().cert, [server_ca.intermediate]).status == "untrusted"


def test_stale_crl_refuses_and_warns(tmp_path: pathlib.Path) -> None:
    ca = ClientCA()
    directory = tmp_path / "client"
    directory.mkdir()
    (directory / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    stale = ca.crl(next_update=-dt.timedelta(hours=1))
    (directory / "crl.pem").write_bytes(stale.public_bytes(serialization.Encoding.PEM))
    trust = load_client_trust(
        TLSConfig(client_ca_file=str(directory / "ca.pem"), client_crl_file=str(directory / "crl.pem"))
    )
    assert trust.verify_chain(ca.issue(email=("a@example.org",)).cert, []).status == "crl"
    assert len(trust.stale()) == 1 and "due for renewal" in trust.stale()[0]


def test_off_without_a_ca_file() -> None:
    assert load_client_trust(TLSConfig()) is None


def _problems(tmp_path: pathlib.Path, ca_bytes: bytes | None, crl_bytes: bytes | None) -> list[str]:
    tmp_path.mkdir()
    ca_path, crl_path = tmp_path / "ca.pem", tmp_path / "crl.pem"
    for path, data in ((ca_path, ca_bytes), (crl_path, crl_bytes)):
        if data is not None:
            path.write_bytes(data)
    with pytest.raises(ClientTrustError) as info:
        load_client_trust(TLSConfig(client_ca_file=str(ca_path), client_crl_file=str(crl_path)))
    return info.value.problems


def test_bad_ca_and_crl_files_are_reported(tmp_path: pathlib.Path) -> None:
    ca, other = ClientCA(), ClientCA("other")
    pem = serialization.Encoding.PEM
    ca_pem, crl_pem = ca.cert.public_bytes(pem), ca.crl().public_bytes(pem)
    assert any("cannot read" in p for p in _problems(tmp_path / "a", None, crl_pem))
    assert any("holds no PEM certificate" in p for p in _problems(tmp_path / "b", b"junk", crl_pem))
    leaf = ca.issue().cert.public_bytes(pem)
    assert any("is not a CA" in p for p in _problems(tmp_path / "c", leaf, crl_pem))
    assert any("holds no PEM CRL" in p for p in _problems(tmp_path / "d", ca_pem, b"junk"))
    problems = _problems(tmp_path / "e", ca_pem, other.crl().public_bytes(pem))
    assert any("not signed by a CA of client_ca_file" in p for p in problems)
    assert any("holds no CRL of" in p for p in problems)


def test_config_keys_are_validated() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "tls": {
                    "client_ca_file": "/etc/ca.pem",
                    "client_cert_field": "subject",
                    "client_cert_explicit": "maybe",
                }
            }
        )
    text = "\n".join(info.value.problems)
    assert "tls.client_crl_file: is required when client_ca_file is set" in text
    assert "tls.client_cert_field: must be one of san_email, san_uri, cn" in text
    assert "tls.client_cert_explicit: must be one of off, request, require" in text
    assert parse_config({}).tls.client_ca_file == ""  # off by default


def test_check_config_reports_an_unreadable_ca(tmp_path: pathlib.Path) -> None:
    from tests.integration.conftest import build_server

    server = build_server(
        tmp_path / "s", client_ca_file=str(tmp_path / "missing.pem"), client_crl_file=str(tmp_path / "x.pem")
    )
    _config, problems = check_config(str(server.config_path))
    assert any(p.startswith("tls.client_ca_file: cannot read") for p in problems), problems


# -- the account rules ---------------------------------------------------------------------


def _entry(**fields) -> dict:
    return {"name": "alice", "home": "/srv/ftps/alice", **fields}


HASH = hash_password("pw")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (_entry(auth="certificate"), "'certificate_identity' is required with auth certificate"),
        (_entry(auth="certificate+password", certificate_identity="a@x"), "field 'hash' is required"),
        (
            _entry(auth="magic", hash=HASH),
            "'auth' must be one of password, certificate, certificate+password",
        ),
        (_entry(auth="certificate", certificate_identity="a\x00b"), "must be printable"),
        (_entry(auth="certificate", certificate_identity="x" * 256), "at most 255"),
        (_entry(auth="certificate", certificate_identity=" a@x"), "must not begin or end with blanks"),
        (_entry(hash=HASH, certificate_identity=7), "must be a non-empty string"),
    ],
)
def test_users_file_auth_rules(entry: dict, problem: str) -> None:
    with pytest.raises(UsersFileError) as info:
        validate_users({"version": 1, "users": [entry]})
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_users_file_certificate_accounts() -> None:
    users = validate_users(
        {
            "version": 1,
            "users": [
                _entry(auth="certificate", certificate_identity="alice@example.org"),
                {"name": "dave", "home": "/srv/ftps/dave", "hash": HASH},
            ],
        }
    )
    alice, dave = users
    assert (alice.auth, alice.hash, alice.certificate_identity) == ("certificate", "", "alice@example.org")
    # a password account's entry is what it was before these keys existed
    assert set(dave.to_dict()) == {"name", "hash", "home", "perm", "max_rate", "max_connections"}
    assert "hash" not in alice.to_dict()
    assert validate_users({"version": 1, "users": [alice.to_dict(), dave.to_dict()]}) == users
    with pytest.raises(UsersFileError, match="already user 'alice'"):
        dumps_users([alice, dataclasses.replace(alice, name="bob")])


def test_inventory_accounts_use_the_same_rules() -> None:
    accounts = [
        {"name": "alice", "auth": "certificate", "certificate_identity": "alice@example.org"},
        {"name": "bob", "auth": "certificate", "certificate_identity": "alice@example.org"},
        {"name": "carol", "auth": "certificate+password", "certificate_identity": "carol@example.org"},
        {"name": "erin", "auth": "certificate"},
    ]
    problems = check_accounts(accounts, "ftps_users_accounts", home_root="/srv/ftps")
    assert problems == [
        "ftps_users_accounts[2] (name 'carol'): 'password' (or a pre-computed 'hash') is empty or missing",
        "ftps_users_accounts[3] (name 'erin'): 'certificate_identity' is required with auth certificate",
        "ftps_users_accounts[1] (name 'bob'): 'certificate_identity' 'alice@example.org' is also"
        " ftps_users_accounts[0] (name 'alice')'s",
    ]


def test_module_plan_keeps_certificate_accounts() -> None:
    plan = plan_users(
        [],
        [
            {
                "name": "alice",
                "home": "/srv/a",
                "auth": "certificate",
                "certificate_identity": "alice@example.org",
            }
        ],
    )
    assert plan.users[0].hash == "" and plan.users[0].auth == "certificate"
    again = plan_users(
        plan.users,
        [
            {
                "name": "alice",
                "home": "/srv/a",
                "auth": "certificate",
                "certificate_identity": "alice@example.org",
            }
        ],
    )
    assert not again.changed
    moved = plan_users(
        plan.users,
        [
            {
                "name": "alice",
                "home": "/srv/a",
                "auth": "certificate",
                "certificate_identity": "a2@example.org",
            }
        ],
    )
    assert moved.updated == ["alice"]
