"""plugins/module_utils/pki: keys, SANs, serials, signing, chains, the renewal rules, the store."""

from __future__ import annotations

import datetime as dt
import grp
import os
import pathlib
import stat

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import (
    CertificateAuthority,
    issue_certificate,
    issue_leaf,
    sign_batch,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    build_csr,
    common_name_subject,
    csr_to_pem,
    load_certificate,
    signed_by,
    verify_chain,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    generate_private_key,
    key_size_of,
    key_to_pem,
    key_type_of,
    load_private_key,
    same_public_key,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.renewal import needs_reissue
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import (
    cert_sans,
    normalize_sans,
    parse_san,
    san_to_str,
    sans_cover,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import validate_server_certificate
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    cert_not_after,
    cert_not_before,
    random_serial,
    utcnow,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

NOW = utcnow()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    authority = CertificateAuthority(str(tmp_path_factory.mktemp("ca") / "ca"))
    authority.create("ecdsa-p384", "test CA", 365)
    return authority


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    authority = CertificateAuthority(str(tmp_path_factory.mktemp("other") / "ca"))
    authority.create("ecdsa-p256", "other CA", 365)
    return authority


def _issue(ca: CertificateAuthority, key, sans=("srv1",), days=90, now=None) -> x509.Certificate:
    return issue_certificate(
        key.public_key(),
        "srv1",
        list(sans),
        issuer_cert=ca.cert,
        issuer_key=ca.key,
        validity_days=days,
        now=now,
    )


@pytest.fixture
def group_name() -> str:
    return grp.getgrgid(os.getgid()).gr_name


# ---------------------------------------------------------------------------------------------
# keys


@pytest.mark.parametrize(
    ("key_type", "cls", "size"),
    [
        ("ecdsa-p256", ec.EllipticCurvePrivateKey, 256),
        ("ecdsa-p384", ec.EllipticCurvePrivateKey, 384),
        ("rsa-2048", rsa.RSAPrivateKey, 2048),
        ("rsa-3072", rsa.RSAPrivateKey, 3072),
        ("rsa-4096", rsa.RSAPrivateKey, 4096),
    ],
)
def test_generate_private_key(key_type: str, cls: type, size: int) -> None:
    key = generate_private_key(key_type)
    assert isinstance(key, cls)
    assert key_type_of(key) == key_type
    assert key_size_of(key) == size


@pytest.mark.parametrize("key_type", ["rsa-1024", "ecdsa-p521", "ed25519", "", "RSA-2048"])
def test_unsupported_key_type_is_rejected(key_type: str) -> None:
    with pytest.raises(PKIError, match="unsupported key type"):
        generate_private_key(key_type)


def test_encrypted_key_needs_its_passphrase() -> None:
    key = generate_private_key("ecdsa-p256")
    pem = key_to_pem(key, "s3cret")
    assert same_public_key(load_private_key(pem, "s3cret").public_key(), key.public_key())
    with pytest.raises(PKIError):
        load_private_key(pem, "wrong")
    with pytest.raises(PKIError):
        load_private_key(pem, "")


# ---------------------------------------------------------------------------------------------
# subject alternative names


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("srv1", "DNS:srv1"),
        ("SRV1.Example.org.", "DNS:srv1.example.org"),
        ("DNS:ftp.example.org", "DNS:ftp.example.org"),
        ("dns: ftp.example.org", "DNS:ftp.example.org"),
        ("*.example.org", "DNS:*.example.org"),
        ("10.213.1.5", "IP:10.213.1.5"),
        ("IP:10.213.1.5", "IP:10.213.1.5"),
        ("2001:db8::1", "IP:2001:db8::1"),
        ("IP:2001:db8::1", "IP:2001:db8::1"),
        ("a-b.c-d", "DNS:a-b.c-d"),
    ],
)
def test_parse_san(value: str, expected: str) -> None:
    assert san_to_str(parse_san(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "bad name",
        "under_score.example",
        "-lead.example",
        "trail-.example",
        "a..b",
        "*.org",
        "foo.*.example.org",
        "IP:10.0.0.256",
        "IP:not-an-ip",
        "x" * 64 + ".example",
        "",
    ],
)
def test_invalid_san_is_rejected(value: str) -> None:
    with pytest.raises(PKIError, match="invalid"):
        parse_san(value)


