"""plugins/module_utils/pki/client: the client CA's CSR checks, issuing, revocation and the CRL."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import stat

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common import certreq
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki import ca, certs, client, keys, support
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ALICE = "alice@example.org"
NOW = support.utcnow()


@pytest.fixture
def store(tmp_path) -> client.ClientCA:
    ca_dir = str(tmp_path / "client-ca")
    ca.CertificateAuthority(ca_dir).create("ecdsa-p256", "test client CA", 365)
    return client.ClientCA(ca_dir).load()


def _key(kind: str = "p256"):
    if kind == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _csr(key, cn: str | None = ALICE, emails=(ALICE,), dns=(), ca: bool = False) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else [])
    )
    names = [x509.RFC822Name(e) for e in emails] + [x509.DNSName(d) for d in dns]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return certs.csr_to_pem(builder.sign(key, hashes.SHA256()))


# --------------------------------------------------------------------------------------------
# identities and CSRs


@pytest.mark.parametrize(
    "identity",
    [
        "",
        "alice",
        "alice@",
        "@example.org",
        "al ice@example.org",
        "alice@exa/mple.org",
        "a..b@example.org",
        "alice@example..org",
        "alice\x00@example.org",
        "alice\n@example.org",
        "ålice@example.org",
        "bob@example.org,alice@example.org",
        "../../etc@example.org",
        "alice@example.org\n",
        "x" * 250 + "@example.org",
    ],
)
def test_bad_identities_are_refused(identity: str) -> None:
    with pytest.raises(support.PKIError):
        client.check_identity(identity)


@pytest.mark.parametrize("identity", [ALICE, "bob.smith+ftp@sub.example.org", "o'neil@example.org"])
def test_plain_email_identities_pass(identity: str) -> None:
    assert client.check_identity(identity) == identity


@pytest.mark.parametrize(
    ("csr_args", "message"),
    [
        ({"cn": "bob@example.org", "emails": ("bob@example.org",)}, "not exactly"),
        ({"cn": ALICE, "emails": ("bob@example.org",)}, "not exactly"),
        ({"cn": ALICE, "emails": (ALICE, "bob@example.org")}, "not exactly"),
        ({"cn": ALICE, "emails": (ALICE,), "dns": ("srv1.example.org",)}, "one e-mail address only"),
        ({"cn": None, "emails": ()}, "names nobody"),
        ({"ca": True}, "CA:TRUE"),
    ],
)
def test_bad_csrs_are_refused(store, csr_args, message) -> None:
    with pytest.raises(support.PKIError, match=message):
        client.check_client_csr(_csr(_key(), **csr_args), ALICE)


def test_weak_key_is_refused(store) -> None:
    with pytest.raises(support.PKIError, match="too weak"):
        client.check_client_csr(_csr(_key("rsa1024")), ALICE)


def test_bad_csr_is_refused_before_anything_is_written(store) -> None:
    with pytest.raises(support.PKIError):
        store.sign(_csr(_key(), cn="bob@example.org", emails=("bob@example.org",)), ALICE, 30, "CSR of alice")
    assert store.issued() == []
    assert not os.path.exists(store.issued_dir)


def test_tampered_csr_is_refused(store) -> None:
    pem = _csr(_key())
    body = pem.splitlines()
    body[5] = body[5][:-4] + ("AAAA" if body[5][-4:] != "AAAA" else "BBBB")
    with pytest.raises(support.PKIError):
        client.check_client_csr("\n".join(body) + "\n", ALICE)


# --------------------------------------------------------------------------------------------
# issuing


@pytest.mark.parametrize("kind", ["p256", "rsa2048"])
def test_issued_certificate_is_client_auth_only_for_exactly_the_identity(store, kind) -> None:
    key = _key(kind)
    pem = store.sign(_csr(key), ALICE, 30, "CSR of alice")
    cert = certs.load_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [type(n) for n in san] == [x509.RFC822Name]
    assert san.get_values_for_type(x509.RFC822Name) == [ALICE]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
    assert usage.key_encipherment is (kind == "rsa2048")
    assert certs.signed_by(cert, store.ca.cert)
    assert keys.same_public_key(cert.public_key(), key.public_key())
    left = support.cert_not_after(cert) - support.utcnow()
    assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)
    assert [c.serial_number for c in store.issued()] == [cert.serial_number]
    mode = stat.S_IMODE(os.stat(store.ca.key_path).st_mode)
    assert mode == 0o600


def test_validity_is_bounded_by_the_client_ca(store) -> None:
    cert = client.issue_client_certificate(store.ca, certs.load_csr(_csr(_key())), ALICE, 10_000)
    assert support.cert_not_after(cert) == support.cert_not_after(store.ca.cert)


# --------------------------------------------------------------------------------------------
# revocation and the CRL


def _crl(store: client.ClientCA):
    with open(store.crl_path, "rb") as handle:
        return x509.load_pem_x509_crl(handle.read())


def test_crl_lists_exactly_the_revoked_serials_and_is_renewed_only_when_due(store) -> None:
    alice = certs.load_certificate(store.sign(_csr(_key()), ALICE, 30, "alice"))
    bob_csr = _csr(_key(), cn="bob@example.org", emails=("bob@example.org",))
    bob = certs.load_certificate(store.sign(bob_csr, "bob@example.org", 30, "bob"))

    first = store.ensure_crl(next_update_days=7, renew_before_days=2, now=NOW)
    assert first["changed"] and first["reasons"] == ["no CRL yet"]
    crl = _crl(store)
    assert list(crl) == []
    assert crl.is_signature_valid(store.ca.cert.public_key())
    assert client.crl_number(crl) == 1
    assert client.crl_next_update_time(crl) == (NOW + dt.timedelta(days=7)).replace(microsecond=0)

    # current: nothing changes (idempotence)
    again = store.ensure_crl(next_update_days=7, renew_before_days=2, now=NOW + dt.timedelta(days=1))
    assert not again["changed"]
    assert client.crl_number(_crl(store)) == 1

    # revoke alice by identity: exactly her serial, a new CRL number
    assert store.revoke(store.select(identity=ALICE), now=NOW) == [format(alice.serial_number, "x")]
    after = store.ensure_crl(next_update_days=7, renew_before_days=2, now=NOW)
    assert after["changed"]
    crl = _crl(store)
    assert [r.serial_number for r in crl] == [alice.serial_number]
    assert crl.get_revoked_certificate_by_serial_number(bob.serial_number) is None
    assert client.crl_number(crl) == 2
    # a second revoke of the same user records nothing new
    assert store.revoke(store.select(identity=ALICE), now=NOW) == []

    # renewed before it expires: inside the window a new CRL with a later nextUpdate
    late = NOW + dt.timedelta(days=5, hours=1)
    renewed = store.ensure_crl(next_update_days=7, renew_before_days=2, now=late)
    assert renewed["changed"] and "next update" in renewed["reasons"][0]
    crl = _crl(store)
    assert client.crl_next_update_time(crl) == (late + dt.timedelta(days=7)).replace(microsecond=0)
    assert [r.serial_number for r in crl] == [alice.serial_number]
    assert client.crl_number(crl) == 3


def test_crl_of_another_ca_is_replaced(store, tmp_path) -> None:
    other = client.ClientCA(str(tmp_path / "other"))
    ca.CertificateAuthority(other.directory).create("ecdsa-p256", "other", 30)
    other.load().ensure_crl(7, 2)
    with open(other.crl_path, "rb") as src, open(store.crl_path, "wb") as dst:
        dst.write(src.read())
    result = store.ensure_crl(7, 2)
    assert result["reasons"] == ["the CRL was not signed by this client CA"]
    assert _crl(store).is_signature_valid(store.ca.cert.public_key())


def test_crl_window_must_be_shorter_than_validity(store) -> None:
    with pytest.raises(support.PKIError, match="shorter"):
        store.ensure_crl(next_update_days=2, renew_before_days=2)


@pytest.mark.parametrize(
    "selector",
    [
        {"identity": "mallory@example.org"},
        {"serial": "abc123"},
        {"fingerprint": "00" * 32},
        {"fingerprint": "nope"},
        {},
        {"identity": ALICE, "serial": "1"},
    ],
)
def test_unknown_or_ambiguous_revocation_is_refused_before_any_change(store, selector) -> None:
    store.sign(_csr(_key()), ALICE, 30, "alice")
    store.ensure_crl(7, 2)
    before = pathlib.Path(store.crl_path).read_bytes()
    with pytest.raises(support.PKIError):
        store.revoke(store.select(**selector))
    assert not os.path.exists(store.revoked_path)
    assert pathlib.Path(store.crl_path).read_bytes() == before


def test_revoke_by_serial_and_fingerprint(store) -> None:
    one = certs.load_certificate(store.sign(_csr(_key()), ALICE, 30, "alice"))
    two = certs.load_certificate(store.sign(_csr(_key()), ALICE, 30, "alice"))
    serial = format(one.serial_number, "x")
    assert store.revoke(store.select(serial=serial.upper()), now=NOW) == [serial]
    fp = certs.certificate_facts(two)["fingerprint_sha256"]
    colons = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    assert store.revoke(store.select(fingerprint=colons), now=NOW) == [format(two.serial_number, "x")]
    records = json.loads(pathlib.Path(store.revoked_path).read_text())
    assert set(records) == {serial, format(two.serial_number, "x")}
    assert records[serial]["identity"] == ALICE
    assert stat.S_IMODE(os.stat(store.revoked_path).st_mode) == 0o600


def test_inventory_rows(store) -> None:
    alice = certs.load_certificate(store.sign(_csr(_key()), ALICE, 30, "alice"))
    store.sign(_csr(_key(), cn="bob@example.org", emails=("bob@example.org",)), "bob@example.org", 30, "bob")
    store.revoke([alice], now=NOW)
    rows = store.inventory()
    assert [(r["identity"], r["revoked"]) for r in rows] == [(ALICE, True), ("bob@example.org", False)]
    assert rows[0]["serial"] == format(alice.serial_number, "x")
    assert rows[1]["days_remaining"] in (29, 30)


# --------------------------------------------------------------------------------------------
# the client host's request and install


def test_client_request_install_renew(store, tmp_path) -> None:
    home = str(tmp_path / "home")
    first = client.client_request(
        home, ALICE, key_type="ecdsa-p256", renew_before_days=10, issuer=store.ca.cert
    )
    assert first["reissue"] and first["reasons"] == ["no certificate yet"]
    # an unsigned request stays the same across runs (same pending key)
    again = client.client_request(
        home, ALICE, key_type="ecdsa-p256", renew_before_days=10, issuer=store.ca.cert
    )
    assert not again["changed"]
    assert certs.load_csr(again["csr"]).public_key() == certs.load_csr(first["csr"]).public_key()
    assert stat.S_IMODE(os.stat(os.path.join(home, client.PENDING_KEY_FILE)).st_mode) == 0o600

    # a certificate for someone else is refused, nothing installed
    bob_key = _key()
    bob = store.sign(
        _csr(bob_key, cn="bob@example.org", emails=("bob@example.org",)), "bob@example.org", 30, "bob"
    )
    with pytest.raises(support.PKIError, match="refused"):
        client.client_install(home, ALICE, bob, issuer=store.ca.cert)
    assert not os.path.exists(os.path.join(home, client.CERT_FILE))

    cert = store.sign(first["csr"], ALICE, 30, "alice")
    client.client_install(home, ALICE, cert, issuer=store.ca.cert)
    assert not os.path.exists(os.path.join(home, client.PENDING_KEY_FILE))
    assert stat.S_IMODE(os.stat(os.path.join(home, client.KEY_FILE)).st_mode) == 0o600
    done = client.client_request(
        home, ALICE, key_type="ecdsa-p256", renew_before_days=10, issuer=store.ca.cert
    )
    assert done == {"changed": False, "reissue": False, "reasons": [], "csr": ""}
    # inside the renewal window: a new key and CSR
    due = client.client_request(
        home,
        ALICE,
        key_type="ecdsa-p256",
        renew_before_days=10,
        issuer=store.ca.cert,
        now=support.utcnow() + dt.timedelta(days=25),
    )
    assert due["reissue"] and due["reasons"][0].startswith("expiring")
    installed = certs.load_certificate(pathlib.Path(home, client.CERT_FILE).read_text())
    assert certs.load_csr(due["csr"]).public_key() != installed.public_key()


# --------------------------------------------------------------------------------------------
# ftps-cert: a person's key and CSR (openssl), signed by the client CA, installed after checks


def test_ftps_cert_request_sign_install(store, tmp_path, capsys) -> None:
    home = str(tmp_path / "person")
    assert certreq.main(["--dir", home, "request", "--identity", ALICE]) == 0
    pending = pathlib.Path(home, certreq.PENDING_KEY_FILE)
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    csr = pathlib.Path(home, certreq.CSR_FILE).read_text()
    # the CSR openssl made passes the client CA's checks; a certificate for someone else does not install
    bob = store.sign(
        _csr(_key(), cn="bob@example.org", emails=("bob@example.org",)), "bob@example.org", 30, "bob"
    )
    pathlib.Path(tmp_path, "bob.pem").write_text(bob)
    assert certreq.main(["--dir", home, "install", str(tmp_path / "bob.pem")]) == 1
    err = capsys.readouterr().err
    assert "not the certificate for the key" in err and "'bob@example.org', not 'alice@example.org'" in err
    assert not pathlib.Path(home, certreq.CERT_FILE).exists()
    # a server certificate (serverAuth) for the same key is refused too
    server = ca.issue_certificate(
        certs.load_csr(csr).public_key(),
        ALICE,
        ["srv1"],
        issuer_cert=store.ca.cert,
        issuer_key=store.ca.key,
        validity_days=30,
    )
    pathlib.Path(tmp_path, "server.pem").write_text(certs.cert_to_pem(server))
    assert certreq.main(["--dir", home, "install", str(tmp_path / "server.pem")]) == 1
    assert "not a client certificate" in capsys.readouterr().err

    signed = store.sign(csr, ALICE, 30, "alice")
    pathlib.Path(tmp_path, "alice.pem").write_text(signed)
    assert certreq.main(["--dir", home, "install", str(tmp_path / "alice.pem")]) == 0
    assert not pending.exists()
    assert stat.S_IMODE(pathlib.Path(home, certreq.KEY_FILE).stat().st_mode) == 0o600
    assert pathlib.Path(home, certreq.CERT_FILE).read_text() == signed
    cert = certs.load_certificate(signed)
    shown = certreq.certificate_summary(signed.encode())
    assert shown["identity"] == ALICE
    assert shown["serial"] == format(cert.serial_number, "x")
    assert shown["not_after"] == support.iso_utc(support.cert_not_after(cert))


@pytest.mark.parametrize("identity", ["alice", "a/b@example.org", "alice@example.org\n"])
def test_ftps_cert_refuses_bad_identity_before_making_a_key(tmp_path, identity) -> None:
    home = tmp_path / "person"
    assert certreq.main(["--dir", str(home), "request", "--identity", identity]) == 1
    assert not home.exists()


def test_prometheus_textfile_lists_unexpired_certificates_and_the_crl(store) -> None:
    alice = certs.load_certificate(store.sign(_csr(_key()), ALICE, 30, "alice"))
    store.revoke([alice], now=NOW)
    old = client.issue_client_certificate(
        store.ca, certs.load_csr(_csr(_key())), ALICE, 1, now=NOW - dt.timedelta(days=5)
    )
    store.record_issued(old)
    store.ensure_crl(7, 2)
    rows = store.inventory()
    assert [r["expired"] for r in rows] == [True, False]
    text = client.render_prometheus(rows, store.ensure_crl(7, 2)["next_update"])
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    serial = format(alice.serial_number, "x")
    expiry = int(support.cert_not_after(alice).timestamp())
    assert samples[0] == (
        "ftpskit_client_cert_not_after_timestamp_seconds"
        f'{{identity="{ALICE}",serial="{serial}",revoked="true"}} {expiry}'
    )
    assert len(samples) == 2 and samples[1].startswith("ftpskit_client_crl_next_update_timestamp_seconds ")
    assert client._label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_report_lines_say_what_needs_attention() -> None:
    base = {"identity": ALICE, "serial": "ab", "not_after": "2027-01-01T00:00:00Z", "revoked_at": ""}
    rows = [
        {
            **base,
            "revoked": True,
            "expired": False,
            "days_remaining": 20,
            "revoked_at": "2026-12-01T00:00:00Z",
        },
        {**base, "revoked": False, "expired": True, "days_remaining": -1},
        {**base, "revoked": False, "expired": False, "days_remaining": 5},
        {**base, "revoked": False, "expired": False, "days_remaining": 25},
    ]
    ends = [line.split("  ")[-1] for line in client.render_lines(rows, 10)]
    assert ends == ["REVOKED 2026-12-01T00:00:00Z", "expired", "EXPIRING in 5 days", "ok, 25 days left"]
