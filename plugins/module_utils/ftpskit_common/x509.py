"""The one X.509 reader of ftps-kit and its one fingerprint format (standard library only).

- :func:`parse_certificate`: a small DER/X.509 reader. Python 3.11 (Debian 12) returns the fields
  of a certificate only once it has been verified (``getpeercert()``), and has no
  ``get_unverified_chain()``; a person deciding whether to trust a certificate needs its fields
  *before* it is trusted.
- Fingerprints: :func:`sha256_fingerprint` is the one machine format used everywhere (the PKI
  facts, the daemon's status files, logs and metrics, pins, the probe, ``ftps-trust`` and the
  report): the SHA-256 of the DER, lowercase hex without separators (what
  ``openssl x509 -outform DER | sha256sum`` prints). :func:`normalize_fingerprint` reads any
  spelling (colons, case: old pin files, a fingerprint pasted from ``openssl x509 -fingerprint``).
- SPKI pins: :func:`spki_sha256` (base64 of the SHA-256 of the SubjectPublicKeyInfo DER, HPKP
  style) and :func:`normalize_spki`.
- :func:`printable`: the one way text a peer chose (a certificate's names, a server's reply) is
  made safe to show a person: every character that is not printable (controls, ANSI escapes,
  NUL, line breaks, bidi overrides and other format characters) is escaped, so such text can
  neither draw on a terminal nor fake a line of the program's own output. Every text the parser
  returns has been through it (names as RFC 4514 hex pairs, ``\\1B``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import ipaddress
import ssl
from typing import Any


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as Python does (``\\x1b``,
    ``\\n``, ``\\u202e``): what a peer chose can be shown, never acted on by a terminal (escape
    sequences, line breaks, right-to-left overrides). Printable text, in any script, is unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def sha256_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate: lowercase hex, no separators."""
    return hashlib.sha256(bytes(der)).hexdigest()


def spki_sha256(spki_der: bytes) -> str:
    """The SPKI pin of a SubjectPublicKeyInfo DER: base64 of its SHA-256 (HPKP style)."""
    return base64.b64encode(hashlib.sha256(bytes(spki_der)).digest()).decode("ascii")


def normalize_fingerprint(value: str) -> str:
    """Hex SHA-256 fingerprint in any spelling (colons, case) -> lowercase hex without colons."""
    text = "".join(value.split()).replace(":", "").lower()
    if text.startswith("sha256"):
        text = text[6:].lstrip("/:=")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a SHA-256 fingerprint: {value!r}")
    return text


def normalize_spki(value: str) -> str:
    """SPKI SHA-256 pin as base64 (HPKP style) or hex -> base64."""
    text = "".join(value.split())
    if text.lower().startswith("sha256/"):
        text = text[7:]
    hexed = text.replace(":", "")
    if len(hexed) == 64 and all(c in "0123456789abcdefABCDEF" for c in hexed):
        return base64.b64encode(bytes.fromhex(hexed)).decode("ascii")
    try:
        raw = _strict_b64decode(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an SPKI SHA-256 pin: {value!r}") from exc
    if len(raw) != 32:
        raise ValueError(f"not an SPKI SHA-256 pin: {value!r}")
    return base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------------------------------------
# DER / X.509
# ---------------------------------------------------------------------------------------------


class CertificateParseError(ValueError):
    """The bytes are not a DER X.509 certificate this reader understands."""


# Universal tags used below.
_BOOLEAN, _INTEGER, _BIT_STRING, _OCTET_STRING, _NULL, _OID = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_SEQUENCE, _SET, _UTCTIME, _GENERALIZEDTIME = 0x30, 0x31, 0x17, 0x18

_STRING_TAGS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T61): latin-1 is what OpenSSL and cryptography assume
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}

# Attribute short names as RFC 4514 and OpenSSL print them.
_NAME_OIDS = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.42": "GN",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
}
# The names RFC 4514 itself defines; other attributes print as dotted OIDs there.
_RFC4514_NAMES = {"CN", "C", "L", "ST", "STREET", "O", "OU", "DC", "UID"}