def test_normalize_sans_dedupes_and_keeps_order() -> None:
    got = normalize_sans(["srv1", "SRV1", "10.0.0.1", "DNS:srv1", "", None, "srv1.lab"])
    assert got == ["DNS:srv1", "IP:10.0.0.1", "DNS:srv1.lab"]
    with pytest.raises(PKIError, match="at least one"):
        normalize_sans(["", None])


@pytest.mark.parametrize(
    ("have", "want", "missing"),
    [
        (["DNS:srv1"], ["srv1"], []),
        (["DNS:*.lab"], ["srv1.lab"], []),
        (["DNS:*.lab"], ["a.srv1.lab"], ["DNS:a.srv1.lab"]),
        (["DNS:*.lab"], ["lab"], ["DNS:lab"]),
        (["DNS:srv1", "IP:10.0.0.1"], ["10.0.0.1", "srv1"], []),
        (["DNS:srv1"], ["10.0.0.1"], ["IP:10.0.0.1"]),
        (["DNS:srv2"], ["srv1"], ["DNS:srv1"]),
    ],
)
def test_sans_cover(have: list[str], want: list[str], missing: list[str]) -> None:
    assert sans_cover(have, want) == missing


# ---------------------------------------------------------------------------------------------
# serials and certificate content


def test_serials_are_random_positive_and_at_most_128_bits() -> None:
    serials = [random_serial() for _ in range(2000)]
    assert all(0 < s < 2**128 for s in serials)
    assert len(set(serials)) == len(serials)
    # random, not counting: the top bits vary (a counter would keep them at zero)
    assert max(serials).bit_length() > 120


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_issued_certificate_content(ca: CertificateAuthority, key_type: str) -> None:
    key = generate_private_key(key_type)
    cert = _issue(ca, key, sans=["srv1", "srv1.lab", "10.213.1.5"])
    ext = cert.extensions
    assert cert_sans(cert) == ["DNS:srv1", "DNS:srv1.lab", "IP:10.213.1.5"]
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    assert (
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert ku.key_encipherment is (key_type.startswith("rsa"))
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert 0 < cert.serial_number < 2**128
    assert signed_by(cert, ca.cert)
    days = (cert_not_after(cert) - cert_not_before(cert)).days
    assert days == 90  # 90 days + the 5-minute backdating


def test_ca_certificate_is_a_ca(ca: CertificateAuthority) -> None:
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True
    assert key_type_of(ca.cert.public_key()) == "ecdsa-p384"
    assert stat.S_IMODE(os.stat(ca.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ca.directory).st_mode) == 0o700


def test_ca_load_with_passphrase(tmp_path) -> None:
    authority = CertificateAuthority(str(tmp_path / "ca"))
    authority.create("rsa-3072", "rsa CA", 30, passphrase="vaulted")
    assert b"ENCRYPTED" in pathlib.Path(authority.key_path).read_bytes()
    loaded = CertificateAuthority(authority.directory).load("vaulted")
    assert loaded.cert == authority.cert
    with pytest.raises(PKIError, match="passphrase"):
        CertificateAuthority(authority.directory).load("nope")


def test_sign_batch_signs_each_and_isolates_failures(ca: CertificateAuthority) -> None:
    good = generate_private_key("ecdsa-p256")
    csr = csr_to_pem(build_csr(good, "srv1", ["srv1"]))
    weak = csr_to_pem(build_csr(generate_private_key("rsa-2048"), "srv3", ["srv3"]))
    tampered = csr.replace(csr.splitlines()[3], csr.splitlines()[3][::-1])
    result = sign_batch(
        ca,
        [
            {"host": "srv1", "csr": csr, "sans": ["srv1", "10.0.0.1"]},
            {"host": "srv2", "csr": tampered, "sans": ["srv2"]},
            {"host": "srv3", "csr": weak, "sans": ["bad name"]},
            {"host": "srv4", "csr": "", "sans": ["srv4"]},
        ],
        validity_days=30,
    )
    assert set(result["certificates"]) == {"srv1"}
    assert set(result["errors"]) == {"srv2", "srv3"}
    assert "invalid DNS name" in result["errors"]["srv3"]
    cert = load_certificate(result["certificates"]["srv1"])
    # the controller decides the SANs, not the CSR
    assert cert_sans(cert) == ["DNS:srv1", "IP:10.0.0.1"]
    assert same_public_key(cert.public_key(), good.public_key())


# ---------------------------------------------------------------------------------------------
# chain verification


@pytest.fixture(scope="module")
def intermediate(ca: CertificateAuthority):
    key = generate_private_key("ecdsa-p256")
    builder = (
        x509.CertificateBuilder()
        .subject_name(common_name_subject("intermediate"))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=100))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    cert = builder.sign(ca.key, hashes.SHA384())
    return cert, key


