"""ftps_pki acme mode without a CA: ARI (RFC 9773), error sentences, the responder, the window."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import pathlib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import ClassVar

import pytest
from acme import client as acme_client
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.collection import acme, http01

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _cert(serial: int = 0x0A1B2C) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ftp.example.org")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=60))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFFFF, 2**127 + 5])
def test_ari_cert_id_is_the_one_certbot_computes(serial: int) -> None:
    cert = _cert(serial)
    assert acme.ari_cert_id(cert) == acme_client._renewal_info_path_component(cert)


def test_ari_cert_id_rfc9773_example_shape() -> None:
    cert_id = acme.ari_cert_id(_cert(0x87654321))
    _aki, serial = cert_id.split(".")
    assert "=" not in cert_id
    assert serial == "AIdlQyE"  # RFC 9773 4.1: DER INTEGER 0x0087654321, base64url unpadded


@pytest.mark.parametrize(
    ("now_offset_hours", "due"),
    [(-1, False), (0, None), (49, True)],
)
def test_ari_due_follows_the_window(now_offset_hours: int, due: bool | None) -> None:
    start, end = NOW, NOW + dt.timedelta(hours=48)
    chosen_due, chosen = acme.ari_due(start, end, "abc.def", NOW + dt.timedelta(hours=now_offset_hours))
    assert start <= chosen <= end
    if due is not None:
        assert chosen_due is due
    # the same certificate always gets the same moment (runs stay idempotent)
    assert acme.ari_due(start, end, "abc.def", NOW)[1] == chosen
    assert acme.ari_due(start, end, "other.id", NOW)[1] != chosen


class _FakeCA(http.server.BaseHTTPRequestHandler):
    window: ClassVar[dict[str, str]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        type(self).seen.append(self.path)
        if self.path == "/dir":
            body = {
                "newNonce": f"{base}/nonce",
                "newAccount": f"{base}/acct",
                "newOrder": f"{base}/order",
                "renewalInfo": f"{base}/ari",
            }
        elif self.path.startswith("/ari/"):
            body = {"suggestedWindow": self.window, "explanationURL": "https://ca.example/why"}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_ca() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeCA)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dir"
    server.shutdown()


def test_renewal_info_window_open_makes_the_host_due(fake_ca: str) -> None:
    cert = _cert()
    _FakeCA.window = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00.123456789Z"}
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    out = acme.phase_renewal_info(
        acme.Connection(fake_ca), [{"host": "h1", "certificate": pem}, {"host": "h2"}]
    )
    assert out["available"] is True
    assert out["due"]["h1"].startswith("ari: the CA suggests renewal between 2020-01-01T00:00:00Z")
    assert "https://ca.example/why" in out["due"]["h1"]
    assert f"/ari/{acme.ari_cert_id(cert)}" in _FakeCA.seen


def test_renewal_info_window_in_the_future_is_not_due(fake_ca: str) -> None:
    _FakeCA.window = {"start": "2999-01-01T00:00:00Z", "end": "2999-01-03T00:00:00Z"}
    pem = _cert().public_bytes(serialization.Encoding.PEM).decode()
    out = acme.phase_renewal_info(acme.Connection(fake_ca), [{"host": "h1", "certificate": pem}])
    assert out["due"] == {}
    assert out["info"]["h1"]["window_start"] == "2999-01-01T00:00:00Z"


def test_renewal_info_unreachable_ca_is_a_warning_not_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pem = _cert().public_bytes(serialization.Encoding.PEM).decode()
    out = acme.phase_renewal_info(
        acme.Connection(f"http://127.0.0.1:{port}/dir"), [{"host": "h1", "certificate": pem}]
    )
    assert out["due"] == {}
    assert "cannot reach the ACME directory" in out["warnings"][0]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("caa", "CAA records forbid this CA to issue for ftp.example.org"),
        ("rateLimited", "rate-limited"),
        ("rejectedIdentifier", "will not certify ftp.example.org"),
        ("connection", "TCP port 80 from the CA reaches port 8080"),
        ("dns", "could not resolve ftp.example.org"),
    ],
)
def test_problems_become_sentences(code: str, expected: str) -> None:
    problem = messages.Error.with_code(
        code,
        detail="details",
        identifier=messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="ftp.example.org"),
    )
    assert expected in acme.explain(problem, port=8080)


def test_directory_url_defaults_to_lets_encrypt() -> None:
    assert acme.directory_url("", False) == acme.LETSENCRYPT["production"]
    assert acme.directory_url("", True) == acme.LETSENCRYPT["staging"]
    assert acme.directory_url("https://ca/dir", True) == "https://ca/dir"


def test_accounts_are_per_directory(tmp_path: pathlib.Path) -> None:
    a = acme.Account(str(tmp_path), "https://acme-v02.api.letsencrypt.org/directory")
    b = acme.Account(str(tmp_path), "https://acme-staging-v02.api.letsencrypt.org/directory")
    assert a.directory != b.directory
    assert a.ensure("", check_mode=True) is True
    assert not a.exists()  # check mode writes nothing


def test_split_fullchain() -> None:
    one = _cert(1).public_bytes(serialization.Encoding.PEM).decode()
    two = _cert(2).public_bytes(serialization.Encoding.PEM).decode()
    cert, chain = acme.split_fullchain(one + two)
    assert cert.strip() == one.strip()
    assert chain.strip() == two.strip()
    with pytest.raises(acme.AcmeError):
        acme.split_fullchain("")


LISTING = """table inet ftps_kit {
\tchain input { # handle 1
\t\ttype filter hook input priority filter + 10; policy drop;
\t\ttcp dport 80 accept comment "ftps-kit acme http-01 window" # handle 9
\t\tct state established,related accept # handle 2
\t\ttcp dport 21 accept comment "ftps" # handle 5
\t}
}
"""


def test_window_rules_are_found_by_comment_only() -> None:
    assert http01.window_rules("ftps_kit", "input", LISTING) == ["9"]
    assert http01.window_rules("ftps_kit", "input", LISTING.replace("acme http-01 window", "x")) == []


@pytest.fixture
def responder(tmp_path: pathlib.Path) -> Iterator[tuple[int, pathlib.Path]]:
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    (token_dir / "tok_EN-1").write_text("tok_EN-1.thumb")
    (tmp_path / "secret").write_text("not served")
    script = tmp_path / "responder.py"
    script.write_text(http01.RESPONDER_SOURCE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        http01.responder_command(
            sys.executable, str(script), bind="127.0.0.1", port=port, token_dir=str(token_dir)
        ),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, token_dir
    proc.terminate()
    proc.wait(10)


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/.well-known/acme-challenge/tok_EN-1", 200, b"tok_EN-1.thumb"),
        ("/.well-known/acme-challenge/unknown", 404, b""),
        ("/.well-known/acme-challenge/..%2Fsecret", 404, b""),
        ("/.well-known/acme-challenge/../secret", 404, b""),
        ("/secret", 404, b""),
        ("/", 404, b""),
    ],
)
def test_responder_serves_exactly_the_tokens(
    responder: tuple[int, pathlib.Path], path: str, status: int, body: bytes
) -> None:
    port, _ = responder
    assert _get(port, path) == (status, body)


def test_responder_self_check(responder: tuple[int, pathlib.Path]) -> None:
    port, _ = responder
    http01.self_check([{"token": "tok_EN-1", "key_authorization": "tok_EN-1.thumb"}], "127.0.0.1", port)
    with pytest.raises(http01.Http01Error, match="something else"):
        http01.self_check([{"token": "tok_EN-1", "key_authorization": "other"}], "127.0.0.1", port)


def test_tokens_must_be_base64url(tmp_path: pathlib.Path) -> None:
    with pytest.raises(http01.Http01Error, match="base64url"):
        http01.write_tokens([{"token": "../etc", "key_authorization": "x"}], str(tmp_path / "run"))