_SIGNATURE_OIDS = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
    "1.2.840.10040.4.3": "dsa-with-sha1",
    "2.16.840.1.101.3.4.3.2": "dsa-with-sha256",
}

_KEY_RSA, _KEY_RSA_PSS, _KEY_EC = "1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10", "1.2.840.10045.2.1"
_KEY_DSA, _KEY_ED25519, _KEY_ED448 = "1.2.840.10040.4.1", "1.3.101.112", "1.3.101.113"
# Named curves: OID -> (name as cryptography/SEC spell it, bits).
_CURVES = {
    "1.2.840.10045.3.1.7": ("secp256r1", 256),
    "1.3.132.0.34": ("secp384r1", 384),
    "1.3.132.0.35": ("secp521r1", 521),
    "1.3.132.0.10": ("secp256k1", 256),
    "1.2.840.10045.3.1.1": ("secp192r1", 192),
    "1.3.132.0.33": ("secp224r1", 224),
    "1.3.36.3.3.2.8.1.1.7": ("brainpoolP256r1", 256),
    "1.3.36.3.3.2.8.1.1.11": ("brainpoolP384r1", 384),
    "1.3.36.3.3.2.8.1.1.13": ("brainpoolP512r1", 512),
}
_EXT_SAN, _EXT_BASIC_CONSTRAINTS = "2.5.29.17", "2.5.29.19"


class _TLV:
    """One DER element: tag byte, the whole encoding and the content."""

    __slots__ = ("content", "raw", "tag")

    def __init__(self, tag: int, raw: bytes, content: bytes) -> None:
        self.tag, self.raw, self.content = tag, raw, content

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list[_TLV]:
        if not self.constructed:
            raise CertificateParseError(f"element with tag 0x{self.tag:02x} is not constructed")
        return _read_all(self.content)


