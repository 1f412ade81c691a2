"""external mode: the certificate a stand-in public CA signed is served and trusted by a client."""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import ssl

import pytest
from conftest import host_name

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PUBLIC_ROOT = "/etc/ssl/public-test-root.pem"


def _fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _dropped(name: str) -> str:
    return (EPHEMERAL / "pki" / "external" / name / "cert.pem").read_text()


def _s_client(client, server: str, port: int, ca_file: str, starttls: bool):
    starttls_args = "-starttls ftp " if starttls else ""
    return client.run(
        f"openssl s_client {starttls_args}-connect {server}:{port} -servername {server} "
        f"-CAfile {ca_file} -verify_return_error -verify_hostname {server} -showcerts </dev/null"
    )


def _served_leaf(output: str) -> str:
    match = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", output, re.S)
    assert match, output
    return match.group(0)


def test_csr_was_exported_and_installed_certificate_is_the_dropped_one(server) -> None:
    name = host_name(server)
    assert (
        (EPHEMERAL / "pki" / "csr" / f"{name}.csr").read_text().startswith("-----BEGIN CERTIFICATE REQUEST")
    )
    on_disk = server.file("/etc/ftps-kit/pki/current/cert.pem").content_string
    assert _fingerprint(on_disk) == _fingerprint(_dropped(name))
    chain = server.file("/etc/ftps-kit/pki/current/chain.pem").content_string
    assert chain.count("BEGIN CERTIFICATE") == 2
    assert not server.file("/etc/ftps-kit/pki/pending").exists


@pytest.mark.parametrize(("port", "starttls"), [(21, True), (990, False)])
def test_client_trusts_the_served_certificate(server, client, port: int, starttls: bool) -> None:
    name = host_name(server)
    result = _s_client(client, name, port, PUBLIC_ROOT, starttls)
    assert result.rc == 0, result.stdout + result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout
    assert _fingerprint(_served_leaf(result.stdout)) == _fingerprint(_dropped(name))


def test_client_without_the_public_root_refuses(server, client) -> None:
    # The control: the same client with only the system CAs must not trust the server.
    result = _s_client(client, host_name(server), 21, "/etc/ssl/certs/ca-certificates.crt", True)
    assert result.rc != 0
    assert "Verify return code: 0 (ok)" not in result.stdout
