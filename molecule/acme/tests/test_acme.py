"""acme mode: pebble issued the served certificates, renewal rotated them, port 80 is closed."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import secrets
import shlex
import ssl

import pytest
from conftest import host_name

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# name -> address, the lab's plan for this scenario (lab/molecule-all.sh passes it)
LAB_HOSTS = json.loads(os.environ["FTPSKIT_LAB_HOSTS"])
PEBBLE_ROOT = "/etc/ssl/pebble-root.pem"
AUTH = "alice:acme-alice-password"


def _facts(name: str, step: str) -> dict:
    return json.loads((EPHEMERAL / "facts" / f"{name}.{step}.json").read_text())


def _fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _s_client(client, server: str, port: int, starttls: bool, ca_file: str = PEBBLE_ROOT):
    starttls_args = "-starttls ftp " if starttls else ""
    return client.run(
        f"openssl s_client {starttls_args}-connect {server}:{port} -servername {server} "
        f"-CAfile {ca_file} -verify_return_error -verify_hostname {server} -showcerts </dev/null"
    )


def _served_leaf(output: str) -> str:
    match = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", output, re.S)
    assert match, output
    return match.group(0)


@pytest.mark.parametrize(("port", "starttls"), [(21, True), (990, False)])
def test_served_chain_verifies_against_pebbles_root(server, client, port: int, starttls: bool) -> None:
    name = host_name(server)
    result = _s_client(client, name, port, starttls)
    assert result.rc == 0, result.stdout + result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout
    assert "Pebble Intermediate CA" in result.stdout
    # What is served is what ftps_pki installed last: the renewed certificate.
    assert _fingerprint(_served_leaf(result.stdout)) == _facts(name, "renewed")["fingerprint_sha256"]


def test_without_pebbles_root_the_client_refuses(server, client) -> None:
    result = _s_client(client, host_name(server), 21, True, "/etc/ssl/certs/ca-certificates.crt")
    assert result.rc != 0
    assert "Verify return code: 0 (ok)" not in result.stdout


def test_renewal_gave_a_new_key_and_certificate(server) -> None:
    name = host_name(server)
    first, renewed = _facts(name, "converge"), _facts(name, "renewed")
    assert first["issuer"].startswith("CN=Pebble Intermediate CA")
    assert renewed["fingerprint_sha256"] != first["fingerprint_sha256"]
    assert renewed["spki_sha256"] != first["spki_sha256"]
    on_disk = server.file("/etc/ftps-kit/pki/current/cert.pem").content_string
    assert _fingerprint(on_disk) == renewed["fingerprint_sha256"]
    # The first generation is kept as `previous` for rollback.
    previous = server.file("/etc/ftps-kit/pki/previous/cert.pem").content_string
    assert _fingerprint(previous) == first["fingerprint_sha256"]
    assert f"DNS:{name}" in renewed["sans"]
    # the address of the lab's plan (lab/lab_addresses.py), and no other
    assert [s for s in renewed["sans"] if s.startswith("IP:")] == [f"IP:{LAB_HOSTS[name]}"]


def test_transfer_over_the_renewed_certificate(server, client) -> None:
    name, remote = host_name(server), f"acme-{secrets.token_hex(4)}.bin"
    path = f"/root/{remote}"
    assert client.run(f"head -c 1048576 /dev/urandom > {path}").rc == 0
    curl = f"curl -sS --ssl-reqd --max-time 30 --cacert {PEBBLE_ROOT} -u {shlex.quote(AUTH)}"
    up = client.run(f"{curl} -T {path} ftp://{name}/{remote}")
    assert up.rc == 0, up.stderr
    down = client.run(f"{curl} -o {path}.back ftp://{name}/{remote}")
    assert down.rc == 0, down.stderr
    assert client.run(f"cmp {path} {path}.back").rc == 0
    client.run(f"{curl} ftp://{name}/ -Q {shlex.quote('DELE ' + remote)}")


def test_challenge_port_is_closed_again(server, client) -> None:
    name = host_name(server)
    # The kit's table drops it: no answer at all (not even a refusal) within the timeout.
    probe = client.run(
        f"curl -sS --max-time 5 -o /dev/null -w '%{{http_code}}' http://{name}/.well-known/acme-challenge/x"
    )
    assert probe.rc != 0
    assert probe.stdout in ("", "000")
    chain = server.run("nft -a list chain inet ftps_kit input")
    assert chain.rc == 0
    assert "acme http-01 window" not in chain.stdout
    assert not server.service("ftps-kit-acme-http01").is_running
    assert not server.file("/run/ftps-kit-acme").exists
    assert not server.socket("tcp://80").is_listening


def test_server_key_never_left_the_server() -> None:
    # The controller holds only the account key: no server key material in the scenario's files.
    for path in EPHEMERAL.rglob("*"):
        if path.is_file() and path.suffix in (".pem", ".key", ".json"):
            text = path.read_text(errors="replace")
            if "PRIVATE KEY" in text:
                assert path.name == "account.key", path


def test_account_key_is_encrypted_at_rest_and_private() -> None:
    keys = list((EPHEMERAL / "pki" / "acme").glob("*/account.key"))
    assert len(keys) == 1
    key = keys[0]
    assert "BEGIN ENCRYPTED PRIVATE KEY" in key.read_text()
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
    account = json.loads((key.parent / "account.json").read_text())
    assert account["uri"].startswith("https://")