def _read_tlv(data: bytes, pos: int) -> tuple[_TLV, int]:
    """Read one element at ``pos``; return it and the position after it."""
    start = pos
    if pos + 2 > len(data):
        raise CertificateParseError("truncated DER: element header runs past the end")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise CertificateParseError("high-tag-number form is not used in certificates")
    length = data[pos + 1]
    pos += 2
    if length == 0x80:
        raise CertificateParseError("indefinite length is not DER")
    if length & 0x80:
        count = length & 0x7F
        if count > 4 or pos + count > len(data):
            raise CertificateParseError("truncated or oversized DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if (count and data[pos] == 0) or length < 0x80:
            raise CertificateParseError("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise CertificateParseError("truncated DER: content runs past the end")
    return _TLV(tag, data[start:end], data[pos:end]), end


def _read_all(data: bytes) -> list[_TLV]:
    items, pos = [], 0
    while pos < len(data):
        item, pos = _read_tlv(data, pos)
        items.append(item)
    return items


def _expect(item: _TLV, tag: int, what: str) -> _TLV:
    if item.tag != tag:
        raise CertificateParseError(f"{what}: expected tag 0x{tag:02x}, found 0x{item.tag:02x}")
    return item


def _oid(content: bytes) -> str:
    if not content:
        raise CertificateParseError("empty OBJECT IDENTIFIER")
    first = content[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for index, byte in enumerate(content[1:], 1):
        if value == 0 and byte == 0x80:
            raise CertificateParseError("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
        elif index == len(content) - 1:
            raise CertificateParseError("truncated OBJECT IDENTIFIER")
    if first & 0x80:
        raise CertificateParseError("multi-byte first OBJECT IDENTIFIER arc is not supported")
    return ".".join(str(a) for a in arcs)


def _integer(content: bytes) -> int:
    if not content:
        raise CertificateParseError("empty INTEGER")
    return int.from_bytes(content, "big", signed=True)


def _string(item: _TLV) -> str:
    codec = _STRING_TAGS.get(item.tag)
    if codec is None:
        raise CertificateParseError(f"unsupported string type 0x{item.tag:02x}")
    try:
        return item.content.decode(codec)
    except UnicodeDecodeError as exc:
        raise CertificateParseError(f"badly encoded string: {exc}") from exc


def _time(item: _TLV) -> _dt.datetime:
    text = item.content.decode("ascii", "replace")
    if item.tag == _UTCTIME:
        # RFC 5280 4.1.2.5.1: YYMMDDHHMMSSZ; YY >= 50 means 19YY.
        if len(text) != 13 or not text.endswith("Z"):
            raise CertificateParseError(f"UTCTime not in YYMMDDHHMMSSZ form: {text!r}")
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif item.tag == _GENERALIZEDTIME:
        # RFC 5280 4.1.2.5.2: YYYYMMDDHHMMSSZ, no fractions; tolerate fractions others emit.
        if not text.endswith("Z") or len(text) < 15:
            raise CertificateParseError(f"GeneralizedTime not in YYYYMMDDHHMMSSZ form: {text!r}")
        text = text[:14] + "Z"
    else:
        raise CertificateParseError(f"expected a time, found tag 0x{item.tag:02x}")
    try:
        return _dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=_dt.UTC)
    except ValueError as exc:
        raise CertificateParseError(f"invalid time {text!r}") from exc


def _rfc4514_escape(value: str) -> str:
    """Escape an attribute value as RFC 4514 section 2.4 (and cryptography) do."""
    if not value:
        return ""
    out = value.replace("\\", "\\\\")
    for char in ',+"<>;':
        out = out.replace(char, "\\" + char)
    # Anything not printable (NUL, controls, line breaks, bidi and other format characters) as the
    # RFC 4514 hex pairs of its UTF-8 bytes: the string can be shown to a person as it is.
    out = "".join(
        ch if ch.isprintable() else "".join(f"\\{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in out
    )
    if out[0] in "# ":
        out = "\\" + out
    if out[-1] == " ":
        out = out[:-1] + "\\ "
    return out


def _name(item: _TLV) -> dict[str, Any]:
    """A Name: its attributes in encoded order and its RFC 4514 string."""
    rdns: list[list[tuple[str, str, str]]] = []
    for rdn in _expect(item, _SEQUENCE, "Name").children():
        attributes = []
        for atv in _expect(rdn, _SET, "RelativeDistinguishedName").children():
            parts = _expect(atv, _SEQUENCE, "AttributeTypeAndValue").children()
            if len(parts) != 2:
                raise CertificateParseError("AttributeTypeAndValue must have two elements")
            oid = _oid(_expect(parts[0], _OID, "attribute type").content)
            attributes.append((oid, _NAME_OIDS.get(oid, oid), _string(parts[1])))
        rdns.append(attributes)

    def label(oid: str, short: str) -> str:
        return short if short in _RFC4514_NAMES else oid

    rfc4514 = ",".join(
        "+".join(f"{label(oid, short)}={_rfc4514_escape(value)}" for oid, short, value in rdn)
        for rdn in reversed(rdns)
    )
    flat = [(oid, short, value) for rdn in rdns for oid, short, value in rdn]
    common = [value for oid, _short, value in flat if oid == "2.5.4.3"]
    return {
        "rfc4514": rfc4514,
        "attributes": [[short, printable(value)] for _oid_, short, value in flat],
        "oids": [[oid, printable(value)] for oid, _short, value in flat],
        "common_name": printable(common[-1]) if common else None,
    }


def _ia5(item: _TLV, what: str) -> str:
    """An IA5String SAN (DNS, email, URI) made :func:`printable`; a byte above 127 is malformed."""
    try:
        return printable(item.content.decode("ascii"))
    except UnicodeDecodeError as exc:
        raise CertificateParseError(f"{what} SAN is not ASCII (IA5String): {exc}") from exc


def _general_names(content: bytes) -> list[str]:
    names = []
    for item in _read_all(content):
        kind = item.tag & 0x1F
        if kind == 2:
            names.append("DNS:" + _ia5(item, "DNS"))
        elif kind == 7:
            if len(item.content) not in (4, 16):
                raise CertificateParseError("iPAddress SAN must be 4 or 16 bytes")
            names.append("IP:" + str(ipaddress.ip_address(item.content)))
        elif kind == 1:
            names.append("email:" + _ia5(item, "email"))
        elif kind == 6:
            names.append("URI:" + _ia5(item, "URI"))
        else:
            names.append(f"other:[{kind}]")
    return names


def _public_key(spki: _TLV) -> dict[str, Any]:
    algorithm, key_bits = _expect(spki, _SEQUENCE, "SubjectPublicKeyInfo").children()
    alg_parts = _expect(algorithm, _SEQUENCE, "AlgorithmIdentifier").children()
    oid = _oid(_expect(alg_parts[0], _OID, "key algorithm").content)
    bits = _expect(key_bits, _BIT_STRING, "subjectPublicKey").content
    if not bits or bits[0] != 0:
        raise CertificateParseError("subjectPublicKey must have no unused bits")
    key = bits[1:]
    info: dict[str, Any] = {"oid": oid, "curve": None}
    if oid in (_KEY_RSA, _KEY_RSA_PSS):
        modulus, _exponent = _expect(_read_tlv(key, 0)[0], _SEQUENCE, "RSAPublicKey").children()[:2]
        info.update(type="RSA", bits=_integer(_expect(modulus, _INTEGER, "modulus").content).bit_length())
    elif oid == _KEY_EC:
        if len(alg_parts) < 2 or alg_parts[1].tag != _OID:
            raise CertificateParseError("EC key without a named curve")
        curve_oid = _oid(alg_parts[1].content)
        name, size = _CURVES.get(curve_oid, (curve_oid, (len(key) - 1) * 4))
        info.update(type="EC", bits=size, curve=name)
    elif oid == _KEY_ED25519:
        info.update(type="Ed25519", bits=256)
    elif oid == _KEY_ED448:
        info.update(type="Ed448", bits=456)
    elif oid == _KEY_DSA:
        prime = _expect(alg_parts[1], _SEQUENCE, "Dss-Parms").children()[0]
        info.update(type="DSA", bits=_integer(prime.content).bit_length())
    else:
        info.update(type=oid, bits=None)
    return info


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


def parse_certificate(der: bytes, *, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The fields of a DER X.509 certificate as a JSON-friendly dict.

    Raises :class:`CertificateParseError` for anything that is not a well-formed certificate, and
    nothing else: the bytes come from a server not trusted yet, so a structure this reader did not
    foresee (a time with letters, an element too few or too many) is a parse error too, never a
    ``ValueError`` or ``IndexError`` that ends ftps-trust with a traceback.
    """
    try:
        return _parse_certificate(der, now=now)
    except CertificateParseError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise CertificateParseError(
            f"malformed certificate ({type(exc).__name__}: {printable(str(exc))})"
        ) from exc


def _parse_certificate(der: bytes, *, now: _dt.datetime | None) -> dict[str, Any]:
    if not isinstance(der, bytes | bytearray) or not der:
        raise CertificateParseError("no certificate bytes")
    der = bytes(der)
    cert, end = _read_tlv(der, 0)
    if end != len(der):
        raise CertificateParseError("trailing bytes after the certificate")
    parts = _expect(cert, _SEQUENCE, "Certificate").children()
    if len(parts) != 3:
        raise CertificateParseError("Certificate must have three elements")
    tbs = _expect(parts[0], _SEQUENCE, "TBSCertificate").children()
    sig_alg = _oid(
        _expect(_expect(parts[1], _SEQUENCE, "signatureAlgorithm").children()[0], _OID, "alg").content
    )
    fields = list(tbs)
    version = 1
    if fields and fields[0].tag == 0xA0:
        version = _integer(_expect(fields.pop(0).children()[0], _INTEGER, "version").content) + 1
    if len(fields) < 6:
        raise CertificateParseError("TBSCertificate is missing elements")
    serial_item, _inner_sig, issuer, validity, subject, spki = fields[:6]
    serial = _integer(_expect(serial_item, _INTEGER, "serialNumber").content)
    not_before_item, not_after_item = _expect(validity, _SEQUENCE, "Validity").children()
    not_before, not_after = _time(not_before_item), _time(not_after_item)

    sans: list[str] = []
    is_ca = False
    for extra in fields[6:]:
        if extra.tag != 0xA3:  # [1]/[2] unique IDs are ignored; [3] holds the extensions
            continue
        for ext in _expect(extra.children()[0], _SEQUENCE, "Extensions").children():
            ext_parts = ext.children()
            ext_oid = _oid(_expect(ext_parts[0], _OID, "extnID").content)
            value = _expect(ext_parts[-1], _OCTET_STRING, "extnValue").content
            if ext_oid == _EXT_SAN:
                sans = _general_names(_expect(_read_tlv(value, 0)[0], _SEQUENCE, "GeneralNames").content)
            elif ext_oid == _EXT_BASIC_CONSTRAINTS:
                constraints = _read_tlv(value, 0)[0].children()
                is_ca = bool(
                    constraints and constraints[0].tag == _BOOLEAN and constraints[0].content != b"\0"
                )

    now = now or _dt.datetime.now(_dt.UTC)
    subject_name, issuer_name = _name(subject), _name(issuer)
    return {
        "version": version,
        "subject": subject_name["rfc4514"],
        "subject_attributes": subject_name["attributes"],
        "common_name": subject_name["common_name"],
        "issuer": issuer_name["rfc4514"],
        "issuer_attributes": issuer_name["attributes"],
        "self_issued": subject.raw == issuer.raw,
        "sans": sans,
        "serial": serial,
        "serial_hex": _colon_hex(abs(serial).to_bytes(max(1, (abs(serial).bit_length() + 7) // 8), "big")),
        "not_before": not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expired": now > not_after,
        "not_yet_valid": now < not_before,
        "days_remaining": (not_after - now).days,
        "public_key": _public_key(spki),
        "signature_algorithm": _SIGNATURE_OIDS.get(sig_alg, sig_alg),
        "signature_algorithm_oid": sig_alg,
        "is_ca": is_ca,
        "fingerprint_sha256": sha256_fingerprint(der),
        "spki_sha256": spki_sha256(spki.raw),
    }


def _strict_b64decode(body: str) -> bytes:
    """Base64 as RFC 4648 writes it: whole 4-character groups, padding only at the end. Python's
    decoder (before 3.13's strict mode) reads a text with characters cut off as long as a pad
    lands where a group may end, e.g. 61 characters ending in ``=``, and so turns a damaged file
    into a shorter, wrong DER; this refuses every such text."""
    data = body.rstrip("=")
    if len(body) % 4 or len(body) - len(data) > 2 or "=" in data:
        raise binascii.Error(
            f"{len(body)} characters, which is not whole 4-character groups with padding only at the end"
        )
    return base64.b64decode(body, validate=True)


def pem_to_der(pem: str) -> list[bytes]:
    """Every certificate in a PEM text, as DER. A damaged block raises CertificateParseError with
    a sentence a person can act on (which block, what is wrong), not the decoder's own words."""
    out = []
    blocks = pem.split("-----BEGIN CERTIFICATE-----")[1:]
    for number, block in enumerate(blocks, start=1):
        if "-----END CERTIFICATE-----" not in block:
            raise CertificateParseError(
                f"PEM block {number} of {len(blocks)} has no END CERTIFICATE line: the file is cut short"
            )
        body = "".join(block.split("-----END CERTIFICATE-----")[0].split())
        try:
            out.append(_strict_b64decode(body))
        except binascii.Error as err:
            raise CertificateParseError(
                f"PEM block {number} of {len(blocks)} is damaged: its base64 text does not decode "
                f"(characters changed, added or cut off; decoder: {err})"
            ) from None
    return out


def der_to_pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


def describe_key(key: dict[str, Any]) -> str:
    """``EC secp384r1 (384 bits)``, ``RSA 3072 bits``, ``Ed25519``."""
    if key.get("type") == "EC":
        return f"EC {key.get('curve')} ({key.get('bits')} bits)"
    if key.get("type") in ("RSA", "DSA"):
        return f"{key['type']} {key.get('bits')} bits"
    return str(key.get("type"))
