"""FTPS client logic shared by the probe module, ``ftps-trust``, the tests and the benchmark.

Standard library only: this file is also Ansible module_utils (``plugins/module_utils/ftps_client.py``
is a symlink to it), so it runs on any host with a Python 3.11+ and nothing else installed.
It must not import anything from the ``ftpsd`` package.

Four parts:

- :class:`FTPSClient`: ``ftplib.FTP_TLS`` never reuses the control connection's TLS session on
  data connections, so servers that require reuse (vsftpd's ``require_ssl_reuse``, ftpsd's
  default) refuse it. This class passes the control session when wrapping each data socket and
  supports implicit FTPS (TLS from the first byte, port 990).
- :func:`parse_certificate`: a small DER/X.509 reader. Python 3.11 (Debian 12) returns the fields
  of a certificate only once it has been verified (``getpeercert()``), and has no
  ``get_unverified_chain()``; a person deciding whether to trust a certificate needs its fields
  *before* it is trusted.
- :func:`probe`: connect, verify (system store or a CA file, hostname), compare with pins,
  optionally prove a data connection on a reused session and a round trip. Every failure is a
  :class:`ProbeError` with a ``kind`` and a sentence a person can act on.
- :class:`PinStore`: the ``known_servers.json`` file that remembers accepted certificates
  (``host:port`` -> SHA-256 fingerprint and SPKI pin), written atomically.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
import ftplib
import hashlib
import io
import ipaddress
import json
import os
import socket
import ssl
import time
from typing import Any

# This file is also the collection's module_utils (a symlink): under Ansible the helper is
# the collection's ftps_atomicfile, in the installed package it is ftpsd.atomicfile.
try:
    from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_atomicfile import atomic_write
except ImportError:
    from ftpsd.atomicfile import atomic_write

# ---------------------------------------------------------------------------------------------
# The session-reusing FTPS client
# ---------------------------------------------------------------------------------------------


class _DataSSLSocket(ssl.SSLSocket):
    """A data connection whose TLS shutdown tolerates OpenSSL's SHUTDOWN_WHILE_IN_INIT.

    A TLS 1.3 server may write a data connection's bytes and close it before it has the client's
    Finished (0.5-RTT; stock pyftpdlib does). On an empty listing OpenSSL then still counts the
    client as "in init" and refuses ``SSL_shutdown``. The transfer itself is complete by then,
    and the server's reply on the control connection (226, or an error) stays its judge.
    """

    def unwrap(self) -> socket.socket | None:
        try:
            return super().unwrap()
        except ssl.SSLError as exc:
            if exc.reason != "SHUTDOWN_WHILE_IN_INIT":
                raise
            return None


class FTPSClient(ftplib.FTP_TLS):
    """An FTP_TLS that reuses the control connection's TLS session on every data connection.

    ``implicit=True`` speaks TLS from the first byte (implicit FTPS) instead of AUTH TLS.
    ``server_hostname`` is the name the certificate is checked against (and sent as SNI) when it
    differs from the address connected to.
    """

    def __init__(
        self,
        host: str = "",
        port: int = 0,
        *,
        context: ssl.SSLContext | None = None,
        implicit: bool = False,
        timeout: float = 30.0,
        reuse_session: bool = True,
        server_hostname: str | None = None,
    ) -> None:
        self.implicit = implicit
        self.reuse_session = reuse_session
        self.server_hostname = server_hostname
        self.data_sessions_reused: list[bool] = []
        self.last_data_setup: tuple[float, float] = (0.0, 0.0)
        super().__init__(context=context or ssl.create_default_context(), timeout=timeout)
        if host:
            self.connect(host, port or (990 if implicit else 21))

    @property
    def tls_name(self) -> str:
        """The name sent as SNI and checked against the certificate."""
        return self.server_hostname or self.host

    # -- connection ---------------------------------------------------------------------
    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        if not self.implicit:
            return super().connect(host, port, timeout, source_address)
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        raw = socket.create_connection(
            (self.host, self.port), self.timeout, source_address=self.source_address
        )
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=self.tls_name)
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def auth(self) -> str:
        """AUTH TLS, checking the certificate against :attr:`tls_name` (ftplib uses ``host``)."""
        if isinstance(self.sock, ssl.SSLSocket):
            raise ValueError("Already using TLS")
        resp = self.voidcmd("AUTH TLS")
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.tls_name)
        self.file = self.sock.makefile(mode="r", encoding=self.encoding)
        return resp

    def login(self, user: str = "", passwd: str = "", acct: str = "", secure: bool = True) -> str:
        if self.implicit:
            # Already encrypted: skip AUTH TLS, which an implicit server answers with an error.
            return ftplib.FTP.login(self, user, passwd, acct)  # noqa: S321 - the socket is TLS already
        return super().login(user, passwd, acct, secure)

    # -- data connections -----------------------------------------------------------------
    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        start = time.perf_counter()
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - wrapped in TLS below
        opened = time.perf_counter()
        if self._prot_p:
            session = self.sock.session if self.reuse_session else None
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.tls_name, session=session)
            except BaseException:
                conn.close()
                raise
            conn.__class__ = _DataSSLSocket
            self.data_sessions_reused.append(bool(conn.session_reused))
        # (PASV/EPSV + connect + command until its 1xx reply, TLS handshake), in seconds.
        self.last_data_setup = (opened - start, time.perf_counter() - opened)
        return conn, size

    # -- facts --------------------------------------------------------------------------
    def peer_certificate(self) -> bytes | None:
        """The DER of the certificate the server presented (verified or not)."""
        if not isinstance(self.sock, ssl.SSLSocket):
            return None
        return self.sock.getpeercert(binary_form=True)

    def peer_chain(self) -> tuple[list[bytes], bool]:
        """The chain the server sent as DER, and whether it is complete.

        Python 3.13+ has ``get_unverified_chain()``; before, only the leaf can be had.
        """
        if not isinstance(self.sock, ssl.SSLSocket):
            return [], False
        getter = getattr(self.sock, "get_unverified_chain", None)
        if getter is not None:
            chain = getter() or []
            return [bytes(c) for c in chain], True
        leaf = self.peer_certificate()
        return ([leaf] if leaf else []), False

    def tls_facts(self) -> dict[str, Any]:
        """TLS version and cipher of the control connection."""
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return {"tls": False}
        cipher = sock.cipher()
        return {
            "tls": True,
            "version": sock.version(),
            "cipher": cipher[0] if cipher else None,
            "data_session_reused": all(self.data_sessions_reused) if self.data_sessions_reused else None,
        }


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
    out = out.replace("\0", "\\00")
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
        "attributes": [[short, value] for _oid_, short, value in flat],
        "oids": [[oid, value] for oid, _short, value in flat],
        "common_name": common[-1] if common else None,
    }


def _general_names(content: bytes) -> list[str]:
    names = []
    for item in _read_all(content):
        kind = item.tag & 0x1F
        if kind == 2:
            names.append("DNS:" + item.content.decode("ascii"))
        elif kind == 7:
            if len(item.content) not in (4, 16):
                raise CertificateParseError("iPAddress SAN must be 4 or 16 bytes")
            names.append("IP:" + str(ipaddress.ip_address(item.content)))
        elif kind == 1:
            names.append("email:" + item.content.decode("ascii"))
        elif kind == 6:
            names.append("URI:" + item.content.decode("ascii"))
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

    Raises :class:`CertificateParseError` for anything that is not a well-formed certificate.
    """
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
    spki_digest = hashlib.sha256(spki.raw).digest()
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
        "fingerprint_sha256": _colon_hex(hashlib.sha256(der).digest()),
        "spki_sha256": base64.b64encode(spki_digest).decode("ascii"),
    }


