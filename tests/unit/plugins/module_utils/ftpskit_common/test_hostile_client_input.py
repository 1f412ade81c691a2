"""What a hostile server, a hostile pin file or hostile account input can make the client side do.

Each test names the promise it holds the code to (docs/client.md, docs/ftpsd.md).
"""

from __future__ import annotations

import io
import json
import re
import time
import unicodedata

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ftpskit_common import trust
from ftpskit_common.client import ProbeError
from ftpskit_common.x509 import CertificateParseError, parse_certificate
from tests.certs import make_leaf

# An ANSI clear screen, an xterm title, a line break faking ftps-trust's own "matches" line, a
# right-to-left override ("exe.jpg" shown as "gpj.exe"), a zero-width space and a NUL.
EVIL = "ftp1\x1b[2J\x1b]0;x\x07\nIt matches the saved\u202egpj.exe\u200b\x00"


def _shown_safely(text: str) -> None:
    """No character of ``text`` (output for a terminal) is one a terminal acts on."""
    for line in text.split("\n"):
        bad = [ch for ch in line if not ch.isprintable()]
        assert not bad, f"non-printable {[unicodedata.name(c, hex(ord(c))) for c in bad]} in {line!r}"


@pytest.fixture(scope="module")
def hostile() -> dict:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, EVIL, _validate=False)])
    issued = make_leaf(None, subject=name, sans=("DNS:a\x1b[31m.test", "DNS:localhost"))
    return parse_certificate(issued.der)


def test_certificate_text_fields_are_printable(hostile) -> None:
    for key in ("subject", "issuer", "common_name"):
        _shown_safely(hostile[key])
    for san in hostile["sans"]:
        _shown_safely(san)
    for _label, value in hostile["subject_attributes"]:
        _shown_safely(value)
    # Escaped, not dropped: the person still sees that the name holds these characters.
    assert "\\1B[2J" in hostile["subject"] and "\\E2\\80\\AE" in hostile["subject"]
    assert hostile["sans"][0] == "DNS:a\\x1b[31m.test"


def test_a_non_ascii_dns_san_is_a_parse_error_not_a_crash(hostile) -> None:
    issued = make_leaf(None, sans=("DNS:abcdefgh.test",))
    der = issued.der.replace(b"abcdefgh", "abcdéfg".encode())  # same length: the DER stays well formed
    with pytest.raises(CertificateParseError, match="DNS SAN is not ASCII"):
        parse_certificate(der)


def test_printable_keeps_any_script_and_escapes_the_rest() -> None:
    from ftpskit_common.x509 import printable

    assert printable("Zürich 東京 ftp1") == "Zürich 東京 ftp1"
    assert printable("a\x1b[0mb\u202ec\n") == "a\\x1b[0mb\\u202ec\\n"


def test_probe_error_messages_quote_a_server_reply_safely() -> None:
    err = ProbeError("login", "login as alice refused: 530 \x1b[2Jno\r\nIt matches")
    _shown_safely(err.message)
    _shown_safely(str(err))


def test_ftps_trust_output_cannot_be_drawn_on_by_the_certificate(hostile) -> None:
    found = trust.Assessment(
        "ftp1.example",
        21,
        hostile,
        {"certificate": hostile, "chain": [hostile, hostile], "chain_complete": True},
        False,
        f"certificate from an unknown CA: {hostile['subject']} issued by {hostile['issuer']}",
        None,
        status="unknown",
    )
    out = io.StringIO()
    args = trust.build_parser().parse_args(["ftp1.example"])
    trust._report(found, args, 100, out)
    # A saved entry from an older pin file still holds the raw text: the side-by-side view too.
    raw_saved = {"subject": EVIL, "issuer": EVIL, "sans": [EVIL], "fingerprint_sha256": "00" * 32}
    trust._show_changed(found, out, 100)
    trust._print(trust.render_side_by_side(raw_saved, hostile, 100), file=out)
    text = out.getvalue()
    _shown_safely(text)
    assert not any(line.startswith("It matches") for line in text.splitlines())


