"""What a hostile server, a hostile pin file or hostile account input can make the client side do.

Each test names the promise it holds the code to (docs/client.md, docs/ftpsd.md).
"""

from __future__ import annotations

import io
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