def pem_to_der(pem: str) -> list[bytes]:
    """Every certificate in a PEM text, as DER."""
    out = []
    for block in pem.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----")[0]
        out.append(base64.b64decode("".join(body.split())))
    return out


def der_to_pem(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


# ---------------------------------------------------------------------------------------------
# Pins
# ---------------------------------------------------------------------------------------------


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
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not an SPKI SHA-256 pin: {value!r}") from exc
    if len(raw) != 32:
        raise ValueError(f"not an SPKI SHA-256 pin: {value!r}")
    return base64.b64encode(raw).decode("ascii")


def server_key(host: str, port: int) -> str:
    """The pin store's key for a server: ``host:port``, IPv6 in brackets, names lowercase."""
    host = host.strip().lower().strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def compare_pin(fields: dict[str, Any], pin: dict[str, Any]) -> list[str]:
    """What differs between a certificate's fields and a pin: [] when the pin matches.

    A pin may hold ``fingerprint_sha256`` (the exact certificate), ``spki_sha256`` (the key,
    which survives renewal with the same key), or both; each one given must match.

    ``next_spki_sha256`` (a list, or one pin) names keys the fleet made ahead of time for its
    next rotation (RFC 7671 8.1, "current + next"): a certificate whose key is one of them
    matches on its own, since its certificate did not exist when the pin was written. Any other
    certificate must match the current pin as above, so a key the fleet never announced fails.
    """
    mismatches = []
    if not pin.get("fingerprint_sha256") and not pin.get("spki_sha256"):
        raise ValueError("a pin needs fingerprint_sha256 or spki_sha256")
    if fields.get("spki_sha256") and fields["spki_sha256"] in next_spki_pins(pin):
        return []
    if pin.get("fingerprint_sha256") and normalize_fingerprint(
        pin["fingerprint_sha256"]
    ) != normalize_fingerprint(fields["fingerprint_sha256"]):
        mismatches.append(
            f"SHA-256 fingerprint is {fields['fingerprint_sha256']}, pinned {pin['fingerprint_sha256']}"
        )
    if pin.get("spki_sha256") and normalize_spki(pin["spki_sha256"]) != fields.get("spki_sha256"):
        mismatches.append(f"SPKI pin is {fields.get('spki_sha256', 'unknown')}, pinned {pin['spki_sha256']}")
    if mismatches and pin.get("next_spki_sha256"):
        mismatches.append(f"nor is it an announced next key ({', '.join(next_spki_pins(pin))})")
    return mismatches


def next_spki_pins(pin: dict[str, Any]) -> list[str]:
    """The entry's announced next-key SPKI pins, normalized (``[]`` for a pin file without any)."""
    value = pin.get("next_spki_sha256") or []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise ValueError(f"next_spki_sha256 must be a list of SPKI pins, not {type(value).__name__}")
    return [normalize_spki(str(v)) for v in values if v]


class PinStoreError(Exception):
    """The pin file cannot be read or written."""


class PinStore:
    """``known_servers.json``: ``{"version": 1, "servers": {"host:port": {...}}}``.

    Each entry keeps ``fingerprint_sha256``, ``spki_sha256`` and the fields shown when it was
    accepted (subject, issuer, SANs, validity, key), plus ``accepted_at``.
    """

    VERSION = 1

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self.servers: dict[str, dict[str, Any]] = {}
        self.load()

    def load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            self.servers = {}
            return
        except (OSError, ValueError) as exc:
            raise PinStoreError(f"cannot read pin file {self.path}: {exc}") from exc
        if (
            not isinstance(data, dict)
            or data.get("version") != self.VERSION
            or not isinstance(data.get("servers"), dict)
        ):
            raise PinStoreError(f"pin file {self.path} is not a version {self.VERSION} known_servers file")
        self.servers = data["servers"]

    def get(self, host: str, port: int) -> dict[str, Any] | None:
        return self.servers.get(server_key(host, port))

    def put(self, host: str, port: int, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
        entry = pin_entry(fields)
        entry.update(extra)
        entry.setdefault("accepted_at", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.servers[server_key(host, port)] = entry
        return entry

    def remove(self, host: str, port: int) -> bool:
        return self.servers.pop(server_key(host, port), None) is not None

    def dumps(self) -> str:
        return json.dumps({"version": self.VERSION, "servers": self.servers}, indent=2, sort_keys=True) + "\n"

    def save(self) -> None:
        """Write atomically: a temp file in the same directory, fsync, rename; mode 0600."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            atomic_write(self.path, self.dumps().encode("utf-8"), 0o600)
        except OSError as exc:
            raise PinStoreError(f"cannot write pin file {self.path}: {exc}") from exc


_PIN_FIELDS = ("subject", "issuer", "sans", "not_before", "not_after", "serial_hex", "signature_algorithm")


def pin_entry(fields: dict[str, Any]) -> dict[str, Any]:
    """What a pin store keeps about an accepted certificate."""
    entry = {key: fields[key] for key in _PIN_FIELDS if key in fields}
    entry["fingerprint_sha256"] = fields["fingerprint_sha256"]
    entry["spki_sha256"] = fields.get("spki_sha256")
    key = fields.get("public_key") or {}
    entry["public_key"] = describe_key(key) if key else None
    return entry


def describe_key(key: dict[str, Any]) -> str:
    """``EC secp384r1 (384 bits)``, ``RSA 3072 bits``, ``Ed25519``."""
    if key.get("type") == "EC":
        return f"EC {key.get('curve')} ({key.get('bits')} bits)"
    if key.get("type") in ("RSA", "DSA"):
        return f"{key['type']} {key.get('bits')} bits"
    return str(key.get("type"))


# ---------------------------------------------------------------------------------------------
# Probe: connect, verify, compare with pins, prove the data channel
# ---------------------------------------------------------------------------------------------


class ProbeError(Exception):
    """A probe failed. ``kind`` is one of :data:`ERROR_KINDS`; ``str()`` is for people."""

    def __init__(self, kind: str, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.result = result or {}


ERROR_KINDS = (
    "connect",  # TCP connection failed or timed out
    "no_tls",  # AUTH TLS refused, or plaintext on the implicit port
    "tls",  # TLS handshake failed for another reason (protocol, cipher)
    "unknown_ca",  # the chain does not lead to a trusted CA
    "hostname_mismatch",  # the name connected to is not in the certificate's SANs
    "expired",  # the certificate's notAfter has passed
    "not_yet_valid",  # the certificate's notBefore is in the future
    "verify",  # another verification failure (revoked, bad signature, ...)
    "pin_mismatch",  # the certificate differs from the pinned one
    "login",  # credentials refused
    "transfer",  # a data connection or the round trip failed
)

# OpenSSL X509_V_ERR_* codes -> kind.
_VERIFY_KINDS = {
    2: "unknown_ca",  # unable to get issuer certificate
    9: "not_yet_valid",
    10: "expired",
    18: "unknown_ca",  # self-signed certificate
    19: "unknown_ca",  # self-signed certificate in chain
    20: "unknown_ca",  # unable to get local issuer certificate
    21: "unknown_ca",  # unable to verify the first certificate
    62: "hostname_mismatch",
    64: "hostname_mismatch",  # IP address mismatch
}


def make_context(
    *, verify: bool = True, ca_file: str | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    """A client context: the system store (or ``ca_file``), TLS 1.2+, hostname check."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        ctx.check_hostname = check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def hostname_matches(name: str, sans: list[str]) -> bool:
    """RFC 6125 matching of ``name`` against SANs (one left-most ``*`` label), for display."""
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return any(s.startswith("IP:") and ipaddress.ip_address(s[3:]) == address for s in sans)
    name = name.lower().rstrip(".")
    for san in sans:
        if not san.startswith("DNS:"):
            continue
        pattern = san[4:].lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _verify_message(
    kind: str, exc: ssl.SSLCertVerificationError, name: str, fields: dict[str, Any] | None
) -> str:
    f = fields or {}
    if kind == "unknown_ca":
        where = "the CA file given" if getattr(exc, "_ftps_ca_file", None) else "the trusted CAs"
        return (
            f"certificate from an unknown CA: {f.get('subject', 'the server certificate')} issued by "
            f"{f.get('issuer', '?')} does not chain to {where} ({exc.verify_message})"
        )
    if kind == "hostname_mismatch":
        return (
            f"hostname mismatch: {name} is not in the certificate's SANs "
            f"({', '.join(f.get('sans') or []) or 'none'})"
        )
    if kind == "expired":
        return f"certificate expired on {f.get('not_after', '?')} ({f.get('subject', '')})"
    if kind == "not_yet_valid":
        return f"certificate not valid before {f.get('not_before', '?')} ({f.get('subject', '')})"
    return f"certificate verification failed: {exc.verify_message} (code {exc.verify_code})"


def _connect(
    host: str,
    port: int,
    *,
    implicit: bool,
    context: ssl.SSLContext,
    timeout: float,
    server_hostname: str | None,
) -> FTPSClient:
    client = FTPSClient(context=context, implicit=implicit, timeout=timeout, server_hostname=server_hostname)
    try:
        client.connect(host, port)
        if not implicit:
            try:
                client.auth()
            except ftplib.error_perm as exc:
                raise _AuthRefused(str(exc).strip()) from exc
    except BaseException:
        client.close()
        raise
    return client


class _AuthRefused(Exception):
    """The server answered AUTH TLS with a permanent error."""


def _tls_or_raise(
    host: str,
    port: int,
    *,
    implicit: bool,
    context: ssl.SSLContext,
    timeout: float,
    server_hostname: str | None,
) -> FTPSClient:
    """Connect and complete TLS, turning transport problems into :class:`ProbeError`."""
    where = f"{host}:{port}"
    try:
        return _connect(
            host, port, implicit=implicit, context=context, timeout=timeout, server_hostname=server_hostname
        )
    except ssl.SSLCertVerificationError:
        raise
    except _AuthRefused as exc:
        raise ProbeError(
            "no_tls", f"server without TLS: {where} refused AUTH TLS ({exc}); it offers plaintext only"
        ) from exc
    except ssl.SSLError as exc:
        if implicit and ("WRONG_VERSION_NUMBER" in str(exc) or "record layer" in str(exc)):
            said = _plaintext_greeting(host, port, timeout)
            if said[:1] in ("4", "5"):
                raise ProbeError(
                    "connect", f"{where} refused the connection in plaintext before TLS: {said!r}"
                ) from exc
            raise ProbeError(
                "no_tls",
                f"server without TLS: {where} did not speak TLS on the implicit port"
                + (f"; it answered in plaintext: {said!r}" if said else " (plaintext FTP?)"),
            ) from exc
        raise ProbeError("tls", f"TLS handshake with {where} failed: {exc}") from exc
    except (ConnectionError, TimeoutError, socket.gaierror, OSError, EOFError, ftplib.Error) as exc:
        raise ProbeError("connect", f"cannot reach an FTP server at {where}: {exc}") from exc


def _plaintext_greeting(host: str, port: int, timeout: float) -> str:
    """The first line a server sends unprompted (a plaintext FTP greeting or refusal), or ""."""
    try:
        with socket.create_connection((host, port), min(timeout, 5.0)) as raw:
            raw.settimeout(min(timeout, 3.0))
            data = raw.recv(512)
    except OSError:
        return ""
    return data.decode("utf-8", "replace").splitlines()[0].strip() if data.strip() else ""


def fetch_certificate(
    host: str,
    port: int = 0,
    *,
    implicit: bool = False,
    timeout: float = 15.0,
    server_hostname: str | None = None,
) -> dict[str, Any]:
    """Connect without verifying and return what the server presents (for display only)."""
    port = port or (990 if implicit else 21)
    client = _tls_or_raise(
        host,
        port,
        implicit=implicit,
        context=make_context(verify=False),
        timeout=timeout,
        server_hostname=server_hostname,
    )
    try:
        return _session_facts(client)
    finally:
        _quit(client)


def _session_facts(client: FTPSClient) -> dict[str, Any]:
    der = client.peer_certificate()
    chain, complete = client.peer_chain()
    facts = client.tls_facts()
    return {
        "certificate": _fields_or_fingerprint(der) if der else None,
        "certificate_pem": der_to_pem(der) if der else None,
        "chain": [_fields_or_fingerprint(c) for c in chain],
        "chain_complete": complete,
        "chain_note": None
        if complete
        else "Python < 3.13 exposes only the leaf certificate of the served chain",
        "tls_version": facts.get("version"),
        "cipher": facts.get("cipher"),
    }


def _fields_or_fingerprint(der: bytes) -> dict[str, Any]:
    """The certificate's fields; if this reader cannot parse it, at least its fingerprint."""
    try:
        return parse_certificate(der)
    except CertificateParseError as exc:
        return {"fingerprint_sha256": _colon_hex(hashlib.sha256(der).digest()), "parse_error": str(exc)}


def _quit(client: FTPSClient) -> None:
    with contextlib.suppress(Exception):
        client.quit()
    with contextlib.suppress(Exception):
        client.close()


def probe(
    host: str,
    port: int = 0,
    *,
    implicit: bool = False,
    verify: bool = True,
    ca_file: str | None = None,
    server_hostname: str | None = None,
    pin: dict[str, Any] | None = None,
    username: str | None = None,
    password: str | None = None,
    check_data_channel: bool = True,
    round_trip: bool = False,
    remote_dir: str = "",
    payload_size: int = 65536,
    timeout: float = 15.0,
) -> dict[str, Any]:
    """Connect, verify, compare with ``pin``, and (with credentials) prove the data channel.

    Returns a dict: ``certificate`` (the fields of :func:`parse_certificate`), ``chain``,
    ``tls_version``, ``cipher``, ``verified`` (chain and hostname checked), ``pin_matched``,
    ``data_session_reused`` and ``round_trip``. Raises :class:`ProbeError` on every failure;
    its ``result`` holds what was learned before the failure (the certificate's fields).
    """
    port = port or (990 if implicit else 21)
    name = server_hostname or host
    result: dict[str, Any] = {
        "host": host,
        "port": port,
        "implicit": implicit,
        "server_hostname": name,
        "verified": False,
        "pin_matched": None,
        "data_session_reused": None,
        "round_trip": None,
    }
    try:
        context = make_context(verify=verify, ca_file=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeError("verify", f"cannot load the CA file {ca_file}: {exc}", result) from exc
    try:
        client = _tls_or_raise(
            host, port, implicit=implicit, context=context, timeout=timeout, server_hostname=server_hostname
        )
    except ssl.SSLCertVerificationError as exc:
        kind = _VERIFY_KINDS.get(exc.verify_code, "verify")
        with contextlib.suppress(ProbeError):
            result.update(
                fetch_certificate(
                    host, port, implicit=implicit, timeout=timeout, server_hostname=server_hostname
                )
            )
        exc._ftps_ca_file = ca_file  # type: ignore[attr-defined]
        raise ProbeError(kind, _verify_message(kind, exc, name, result.get("certificate")), result) from exc
    except ProbeError as exc:
        exc.result = {**result, **exc.result}
        raise
    try:
        result.update(_session_facts(client))
        result["verified"] = verify
        fields = result["certificate"]
        if pin:
            mismatches = compare_pin(fields, pin)
            result["pin_matched"] = not mismatches
            if mismatches:
                raise ProbeError(
                    "pin_mismatch",
                    f"pin mismatch for {server_key(host, port)}: the server presents a different certificate "
                    f"than the pinned one ({'; '.join(mismatches)}); subject {fields['subject']}, "
                    f"not after {fields['not_after']}",
                    result,
                )
        if username:
            _exercise(
                client,
                result,
                username=username,
                password=password or "",
                check_data_channel=check_data_channel,
                round_trip=round_trip,
                remote_dir=remote_dir,
                payload_size=payload_size,
            )
        return result
    finally:
        _quit(client)


def _exercise(
    client: FTPSClient,
    result: dict[str, Any],
    *,
    username: str,
    password: str,
    check_data_channel: bool,
    round_trip: bool,
    remote_dir: str,
    payload_size: int,
) -> None:
    try:
        client.login(username, password)
        client.prot_p()
    except ftplib.error_perm as exc:
        raise ProbeError("login", f"login as {username} refused: {str(exc).strip()}", result) from exc
    except (OSError, EOFError, ftplib.Error) as exc:
        raise ProbeError("login", f"login as {username} failed: {exc}", result) from exc
    try:
        if remote_dir:
            client.cwd(remote_dir)
        if check_data_channel:
            client.nlst()
        if round_trip:
            result["round_trip"] = _round_trip(client, payload_size)
    except (OSError, EOFError, ftplib.Error) as exc:
        result["data_session_reused"] = client.tls_facts().get("data_session_reused")
        reuse = (
            " (the server may require TLS session reuse)" if "522" in str(exc) or "425" in str(exc) else ""
        )
        raise ProbeError("transfer", f"data connection failed: {str(exc).strip()}{reuse}", result) from exc
    result["data_session_reused"] = client.tls_facts().get("data_session_reused")


def _round_trip(client: FTPSClient, size: int) -> dict[str, Any]:
    """Upload random bytes, download them, compare SHA-256, delete."""
    payload = os.urandom(size)
    remote = f".ftps-probe-{os.getpid()}-{binascii.hexlify(os.urandom(4)).decode()}"
    digest = hashlib.sha256(payload).hexdigest()
    client.storbinary(f"STOR {remote}", io.BytesIO(payload))
    received = io.BytesIO()
    try:
        client.retrbinary(f"RETR {remote}", received.write)
    finally:
        with contextlib.suppress(ftplib.Error, OSError):
            client.delete(remote)
    got = hashlib.sha256(received.getvalue()).hexdigest()
    if got != digest:
        raise ftplib.Error(  # noqa: S321 - an exception class, no FTP call
            f"round trip corrupted {remote}: sent sha256 {digest}, received {got}"
        )
    return {"file": remote, "bytes": size, "sha256": digest, "match": True, "deleted": True}