# -- the remembered store: one key per server, every entry usable, concurrent accepts kept ------


@pytest.fixture(scope="module")
def leaf_fields() -> list[dict]:
    return [parse_certificate(make_leaf(None, cn=f"s{i}").der) for i in range(3)]


@pytest.mark.parametrize(
    ("written", "host", "port"),
    [
        ("FTP1.Example.Internal.:21", "ftp1.example.internal", 21),
        ("ftp1.example.internal:21", "FTP1.example.internal.", 21),
        ("[2001:DB8:0:0::5]:990", "2001:db8::5", 990),
        ("[2001:db8::5]:990", "[2001:0db8:0000::0005]", 990),
        ("xn--bcher-kva.example:21", "bücher.example", 21),
        ("127.0.0.1:21", "127.1", 21),  # the resolver's shorthand for one address
        ("127.0.0.1:21", "2130706433", 21),
        ("[::ffff:7f00:1]:21", "::FFFF:127.0.0.1", 21),
    ],
)
def test_one_server_has_one_pin_key_however_it_is_spelled(tmp_path, leaf_fields, written, host, port) -> None:
    """A pin written as the role's template or a person spells the key still pins the server:
    otherwise a fleet pin is silently skipped and a CA-signed impostor is trusted."""
    from ftpskit_common.client import PinStore, compare_pin, pin_entry

    path = tmp_path / "known_servers.json"
    path.write_text(json.dumps({"version": 1, "servers": {written: pin_entry(leaf_fields[0])}}))
    saved = PinStore(str(path)).get(host, port)
    assert saved is not None, f"{written} not found as {host}:{port}"
    assert compare_pin(leaf_fields[0], saved) == []
    assert compare_pin(leaf_fields[1], saved) != []


@pytest.mark.parametrize(
    ("servers", "says"),
    [
        ({"h:21": "ab" * 32}, "must be a mapping"),
        ({"h:21": {"subject": "CN=h"}}, "needs fingerprint_sha256 or spki_sha256"),
        ({"h:21": {"fingerprint_sha256": "zz"}}, "not a SHA-256 fingerprint"),
        ({"h:21": {"spki_sha256": "not base64!"}}, "SPKI"),
        ({"h:21": {"fingerprint_sha256": "ab" * 32, "next_spki_sha256": 5}}, "next_spki_sha256"),
        ({"h:21": {"fingerprint_sha256": ["ab" * 32]}}, "must be a string"),
        ({"no port": {"fingerprint_sha256": "ab" * 32}}, "not host:port"),
        ({"a b:21": {"fingerprint_sha256": "ab" * 32}}, "not a host name"),
        ({"h:0": {"fingerprint_sha256": "ab" * 32}}, "1..65535"),
        ({"::1:21": {"fingerprint_sha256": "ab" * 32}}, "not host:port"),
        (
            {"H:21": {"fingerprint_sha256": "ab" * 32}, "h.:21": {"fingerprint_sha256": "cd" * 32}},
            "differently",
        ),
    ],
)
def test_an_unusable_pin_file_is_refused_whole(tmp_path, servers, says) -> None:
    """A hostile or damaged entry is a pin-file error naming it (ftps-trust exits 5 before it
    connects), never a traceback later and never an entry quietly ignored."""
    from ftpskit_common.client import PinStore, PinStoreError

    path = tmp_path / "known_servers.json"
    path.write_text(json.dumps({"version": 1, "servers": servers}))
    with pytest.raises(PinStoreError, match=re.escape(says)):
        PinStore(str(path))
    code = trust.main(
        ["127.0.0.1:9", "--pin-file", str(path), "--system-pin-file", "", "--timeout", "2"],
        stdin=io.StringIO(""),
        stdout=io.StringIO(),
    )
    assert code == trust.EXIT_PIN_FILE