def test_verify_chain_with_intermediate_and_root(ca, intermediate) -> None:
    inter_cert, inter_key = intermediate
    leaf = issue_certificate(
        generate_private_key("ecdsa-p256").public_key(),
        "srv1",
        ["srv1"],
        issuer_cert=inter_cert,
        issuer_key=inter_key,
        validity_days=30,
    )
    verify_chain(leaf, [inter_cert, ca.cert])
    # root left out: verifies only against the trust anchors
    verify_chain(leaf, [inter_cert], anchors=[ca.cert])
    with pytest.raises(PKIError, match="neither a root"):
        verify_chain(leaf, [inter_cert])
    # out of order / wrong intermediate
    with pytest.raises(PKIError, match="not signed by"):
        verify_chain(leaf, [ca.cert, inter_cert])


def test_verify_chain_rejects_a_foreign_chain(ca, other_ca) -> None:
    leaf = _issue(ca, generate_private_key("ecdsa-p256"))
    verify_chain(leaf, [ca.cert])
    with pytest.raises(PKIError, match="not signed by"):
        verify_chain(leaf, [other_ca.cert])
    with pytest.raises(PKIError, match="neither a root"):
        verify_chain(leaf, [], anchors=[other_ca.cert])


def test_verify_chain_rejects_an_expired_certificate(ca) -> None:
    old = _issue(ca, generate_private_key("ecdsa-p256"), days=10, now=NOW - dt.timedelta(days=20))
    with pytest.raises(PKIError, match="not valid now"):
        verify_chain(old, [ca.cert])


# ---------------------------------------------------------------------------------------------
# the renewal rules: one case per rule


def _reasons(ca, other_ca, case: str) -> list[str]:
    key = generate_private_key("ecdsa-p256")
    cert = _issue(ca, key, sans=["srv1", "10.0.0.1"])
    wanted = {"wanted_sans": ["srv1", "10.0.0.1"], "key_type": "ecdsa-p256", "renew_before_days": 30}
    issuer = ca.cert
    force = False
    if case == "missing":
        cert = None
    elif case == "expiring":
        cert = _issue(ca, key, sans=["srv1", "10.0.0.1"], days=29)
    elif case == "expired":
        cert = _issue(ca, key, sans=["srv1", "10.0.0.1"], days=10, now=NOW - dt.timedelta(days=20))
    elif case == "sans_added":
        wanted["wanted_sans"] = ["srv1", "10.0.0.1", "ftp.example.org"]
    elif case == "sans_removed":
        wanted["wanted_sans"] = ["srv1"]
    elif case == "key_type":
        wanted["key_type"] = "rsa-2048"
    elif case == "issuer":
        issuer = other_ca.cert
    elif case == "key_mismatch":
        key = generate_private_key("ecdsa-p256")
    elif case == "key_missing":
        key = None
    elif case == "forced":
        force = True
    return needs_reissue(cert, key, issuer=issuer, force=force, **wanted)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing"),
        ("expiring", "expiring"),
        ("expired", "expiring"),
        ("sans_added", "sans"),
        ("sans_removed", "sans"),
        ("key_type", "key type"),
        ("issuer", "issuer"),
        ("key_mismatch", "key:"),
        ("key_missing", "key:"),
        ("forced", "forced"),
    ],
)
def test_needs_reissue_rule(ca, other_ca, case: str, reason: str) -> None:
    reasons = _reasons(ca, other_ca, case)
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith(reason)


