"""The kit's store on the key manager (molecule/keymanager): where the CA key is, and is not.

The CA key exists on the key manager only (root only, encrypted); the controller, the servers and
the client hold no CA key; the client trusts exactly the key manager's CA and every server serves
a certificate that CA signed; rotate.yml's record and report.yml's report are on the key manager.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import testinfra
from cryptography import x509

KM = "keymanager-km"
SERVERS = ["keymanager-deb12", "keymanager-deb13"]
CLIENT = "keymanager-client"
STORE = "/var/lib/ftps-kit"
CA_DIR = f"{STORE}/pki/ca"
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
ROOT = pathlib.Path(__file__).resolve().parents[3]


def host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def test_the_ca_key_is_on_the_key_manager_root_only_and_encrypted() -> None:
    km = host(KM)
    store, ca_dir, key = km.file(STORE), km.file(CA_DIR), km.file(f"{CA_DIR}/ca.key")
    assert (store.user, store.mode) == ("root", 0o700)
    assert (ca_dir.user, ca_dir.mode) == ("root", 0o700)
    assert (key.user, key.mode) == ("root", 0o600)
    assert key.content_string.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")


@pytest.mark.parametrize("name", [*SERVERS, CLIENT])
def test_no_ca_key_on_the_servers_or_the_client(name: str) -> None:
    found = host(name).check_output("find / -xdev -name 'ca.key' -o -name 'ca-*.key' 2>/dev/null || true")
    assert found == ""


def test_no_state_on_the_controller() -> None:
    """Nothing a later run needs stays on the controller: no CA, no record, no report there."""
    inventory_dir = EPHEMERAL / "inventory"
    assert not (inventory_dir / ".ftps-kit" / "pki").exists()
    found = [str(p) for base in (EPHEMERAL, ROOT / "inventories") for p in base.rglob("ca.key")]
    # the lab's own controller store (other scenarios) may hold a CA: never this fleet's
    ours = host(KM).file(f"{CA_DIR}/ca.pem").content_string
    for path in found:
        assert (pathlib.Path(path).parent / "ca.pem").read_text() != ours, path
    assert not list(EPHEMERAL.rglob("rotation-*.json"))
    assert not list(EPHEMERAL.rglob("ftps-report.json"))


def test_the_client_trusts_exactly_the_key_managers_ca_and_the_servers_are_signed_by_it() -> None:
    ca_pem = host(KM).file(f"{CA_DIR}/ca.pem").content_string
    client = host(CLIENT)
    trusted = client.check_output("ls /usr/local/share/ca-certificates/").split()
    assert trusted == ["ftps-kit-internal.crt"]
    assert client.file("/usr/local/share/ca-certificates/ftps-kit-internal.crt").content_string == ca_pem
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    for name in SERVERS:
        served = host(name).file("/etc/ftps-kit/pki/current/cert.pem").content_string
        cert = x509.load_pem_x509_certificate(served.encode())
        cert.verify_directly_issued_by(ca)


def test_the_rotation_record_and_the_report_are_on_the_key_manager() -> None:
    km = host(KM)
    records = km.check_output(f"ls {STORE}/rotations").split()
    assert records and all(name.startswith("rotation-") for name in records)
    record = json.loads(km.file(f"{STORE}/rotations/{sorted(records)[-1]}").content_string)
    assert record["result"] == "complete"
    assert sorted(h["host"] for h in record["hosts"]) == SERVERS
    assert {h["result"] for h in record["hosts"]} == {"rotated"}
    report = json.loads(km.file(f"{STORE}/reports/ftps-report.json").content_string)
    assert sorted(h["host"] for h in report["hosts"]) == SERVERS