def test_two_accepts_at_once_both_stay(tmp_path, leaf_fields) -> None:
    """Two ftps-trust runs load the file, each accepts another server, each saves: both kept."""
    from ftpskit_common.client import PinStore

    path = str(tmp_path / "known_servers.json")
    first, second = PinStore(path), PinStore(path)
    first.put("a.example", 21, leaf_fields[0])
    second.put("b.example", 21, leaf_fields[1])
    first.save()
    second.save()
    again = PinStore(path)
    assert again.get("a.example", 21) is not None
    assert again.get("b.example", 21) is not None
    # A --forget that raced an accept removes only its own entry.
    third, fourth = PinStore(path), PinStore(path)
    assert third.remove("a.example", 21)
    fourth.put("c.example", 21, leaf_fields[2])
    third.save()
    fourth.save()
    assert sorted(PinStore(path).servers) == ["b.example:21", "c.example:21"]


def _accept_many(path: str, prefix: str, fields: dict, count: int) -> None:
    from ftpskit_common.client import PinStore

    for i in range(count):
        store = PinStore(path)
        store.put(f"{prefix}{i}.example", 21, fields)
        store.save()


def test_concurrent_processes_lose_no_accept(tmp_path, leaf_fields) -> None:
    """Two processes saving 15 accepts each into one file: 30 entries, the file always JSON."""
    import multiprocessing

    from ftpskit_common.client import PinStore

    path = str(tmp_path / "known_servers.json")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_accept_many, args=(path, p, leaf_fields[0], 15)) for p in ("x", "y")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(PinStore(path).servers) == 30


