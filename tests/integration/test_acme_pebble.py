"""ftps_pki's ACME logic against a real ACME server: Let's Encrypt's pebble on 127.0.0.1.

pebble (Debian package `pebble`) runs with its own TLS certificate from a test CA; its
validation authority connects to 127.0.0.1:<httpPort>, where the kit's own http-01 responder
script (module_utils pki/acme_http01.RESPONDER_SOURCE) serves the tokens. Identifiers are
IP addresses (127.0.0.1), so no DNS is involved except in the wrong-name case.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    csr_to_pem,
    load_certificate,
    load_certificates,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import same_public_key
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import cert_sans, parse_san
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import validate_server_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.certs import TestCA
from tests.collection import acme, http01

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
pytestmark = pytest.mark.skipif(
    not os.path.exists(PEBBLE), reason="pebble is not installed (apt-get install pebble)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pebble:
    def __init__(self, tmp: pathlib.Path, dns_port: int | None = None) -> None:
        self.tmp = tmp
        self.port, self.mgmt, self.http_port, self.dns_port = (_free_port() for _ in range(4))
        if dns_port is not None:
            self.dns_port = dns_port
        ca = TestCA("pebble tls")
        issued = ca.issue("localhost")
        (tmp / "tls.pem").write_bytes(
            issued.cert.public_bytes(serialization.Encoding.PEM)
            + ca.intermediate.public_bytes(serialization.Encoding.PEM)
        )
        (tmp / "tls.key").write_bytes(
            issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.ca_bundle = ca.write_root(tmp / "tls-root.pem")
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt}",
                "certificate": str(tmp / "tls.pem"),
                "privateKey": str(tmp / "tls.key"),
                "httpPort": self.http_port,
                "tlsPort": _free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (tmp / "pebble.json").write_text(json.dumps(config))
        env = dict(
            os.environ,
            PEBBLE_VA_NOSLEEP="1",
            PEBBLE_VA_ALWAYS_VALID="0",
            PEBBLE_WFE_NONCEREJECT="0",
            PEBBLE_AUTHZREUSE="0",
        )
        self.proc = subprocess.Popen(
            [
                PEBBLE,
                "-config",
                str(tmp / "pebble.json"),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
                "-strict",
            ],
            stdout=(tmp / "pebble.log").open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.url = f"https://127.0.0.1:{self.port}/dir"
        deadline = time.monotonic() + 20
        while True:
            try:
                self.get(self.url)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError((tmp / "pebble.log").read_text()) from None
                time.sleep(0.2)

    def get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:  # noqa: S310 - our pebble
            return response.read()

    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.get(f"https://127.0.0.1:{self.mgmt}/roots/0"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Responder:
    """The kit's responder script, run directly (no systemd) on pebble's httpPort."""

    def __init__(self, tmp: pathlib.Path, port: int) -> None:
        self.dir = tmp / "tokens"
        self.dir.mkdir()
        script = tmp / "responder.py"
        script.write_text(http01.RESPONDER_SOURCE)
        self.proc = subprocess.Popen(
            http01.responder_command(
                sys.executable, str(script), bind="127.0.0.1", port=port, token_dir=str(self.dir)
            ),
            stderr=subprocess.DEVNULL,
        )
        self.port = port
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def serve(self, tokens: list[dict[str, str]]) -> None:
        for item in tokens:
            (self.dir / item["token"]).write_text(item["key_authorization"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class ChallTestSrv:
    """pebble-challtestsrv (same package): a DNS server whose TXT records an HTTP API sets."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.dns_port, self.mgmt = _free_port(), _free_port()
        self.proc = subprocess.Popen(
            [
                shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv",
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-management",
                f"127.0.0.1:{self.mgmt}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ],
            stdout=(tmp / "challtestsrv.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.mgmt), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # The dns-01 hook of the kit's contract: `hook add|remove <name> <value>`.
        self.hook = tmp / "dns-hook"
        self.log = tmp / "dns-hook.log"
        self.hook.write_text(
            f"""#!{sys.executable}
import json, sys, urllib.request
action, name, value = sys.argv[1:4]
open({str(self.log)!r}, "a").write(f"{{action}} {{name}}\\n")
if action == "add":
    path, body = "/set-txt", {{"host": name, "value": value}}
else:
    path, body = "/clear-txt", {{"host": name}}
url = "http://127.0.0.1:{self.mgmt}" + path
request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(request, timeout=5).read()
"""
        )
        self.hook.chmod(0o755)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    server = Pebble(tmp_path_factory.mktemp("pebble"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def responder(pebble: Pebble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    server = Responder(tmp_path_factory.mktemp("responder"), pebble.http_port)
    yield server
    server.stop()


def _csr(names: list[str]) -> tuple[ec.EllipticCurvePrivateKey, str]:
    # ACME orders the subject CN too, so (like the role's preflight asks) it is one of the SANs;
    # an IP address cannot be a CN identifier, so an IP-only CSR has an empty subject.
    key = ec.generate_private_key(ec.SECP256R1())
    subject = (
        x509.Name([])
        if names[0][0].isdigit()
        else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName([parse_san(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, csr_to_pem(csr)


def _connection(pebble: Pebble, account_dir: pathlib.Path, passphrase: str = "") -> acme.Connection:
    account = acme.Account(str(account_dir), pebble.url)
    account.ensure(passphrase, check_mode=False)
    conn = acme.Connection(pebble.url, str(pebble.ca_bundle), account)
    conn.register(email="ops@example.org", agree_terms=True)
    return conn


def test_account_key_is_created_once_encrypted_and_private(pebble: Pebble, tmp_path: pathlib.Path) -> None:
    account = acme.Account(str(tmp_path), pebble.url)
    assert account.ensure("s3cret", check_mode=False) is True
    data = pathlib.Path(account.key_path).read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in data
    assert stat.S_IMODE(os.stat(account.key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(account.directory).st_mode) == 0o700
    assert account.ensure("s3cret", check_mode=False) is False
    assert pathlib.Path(account.key_path).read_bytes() == data
    with pytest.raises(acme.AcmeError, match="ftps_pki_acme_account_passphrase"):
        acme.Account(str(tmp_path), pebble.url).ensure("wrong", check_mode=False)
    conn = acme.Connection(pebble.url, str(pebble.ca_bundle), account)
    assert conn.register(email="ops@example.org", agree_terms=True) is True
    # Known account: no registration on later runs.
    conn2 = acme.Connection(pebble.url, str(pebble.ca_bundle), acme.Account(str(tmp_path), pebble.url))
    conn2.account.ensure("s3cret", check_mode=False)
    assert conn2.register(email="ops@example.org", agree_terms=True) is False


def test_terms_must_be_agreed(pebble: Pebble, tmp_path: pathlib.Path) -> None:
    account = acme.Account(str(tmp_path), pebble.url)
    account.ensure("", check_mode=False)
    conn = acme.Connection(pebble.url, str(pebble.ca_bundle), account)
    with pytest.raises(acme.AcmeError, match="ftps_pki_acme_agree_terms: true"):
        conn.register(agree_terms=False)


def test_untrusted_directory_says_which_variable(pebble: Pebble, tmp_path: pathlib.Path) -> None:
    conn = acme.Connection(pebble.url, "")
    with pytest.raises(acme.AcmeError, match="ftps_pki_acme_ca_bundle"):
        _ = conn.directory


def test_http01_issuance_chain_verifies_against_pebble_root(
    pebble: Pebble, responder: Responder, tmp_path: pathlib.Path
) -> None:
    conn = _connection(pebble, tmp_path)
    key, csr = _csr(["127.0.0.1"])
    out = acme.phase_challenges(
        conn, [{"host": "h1", "csr": csr}, {"host": "idle", "csr": ""}], challenge_type="http-01"
    )
    assert out["errors"] == {}
    assert list(out["orders"]) == ["h1"]
    assert [t["identifier"] for t in out["tokens"]["h1"]] == ["127.0.0.1"]
    responder.serve(out["tokens"]["h1"])
    # The orders travel through Ansible as JSON between the phases.
    orders = json.loads(json.dumps(out["orders"]))
    done = acme.phase_certificates(conn, orders, challenge_type="http-01", timeout=60)
    assert done["errors"] == {}
    cert = load_certificate(done["certificates"]["h1"])
    chain = load_certificates(done["chains"]["h1"])
    assert same_public_key(cert.public_key(), key.public_key())
    assert cert_sans(cert) == ["IP:127.0.0.1"]
    validate_server_certificate(cert, chain, ["127.0.0.1"], [pebble.root()])


def test_unreachable_challenge_is_one_sentence_for_the_host(pebble: Pebble, tmp_path: pathlib.Path) -> None:
    conn = _connection(pebble, tmp_path)
    _key, csr = _csr(["127.0.0.1"])
    out = acme.phase_challenges(conn, [{"host": "h1", "csr": csr}], challenge_type="http-01", port=8080)
    # The tokens are never served: the responder (if any) answers 404.
    done = acme.phase_certificates(conn, out["orders"], challenge_type="http-01", port=8080, timeout=60)
    assert done["certificates"] == {}
    message = done["errors"]["h1"]
    assert "could not reach the http-01 challenge for 127.0.0.1" in message
    assert "port 8080" in message


def test_wrong_name_is_reported(pebble: Pebble, responder: Responder, tmp_path: pathlib.Path) -> None:
    conn = _connection(pebble, tmp_path)
    _key, csr = _csr(["ftp.does-not-exist.invalid"])
    out = acme.phase_challenges(conn, [{"host": "h1", "csr": csr}], challenge_type="http-01")
    if "h1" in out["errors"]:
        message = out["errors"]["h1"]
    else:
        responder.serve(out["tokens"]["h1"])
        message = acme.phase_certificates(conn, out["orders"], challenge_type="http-01", timeout=60)[
            "errors"
        ]["h1"]
    assert "ftp.does-not-exist.invalid" in message
    assert "resolve" in message or "reach" in message


def test_dns01_for_an_ip_address_is_refused_with_a_hint(pebble: Pebble, tmp_path: pathlib.Path) -> None:
    conn = _connection(pebble, tmp_path)
    _key, csr = _csr(["127.0.0.1"])
    out = acme.phase_challenges(
        conn, [{"host": "h1", "csr": csr}], challenge_type="dns-01", dns_hook="/bin/true"
    )
    assert "dns-01 cannot prove an IP address" in out["errors"]["h1"]


def test_renewal_info_absent_from_this_pebble_is_not_due(
    pebble: Pebble, responder: Responder, tmp_path: pathlib.Path
) -> None:
    # Debian's pebble 2.4 has no renewalInfo in its directory: nothing is due, nothing fails.
    conn = acme.Connection(pebble.url, str(pebble.ca_bundle))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    key = ec.generate_private_key(ec.SECP256R1())
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    out = acme.phase_renewal_info(conn, [{"host": "h1", "certificate": pem}])
    has_ari = "renewalInfo" in json.loads(pebble.get(pebble.url))
    assert out["available"] is has_ari
    if not has_ari:
        assert out["due"] == {}


@pytest.fixture(scope="module")
def dns_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pebble, ChallTestSrv]]:
    tmp = tmp_path_factory.mktemp("dns")
    dns = ChallTestSrv(tmp)
    server = Pebble(tmp, dns_port=dns.dns_port)
    yield server, dns
    server.stop()
    dns.stop()


def _run(argv: list[str]) -> tuple[int, str, str]:
    """What AnsibleModule.run_command gives the module: (rc, stdout, stderr) of an argv list."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_dns01_through_the_hook(dns_pebble: tuple[Pebble, ChallTestSrv], tmp_path: pathlib.Path) -> None:
    pebble, dns = dns_pebble
    conn = _connection(pebble, tmp_path)
    key, csr = _csr(["ftp.dns01.test"])
    out = acme.phase_challenges(
        conn, [{"host": "h1", "csr": csr}], challenge_type="dns-01", dns_hook=str(dns.hook), run=_run
    )
    assert out["errors"] == {}
    assert out["tokens"]["h1"] == []
    done = acme.phase_certificates(
        conn,
        json.loads(json.dumps(out["orders"])),
        challenge_type="dns-01",
        timeout=60,
        dns_hook=str(dns.hook),
        run=_run,
    )
    assert done["errors"] == {}, done["errors"]
    cert = load_certificate(done["certificates"]["h1"])
    assert same_public_key(cert.public_key(), key.public_key())
    assert cert_sans(cert) == ["DNS:ftp.dns01.test"]
    assert dns.log.read_text().splitlines() == [
        "add _acme-challenge.ftp.dns01.test.",
        "remove _acme-challenge.ftp.dns01.test.",
    ]


def test_dns01_hook_failure_is_the_hosts_sentence(
    dns_pebble: tuple[Pebble, ChallTestSrv], tmp_path: pathlib.Path
) -> None:
    pebble, _dns = dns_pebble
    conn = _connection(pebble, tmp_path)
    _key, csr = _csr(["ftp2.dns01.test"])
    out = acme.phase_challenges(
        conn, [{"host": "h1", "csr": csr}], challenge_type="dns-01", dns_hook="/bin/false", run=_run
    )
    assert "the dns-01 hook `/bin/false add _acme-challenge.ftp2.dns01.test.` failed" in out["errors"]["h1"]
