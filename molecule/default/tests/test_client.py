"""The client side of site.yml (ftps_client): the client trusts the fleet and proves it.

State: the fleet CA sits in the client's system trust store (file + bundle + hashed link), the
pin file matches the served certificates, ftps-trust is on the PATH. Behaviour, from the client
to every server: ftpskit.ftps.ftps_probe (run by ansible, as site.yml does) verifies chain, hostname, pin and
a round trip on a reused TLS session; ftps-trust says each certificate chains to a trusted CA;
curl and lftp verify with the system store alone (no --cacert), and refuse a name the
certificate does not cover, so verification is really on.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
import testinfra
import yaml
from conftest import CLIENTS, ansible_env, host_name
from cryptography import x509
from cryptography.hazmat.primitives import hashes

ROOT = pathlib.Path(__file__).resolve().parents[3]
GROUP_VARS = ROOT / "inventories" / "lab" / "group_vars"
SETTINGS = yaml.safe_load((GROUP_VARS / "ftps_servers" / "main.yml").read_text())
# The lab's clear-text "vault" (wherever the lab keeps it: group_vars/<group>/vault.yml).
VAULT = {
    k: v for f in sorted(GROUP_VARS.glob("*/vault.yml")) for k, v in yaml.safe_load(f.read_text()).items()
}
CONTROL_PORT = SETTINGS["ftps_server_control_port"]
IMPLICIT_PORT = SETTINGS["ftps_server_implicit_port"]
PORTS = [(CONTROL_PORT, False), (IMPLICIT_PORT, True)]
PORT_IDS = ["explicit", "implicit"]
CA_FILE = "/usr/local/share/ca-certificates/ftps-kit-internal.crt"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PIN_FILE = "/etc/ftps-trust/known_servers.json"
SERVED_CERT = "/etc/ftps-kit/pki/current/cert.pem"
USER = "alice"


def password(name: str) -> str:
    account = next(a for a in SETTINGS["ftps_users_accounts"] if a["name"] == name)
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", account["password"])
    assert match, f"lab account {name}: password is not a vault reference"
    return VAULT[match.group(1)]


def deployed_fingerprint(server: testinfra.host.Host) -> str:
    """SHA-256 (hex) of the certificate ftps_pki installed on the server."""
    pem = server.file(SERVED_CERT).content_string.encode()
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


# --- state -----------------------------------------------------------------------------------
def test_fleet_ca_is_in_the_system_trust_store(client: testinfra.host.Host) -> None:
    ca = client.file(CA_FILE)
    assert ca.is_file
    assert (ca.user, ca.group, ca.mode) == ("root", "root", 0o644)
    pem = ca.content_string.strip()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert pem in client.file(BUNDLE).content_string
    # OpenSSL's hashed directory finds it too (what curl and lftp use on Debian).
    subject_hash = client.check_output(f"openssl x509 -noout -subject_hash -in {CA_FILE}")
    assert client.file(f"/etc/ssl/certs/{subject_hash}.0").linked_to == CA_FILE


def test_ftps_trust_is_installed(client: testinfra.host.Host) -> None:
    assert client.file("/usr/local/bin/ftps-trust").is_symlink
    result = client.run("ftps-trust --help")
    assert result.rc == 0
    assert "exit codes:" in result.stdout


def test_client_installs_only_the_shared_package(client: testinfra.host.Host) -> None:
    """ftps-trust's venv holds the ftpskit-common wheel and nothing of the daemon (no ftpsd,
    pyftpdlib, pyOpenSSL or cryptography): a client gets only what a client needs."""
    names = json.loads(
        client.check_output(
            "/opt/ftps-trust/venv/bin/python -c 'import importlib.metadata as m, json;"
            ' print(json.dumps(sorted(d.metadata["Name"].lower() for d in m.distributions())))\''
        )
    )
    assert [n for n in names if n not in ("pip", "setuptools")] == ["ftpskit-common"]


def test_pins_match_the_served_certificates(client: testinfra.host.Host, server: testinfra.host.Host) -> None:
    if not client.file(PIN_FILE).exists:
        pytest.skip("site.yml runs ftps_client without ftps_client_pins_enabled")
    pins = json.loads(client.file(PIN_FILE).content_string)["servers"]
    name = host_name(server)
    for port, _implicit in PORTS:
        entry = pins[f"{name}:{port}"]
        assert entry["fingerprint_sha256"] == deployed_fingerprint(server)


# --- behaviour: the probe, as Ansible runs it --------------------------------------------------
def run_probe(client_name: str, args: dict) -> dict:
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "ansible"),
            client_name,
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "-m",
            "ftpskit.ftps.ftps_probe",
            "-a",
            json.dumps(args),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][client_name]


@pytest.mark.parametrize(("port", "implicit"), PORTS, ids=PORT_IDS)
def test_probe_verifies_with_the_system_store_and_proves_a_round_trip(
    server: testinfra.host.Host, port: int, implicit: bool
) -> None:
    name = host_name(server)
    result = run_probe(
        CLIENTS[0],
        {
            "host": name,
            "port": port,
            "implicit": implicit,
            "pin": {"fingerprint_sha256": deployed_fingerprint(server)},
            "username": USER,
            "password": password(USER),
            "round_trip": True,
        },
    )
    assert result.get("failed") is not True, result.get("msg")
    assert result["verified"] is True
    assert result["pin_matched"] is True
    assert result["data_session_reused"] is True
    assert result["round_trip"]["match"] is True
    assert f"DNS:{name}" in result["certificate"]["sans"]
    assert result["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_probe_refuses_a_wrong_pin_and_a_wrong_name(server: testinfra.host.Host) -> None:
    name = host_name(server)
    wrong_pin = run_probe(CLIENTS[0], {"host": name, "pin": {"fingerprint_sha256": "00" * 32}})
    assert wrong_pin["failed"] is True
    assert wrong_pin["error_kind"] == "pin_mismatch"
    wrong_name = run_probe(CLIENTS[0], {"host": name, "server_hostname": "not-this-server.invalid"})
    assert wrong_name["failed"] is True
    assert wrong_name["error_kind"] == "hostname_mismatch"
    assert "not-this-server.invalid is not in the certificate's SANs" in wrong_name["msg"]


# --- behaviour: a person's command and the stock clients -----------------------------------------
@pytest.mark.parametrize(("port", "implicit"), PORTS, ids=PORT_IDS)
def test_ftps_trust_says_the_certificate_chains_to_a_trusted_ca(
    client: testinfra.host.Host, server: testinfra.host.Host, port: int, implicit: bool
) -> None:
    name = host_name(server)
    flags = " --implicit" if implicit else ""
    result = client.run(
        f"ftps-trust {name}:{port}{flags} --pin-file /root/.config/ftps-trust/test-{port}.json"
    )
    assert result.rc == 0, result.stdout + result.stderr
    assert f"The certificate chains to the system's trusted CAs and is valid for {name}." in result.stdout
    assert deployed_fingerprint(server) in result.stdout  # the one format, as in the pins and facts


@pytest.mark.parametrize(("port", "implicit"), PORTS, ids=PORT_IDS)
def test_curl_verifies_with_the_system_store(
    client: testinfra.host.Host, server: testinfra.host.Host, port: int, implicit: bool
) -> None:
    name = host_name(server)
    url = f"ftps://{name}:{port}/" if implicit else f"ftp://{name}:{port}/"
    auth = shlex.quote(f"{USER}:{password(USER)}")
    ok = client.run(f"curl -sS --ssl-reqd --max-time 30 -u {auth} {url}")
    assert ok.rc == 0, ok.stderr
    # The same server under a name its certificate does not cover: curl must refuse (60).
    alias = "not-this-server.invalid"
    address = client.check_output(f"getent hosts {name}").split()[0]
    bad_url = url.replace(name, alias)
    refused = client.run(
        f"curl -sS --ssl-reqd --max-time 30 -u {auth} --resolve {alias}:{port}:{address} {bad_url}"
    )
    assert refused.rc == 60, (refused.rc, refused.stderr)


def test_lftp_verifies_with_the_system_store(
    client: testinfra.host.Host, server: testinfra.host.Host
) -> None:
    name = host_name(server)
    script = (
        "set net:max-retries 1; set ftp:ssl-force true; set ftp:ssl-protect-data true; "
        "set ssl:verify-certificate true; "
        f"open -u {USER},{password(USER)} -p {CONTROL_PORT} {name}; cls -1; bye"
    )
    assert client.run(f"lftp -c {shlex.quote(script)}").rc == 0
    # With a CA file that does not hold the fleet CA, the same listing must fail.
    other = client.check_output("ls /usr/share/ca-certificates/mozilla | head -1")
    script_bad = f"set ssl:ca-file /usr/share/ca-certificates/mozilla/{other}; " + script
    assert client.run(f"timeout 60 lftp -c {shlex.quote(script_bad)}").rc != 0