@pytest.mark.parametrize(
    "target", ["ftp1 .example", "ftp1/../x", "ftp1\x1bx", "ftp1\nIt", "a..b", "-ftp1", "x" * 254, "1.2.3.4.5"]
)
def test_a_target_that_names_no_server_is_a_usage_error(target: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        trust.parse_target(target, None, False)


@pytest.mark.parametrize(
    ("name", "sans", "match"),
    [
        ("example.com", ["DNS:*.com"], False),  # a wildcard over a top-level domain
        ("a.b.example", ["DNS:*.*.example"], False),
        ("ftp.example.test", ["DNS:*.example.test"], True),
        ("ftp.example.test.", ["DNS:FTP.Example.Test"], True),
        ("bücher.example", ["DNS:xn--bcher-kva.example"], True),  # U-label vs A-label: one name
        ("www.bücher.example", ["DNS:*.xn--bcher-kva.example"], True),
        ("127.0.0.1", ["DNS:127.0.0.1"], False),
        ("[::1]", ["IP:0:0:0:0:0:0:0:1"], True),
        ("ftp.example.test", ["DNS:ftp.example.test\\x00.evil"], False),
    ],
)
def test_the_sans_note_matches_as_openssl_does(name: str, sans: list[str], match: bool) -> None:
    """ftps-trust's "Note: NAME is not among the certificate's SANs" must not be left out for a
    certificate that OpenSSL would refuse for the name (``*.com``), nor shown for one it accepts."""
    from ftpskit_common.client import hostname_matches

    assert hostname_matches(name, sans) is match


# -- a hostile server's replies ------------------------------------------------------------------


def _endless_greeting(lines: int) -> tuple[int, object]:
    """A one-connection loopback server that greets with ``lines`` continuation lines (bounded)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve() -> None:
        with listener:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(20)
                try:
                    chunk = b"".join(b"220-" + b"x" * 96 + b"\r\n" for _ in range(1000))
                    for _ in range(lines // 1000):
                        conn.sendall(chunk)
                    conn.sendall(b"220 welcome\r\n")
                    conn.recv(100)
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_an_endless_multiline_reply_is_cut_off() -> None:
    """ftplib joins a reply's continuation lines without a bound: 2 MB of "220-" lines are a
    protocol error at 1 MiB, not a client reading until its memory is gone."""
    import ftplib

    from ftpskit_common.client import FTPSClient

    port, thread = _endless_greeting(20_000)
    client = FTPSClient(timeout=10)
    try:
        with pytest.raises(ftplib.error_proto, match="longer than 1048576 bytes"):
            client.connect("127.0.0.1", port)
    finally:
        client.close()
        thread.join(20)


def test_a_probe_of_a_host_that_names_no_server_fails_as_a_probe_error() -> None:
    """The canonical key refuses such a host; a message about it still names it (printable)."""
    from ftpskit_common.client import probe

    with pytest.raises(ProbeError) as raised:
        probe("no such\x1bhost", 21, timeout=2)
    assert raised.value.kind == "connect"
    assert "no such\\x1bhost:21" in raised.value.message


def test_a_pin_files_text_cannot_fake_a_line_either(tmp_path, leaf_fields) -> None:
    """The texts of a pin entry (written by hand, or by a hostile hand) are shown escaped too."""
    from ftpskit_common.client import PinStore, pin_entry

    entry = {**pin_entry(leaf_fields[0]), "accepted_at": "2026\nIt matches\x1b[2J", "sans": ["DNS:a\nb"]}
    path = tmp_path / "known_servers.json"
    path.write_text(json.dumps({"version": 1, "servers": {"h:21": entry}}))
    saved = PinStore(str(path)).get("h", 21)
    assert saved["accepted_at"] == "2026\\nIt matches\\x1b[2J"
    assert saved["sans"] == ["DNS:a\\nb"]
    out = io.StringIO()
    trust._print(f"It matches the certificate saved for h:21 ({trust._provenance(saved)}).", file=out)
    assert len(out.getvalue().splitlines()) == 1


# -- the X.509 reader on bytes a server chose ---------------------------------------------------


def test_a_time_with_letters_is_a_parse_error() -> None:
    """A UTCTime ``\\x1b6...Z`` made int() raise ValueError out of the reader: a server sending
    such a certificate ended ftps-trust (and the probe module) with a traceback."""
    der = make_leaf(None).der
    start = der.index(b"\x17\x0d") + 2  # notBefore: UTCTime, 13 bytes
    broken = der[:start] + b"\x1b6" + der[start + 2 :]
    with pytest.raises(CertificateParseError):
        parse_certificate(broken)


def test_mutated_certificates_raise_only_parse_errors() -> None:
    """A seeded, bounded mutation run (2,000 certificates, at most 20 s): nothing but
    CertificateParseError (or a result) comes out of the reader."""
    import random
    import time

    rng = random.Random(20261207)
    seeds = [
        make_leaf(None, sans=("DNS:a.test", "IP:127.0.0.1", "IP:::1")).der,
        make_leaf(None, key_type="rsa2048").der,
    ]
    deadline = time.monotonic() + 20
    escaped = []
    for _ in range(2000):
        if time.monotonic() > deadline:
            break
        der = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pos, op = rng.randrange(len(der)), rng.random()
            if op < 0.6:
                der[pos] = rng.randrange(256)
            elif op < 0.8:
                del der[pos : pos + rng.randint(1, 8)]
            else:
                der[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        try:
            parse_certificate(bytes(der))
        except CertificateParseError:
            pass
        except Exception as exc:
            escaped.append(f"{type(exc).__name__}: {exc}")
    assert not escaped, escaped[:5]


def test_a_reply_trickled_byte_by_byte_ends_at_the_timeout() -> None:
    """A socket's timeout is per receive: a server sending one byte of its greeting every 0.2 s
    (for 8 s here) held a client with a 2 s timeout for as long as it liked. A reply now has the
    client's timeout in all."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    stop = threading.Event()

    def serve() -> None:
        with listener:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.sendall(b"220-")
                    for _ in range(40):
                        if stop.wait(0.2):
                            return
                        conn.sendall(b"x")
                    conn.sendall(b"\r\n220 welcome\r\n")
                    conn.recv(100)
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    from ftpskit_common.client import FTPSClient

    client = FTPSClient(timeout=2)
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            client.connect("127.0.0.1", listener.getsockname()[1])
        assert time.monotonic() - start < 5
    finally:
        stop.set()
        client.close()
        thread.join(20)