def test_needs_reissue_keeps_a_good_certificate(ca, other_ca) -> None:
    assert _reasons(ca, other_ca, "none") == []


@pytest.mark.parametrize(("days", "renew"), [(31, 30), (90, 30), (2, 1)])
def test_outside_the_threshold_nothing_is_reissued(ca, days: int, renew: int) -> None:
    key = generate_private_key("ecdsa-p256")
    cert = _issue(ca, key, days=days)
    assert needs_reissue(cert, key, wanted_sans=["srv1"], key_type=None, renew_before_days=renew) == []


def test_self_signed_rule(ca) -> None:
    key = generate_private_key("ecdsa-p256")
    own = issue_certificate(
        key.public_key(), "srv1", ["srv1"], issuer_cert=None, issuer_key=key, validity_days=90
    )
    common = {"wanted_sans": ["srv1"], "key_type": "ecdsa-p256", "renew_before_days": 30, "self_signed": True}
    assert needs_reissue(own, key, **common) == []
    assert needs_reissue(_issue(ca, key), key, **common)[0].startswith("issuer")


# ---------------------------------------------------------------------------------------------
# server certificate validation (external and provided modes)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("ok", None),
        ("expired", "expired"),
        ("names", "do not cover"),
        ("chain", "not signed by"),
        ("client_only", "serverAuth"),
    ],
)
def test_validate_server_certificate(ca, other_ca, case: str, message: str | None) -> None:
    key = generate_private_key("ecdsa-p256")
    cert = _issue(ca, key, sans=["srv1", "srv1.lab"])
    chain, required = [ca.cert], ["srv1"]
    if case == "expired":
        cert = _issue(ca, key, days=10, now=NOW - dt.timedelta(days=20))
    elif case == "names":
        required = ["srv2"]
    elif case == "chain":
        chain = [other_ca.cert]
    elif case == "client_only":
        # a server certificate in every way but its EKU
        cert = issue_leaf(
            key.public_key(),
            common_name_subject("srv1"),
            [x509.DNSName("srv1")],
            x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
            issuer_name=ca.cert.subject,
            issuer_key=ca.key,
            not_after=NOW + dt.timedelta(days=10),
            now=NOW,
        )
    if message is None:
        validate_server_certificate(cert, chain, required)
    else:
        with pytest.raises(PKIError, match=message):
            validate_server_certificate(cert, chain, required)


@pytest.mark.parametrize("ca_key_type", ["rsa-3072", "ecdsa-p256", "ecdsa-p384"])
def test_signature_check_per_ca_key_type(tmp_path, ca_key_type: str) -> None:
    authority = CertificateAuthority(str(tmp_path / "ca"))
    authority.create(ca_key_type, "CA", 30)
    cert = _issue(authority, generate_private_key("ecdsa-p256"))
    assert signed_by(cert, authority.cert)
    verify_chain(cert, [authority.cert])
    # same name, different key: a re-created CA does not verify the old certificates
    again = CertificateAuthority(str(tmp_path / "ca2"))
    again.create(ca_key_type, "CA", 30)
    assert not signed_by(cert, again.cert)
