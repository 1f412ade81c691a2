"""plugins/module_utils/pki/ca.issue_leaf: the one end-entity builder behind server and client
certificates. The whole extension list (order, criticality, value) of each kind, written out here
as the contract, so that sharing the builder can change neither kind."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki import ca, client
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NO_USAGE = dict.fromkeys(
    ("content_commitment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"), False
)


@pytest.fixture(scope="module")
def issuer():
    key = ec.generate_private_key(ec.SECP384R1())
    return key, ca.create_ca(key, "test CA", 365, now=NOW)


def _key(kind: str):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _expected(public_key, issuer_key, sans: list, eku, san_critical: bool = False) -> list:
    usage = x509.KeyUsage(
        digital_signature=True,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        encipher_only=False,
        decipher_only=False,
        **NO_USAGE,
    )
    return [
        (x509.SubjectAlternativeName(sans), san_critical),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (usage, True),
        (x509.ExtendedKeyUsage([eku]), False),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False),
    ]


def _actual(cert: x509.Certificate) -> list:
    return [(ext.value, ext.critical) for ext in cert.extensions]


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_server_certificate_extensions(issuer, kind) -> None:
    issuer_key, issuer_cert = issuer
    key = _key(kind)
    cert = ca.issue_certificate(
        key.public_key(),
        "srv.example",
        ["srv.example", "IP:192.0.2.1"],
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        validity_days=90,
        now=NOW,
    )
    sans = [x509.DNSName("srv.example"), x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]
    assert _actual(cert) == _expected(key.public_key(), issuer_key, sans, ExtendedKeyUsageOID.SERVER_AUTH)
    assert cert.subject.rfc4514_string() == "CN=srv.example"
    assert cert.issuer == issuer_cert.subject
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=90)


def test_self_signed_server_certificate_extensions() -> None:
    key = _key("ec")
    cert = ca.issue_certificate(
        key.public_key(),
        "srv.example",
        ["srv.example"],
        issuer_cert=None,
        issuer_key=key,
        validity_days=9,
        now=NOW,
    )
    sans = [x509.DNSName("srv.example")]
    assert _actual(cert) == _expected(key.public_key(), key, sans, ExtendedKeyUsageOID.SERVER_AUTH)
    assert cert.issuer == cert.subject


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("identity", ["alice@example.org", "a" * 60 + "@example.org"])
def test_client_certificate_extensions(issuer, kind, identity) -> None:
    issuer_key, issuer_cert = issuer
    key = _key(kind)

    class CSR:
        def public_key(self):
            return key.public_key()

    authority = type("Authority", (), {"cert": issuer_cert, "key": issuer_key})()
    cert = client.issue_client_certificate(authority, CSR(), identity, 30, now=NOW)
    empty_subject = len(identity) > 64
    expected = _expected(
        key.public_key(),
        issuer_key,
        [x509.RFC822Name(identity)],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        san_critical=empty_subject,
    )
    assert _actual(cert) == expected
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == (
        [] if empty_subject else [x509.NameAttribute(NameOID.COMMON_NAME, identity)]
    )
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=30)


def test_ca_key_usage_is_exactly_sign_certificates_and_crls(issuer) -> None:
    _, issuer_cert = issuer
    usage = issuer_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value == x509.KeyUsage(
        digital_signature=True,
        key_encipherment=False,
        key_agreement=False,
        content_commitment=False,
        data_encipherment=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def test_key_usage_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown key usages"):
        ca.key_usage("digital_signature", "sign_everything")
