"""Client certificates (molecule/clientcert): where the client CA key is, what was issued, the CRL.

The client CA key exists on the key manager only (root only, encrypted); the client host holds its
people's keys (0600) and certificates naming exactly their identity with the clientAuth EKU only,
issued by the client CA (not the server CA); every server holds the client CA certificate and a
CRL, signed by it, listing exactly alice's serial after the side effect's revocation; the report's
files list both certificates and the metrics.
"""

from __future__ import annotations

import json

import pytest
import testinfra
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

KM = "clientcert-km"
SERVERS = ["clientcert-deb12", "clientcert-deb13"]
CLIENT = "clientcert-client"
CLIENT_CA = "/var/lib/ftps-kit/client-ca"
CERTS = "/etc/ftps-kit/client-certs"
PEOPLE = ["alice@example.org", "bob@example.org"]


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def _cert(name: str, path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(host(name).file(path).content_string.encode())


def test_the_client_ca_key_is_on_the_key_manager_only_and_encrypted() -> None:
    key = host(KM).file(f"{CLIENT_CA}/ca.key")
    assert (key.user, key.mode) == ("root", 0o600)
    assert key.content_string.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    for name in [*SERVERS, CLIENT]:
        assert host(name).check_output("find / -xdev -name 'ca.key' 2>/dev/null || true") == ""


def test_the_client_ca_is_not_the_server_ca() -> None:
    client_ca = _cert(KM, f"{CLIENT_CA}/ca.pem")
    server_ca = _cert(KM, "/var/lib/ftps-kit/pki/ca/ca.pem")
    assert client_ca.subject != server_ca.subject
    assert client_ca.public_key().public_numbers() != server_ca.public_key().public_numbers()


@pytest.mark.parametrize("identity", PEOPLE)
def test_people_certificates_on_the_client(identity: str) -> None:
    client = host(CLIENT)
    key, cert_file = client.file(f"{CERTS}/{identity}/key.pem"), client.file(f"{CERTS}/{identity}/cert.pem")
    assert (key.user, key.mode) == ("root", 0o600)
    assert cert_file.mode == 0o644
    assert not client.file(f"{CERTS}/{identity}/pending-key.pem").exists
    cert = _cert(CLIENT, f"{CERTS}/{identity}/cert.pem")
    ca = _cert(KM, f"{CLIENT_CA}/ca.pem")
    assert cert.issuer == ca.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [n.value for n in san] == [identity]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == 30
    # the key manager keeps every certificate it issued
    serial = format(cert.serial_number, "x")
    assert (
        host(KM).file(f"{CLIENT_CA}/issued/{serial}.pem").content_string.strip()
        == cert_file.content_string.strip()
    )


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_holds_the_client_ca_and_a_crl_listing_exactly_alice(server: str) -> None:
    node = host(server)
    assert (
        node.file("/etc/ftps-kit/pki/client/ca.pem").content_string
        == host(KM).file(f"{CLIENT_CA}/ca.pem").content_string
    )
    crl_file = node.file("/etc/ftps-kit/pki/client/crl.pem")
    assert crl_file.mode == 0o644
    assert crl_file.content_string == host(KM).file(f"{CLIENT_CA}/crl.pem").content_string
    crl = x509.load_pem_x509_crl(crl_file.content_string.encode())
    ca = _cert(KM, f"{CLIENT_CA}/ca.pem")
    assert crl.is_signature_valid(ca.public_key())
    alice = _cert(CLIENT, f"{CERTS}/alice@example.org/cert.pem")
    assert [r.serial_number for r in crl] == [alice.serial_number]
    assert 0 < (crl.next_update_utc - crl.last_update_utc).days <= 7


def test_the_report_lists_both_certificates_and_writes_the_metrics() -> None:
    km = host(KM)
    report = json.loads(km.file("/var/lib/ftps-kit/reports/client-certificates.json").content_string)
    rows = {r["identity"]: r for r in report["certificates"]}
    assert set(rows) == set(PEOPLE)
    assert rows["alice@example.org"]["revoked"] is True
    assert rows["bob@example.org"]["revoked"] is False
    metrics = km.file("/var/lib/ftps-kit/reports/client-certificates.prom").content_string
    assert 'ftpskit_client_cert_not_after_timestamp_seconds{identity="alice@example.org"' in metrics
    assert 'identity="bob@example.org"' in metrics
    assert "ftpskit_client_crl_next_update_timestamp_seconds " in metrics
