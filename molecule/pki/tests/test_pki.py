"""ftps_pki's state on the hosts: layout, modes, symlinks, chain, and facts = files on disk."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys

import pytest

# The collection's module_utils under the name the modules use (the link `make collection-link`
# makes; tests/conftest.py does the same for the unit tests, which Molecule's pytest run does not
# see).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / ".cache" / "collections"))
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    load_certificate,
    load_certificates,
    verify_chain,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import load_private_key, same_public_key
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import cert_sans
from cryptography.hazmat.primitives import serialization

PKI = "/etc/ftps-kit/pki"
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki"

# name -> address, the lab's plan for this scenario (lab/molecule-all.sh passes it)
LAB_HOSTS = json.loads(os.environ["FTPSKIT_LAB_HOSTS"])


def _name(host) -> str:
    return host.backend.get_hostname()


@pytest.fixture
def facts(host) -> dict:
    return json.loads((EPHEMERAL / "facts" / f"{_name(host)}.json").read_text())


@pytest.fixture(scope="module")
def ca_cert():
    return load_certificate((EPHEMERAL / "ca" / "ca.pem").read_bytes())


def test_ca_key_is_private_on_the_controller() -> None:
    assert (EPHEMERAL / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (EPHEMERAL / "ca").stat().st_mode & 0o777 == 0o700


def test_layout_and_modes(host) -> None:
    root = host.file(PKI)
    assert root.is_directory and root.mode == 0o750 and root.group == "ftpsd"
    current, previous = host.file(f"{PKI}/current"), host.file(f"{PKI}/previous")
    assert current.is_symlink and previous.is_symlink
    assert current.linked_to.startswith(f"{PKI}/gen-")
    assert previous.linked_to.startswith(f"{PKI}/gen-")
    assert current.linked_to != previous.linked_to
    key = host.file(f"{PKI}/current/key.pem")
    assert (key.mode, key.user, key.group) == (0o640, "root", "ftpsd")
    for name in ("cert.pem", "chain.pem", "fullchain.pem"):
        assert host.file(f"{PKI}/current/{name}").mode == 0o644
    # only the live and the rollback generation are kept, and no half-written staging dirs
    entries = host.check_output(f"ls -A {PKI}").split()
    assert sorted(e for e in entries if e.startswith("gen-") or e.startswith(".")) == sorted(
        [os.path.basename(current.linked_to), os.path.basename(previous.linked_to)]
    )
    assert not host.file(f"{PKI}/pending").exists


def test_certificate_matches_key_and_chains_to_the_ca(host, ca_cert) -> None:
    cert = load_certificate(host.file(f"{PKI}/current/cert.pem").content)
    key = load_private_key(host.file(f"{PKI}/current/key.pem").content)
    chain = load_certificates(host.file(f"{PKI}/current/chain.pem").content_string)
    assert same_public_key(cert.public_key(), key.public_key())
    assert chain == [ca_cert]
    verify_chain(cert, chain)
    fullchain = host.file(f"{PKI}/current/fullchain.pem").content_string
    assert load_certificates(fullchain) == [cert, ca_cert]
    name = _name(host)
    sans = cert_sans(cert)
    assert f"DNS:{name}" in sans and "DNS:ftp.pki.test" in sans
    # the address of the lab's plan (lab/lab_addresses.py), and no other
    assert [s for s in sans if s.startswith("IP:")] == [f"IP:{LAB_HOSTS[name]}"], sans


def test_facts_describe_the_certificate_on_disk(host, facts) -> None:
    cert = load_certificate(host.file(f"{PKI}/current/cert.pem").content)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert facts["fingerprint_sha256"] == hashlib.sha256(der).hexdigest()
    assert facts["serial"] == format(cert.serial_number, "x")
    assert facts["sans"] == cert_sans(cert)
    assert facts["key_type"] == "ecdsa-p256" and facts["key_size"] == 256
    assert facts["paths"]["generation"] == host.file(f"{PKI}/current").linked_to
    assert facts["issuer"] == "CN=ftps-kit internal CA"


def test_previous_generation_is_a_complete_pair(host) -> None:
    cert = load_certificate(host.file(f"{PKI}/previous/cert.pem").content)
    key = load_private_key(host.file(f"{PKI}/previous/key.pem").content)
    assert same_public_key(cert.public_key(), key.public_key())
