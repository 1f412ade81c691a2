"""The fleet's key manager: keys, CSRs, the controller CA, renewal rules, generation directories.

Every decision of the ``ftps_pki`` modules lives here so the unit tests can exercise it without
Ansible. This file runs on the controller (CA, batched signing) *and* on the servers (keys,
CSRs, installation), so it must work with the oldest ``cryptography`` a supported host ships
(Debian 12: 38.0.4) and the standard library only otherwise.

Layout on a server (docs/design.md)::

    <pki_dir>/gen-<UTC timestamp>-<serial hex>/{cert,key,chain,fullchain}.pem
    <pki_dir>/current  -> gen-...   (atomically swapped by rename of a new symlink)
    <pki_dir>/previous -> gen-...   (kept for rollback)
    <pki_dir>/pending/{key,csr}.pem (a key made for a CSR that is not signed yet; never served)
    <pki_dir>/next/key.pem          (the key of the next rotation, made ahead of time so its SPKI
                                     pin reaches the clients before it is served: RFC 7671 8.1)
"""

from __future__ import annotations

import datetime as _dt
import grp
import ipaddress
import itertools
import os
import re
import secrets
import shutil
import tempfile
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import canonical_san
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import (
    normalize_fingerprint,
    sha256_fingerprint,
    spki_sha256,
)

CRYPTOGRAPHY_IMP_ERR: str | None = None
try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised on hosts without python3-cryptography
    import traceback

    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMP_ERR = traceback.format_exc()

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
CA_KEY_TYPES = ("ecdsa-p384", "ecdsa-p256", "rsa-4096", "rsa-3072")
SERIAL_BITS = 128
CERT_NAME, KEY_NAME, CHAIN_NAME, FULLCHAIN_NAME = "cert.pem", "key.pem", "chain.pem", "fullchain.pem"
CURRENT, PREVIOUS, PENDING, NEXT = "current", "previous", "pending", "next"
GEN_PREFIX = "gen-"
SYSTEM_TRUST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class PKIError(Exception):
    """A domain error with a sentence an operator can act on."""


# --------------------------------------------------------------------------------------------
# time, serials, small helpers


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _not_after(cert: x509.Certificate) -> _dt.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=_dt.UTC)


def _not_before(cert: x509.Certificate) -> _dt.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=_dt.UTC)


def _iso(value: _dt.datetime) -> str:
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_serial() -> int:
    """A random, positive, non-zero serial of at most 128 bits (RFC 5280 4.1.2.2)."""
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial > 0:
            return serial


def _spki_der(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_pin(public_key: Any) -> str:
    """The SPKI pin of a public key: base64 of SHA-256 over its DER SubjectPublicKeyInfo."""
    return spki_sha256(_spki_der(public_key))


def same_public_key(a: Any, b: Any) -> bool:
    return _spki_der(a) == _spki_der(b)


# --------------------------------------------------------------------------------------------
# keys


def check_key_type(key_type: str, allowed: tuple[str, ...] = KEY_TYPES) -> str:
    if key_type not in allowed:
        raise PKIError(f"unsupported key type {key_type!r}; supported: {', '.join(allowed)}")
    return key_type


def generate_private_key(key_type: str, allowed: tuple[str, ...] = KEY_TYPES) -> Any:
    check_key_type(key_type, allowed)
    family, _sep, size = key_type.partition("-")
    if family == "ecdsa":
        curve = ec.SECP256R1() if size == "p256" else ec.SECP384R1()
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=int(size))


def key_type_of(key: Any) -> str:
    """The kit's name for a private or public key's type, e.g. ``ecdsa-p256``; ``other`` if foreign."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(public.curve.name, "ecdsa-other")
    if isinstance(public, rsa.RSAPublicKey):
        return f"rsa-{public.key_size}"
    return "other"


def key_size_of(key: Any) -> int:
    public = key.public_key() if hasattr(key, "public_key") else key
    return int(getattr(public, "key_size", 0))


def key_to_pem(key: Any, passphrase: str = "") -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(data: bytes, passphrase: str = "", what: str = "private key") -> Any:
    try:
        return serialization.load_pem_private_key(data, password=passphrase.encode() or None)
    except TypeError as exc:  # encrypted without passphrase, or the reverse
        raise PKIError(f"{what}: {exc} (check the passphrase)") from exc
    except ValueError as exc:
        raise PKIError(f"{what} cannot be read: wrong passphrase or not a PEM private key ({exc})") from exc


def _signing_hash(key: Any) -> Any:
    if key_type_of(key) == "ecdsa-p384":
        return hashes.SHA384()
    return hashes.SHA256()


# --------------------------------------------------------------------------------------------
# subject alternative names


def parse_san(value: str) -> x509.GeneralName:
    """``DNS:name``, ``IP:addr`` or a bare name/address → a GeneralName; PKIError if invalid.

    The spelling and the rules are ftpskit_common.sans.canonical_san's (the one definition the
    gate and the report compare with).
    """
    try:
        kind, _sep, text = canonical_san(value).partition(":")
    except ValueError as exc:
        raise PKIError(str(exc)) from None
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(text))
    return x509.DNSName(text)


def san_to_str(name: x509.GeneralName) -> str:
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value.lower()}"
    return f"{type(name).__name__}:{name.value}"


def normalize_sans(values: list[str]) -> list[str]:
    """Validate, deduplicate and order SANs (first occurrence wins the order)."""
    seen: dict[str, None] = {}
    for value in values:
        if value is None or str(value).strip() == "":
            continue
        seen.setdefault(san_to_str(parse_san(value)), None)
    if not seen:
        raise PKIError("no subject alternative names: a certificate needs at least one name")
    return list(seen)


def cert_sans(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    """The subject alternative names of a certificate or a CSR (both carry the extension)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [san_to_str(name) for name in ext.value]


def _dns_covers(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _dot, tail = name.partition(".")
        return bool(head) and tail == pattern[2:]
    return False


def sans_cover(cert_names: list[str], required: list[str]) -> list[str]:
    """The required names the certificate's SANs do not cover (wildcards honoured)."""
    missing = []
    for want in normalize_sans(required) if required else []:
        if want.startswith("IP:"):
            ok = want in cert_names
        else:
            ok = any(_dns_covers(have[4:], want[4:]) for have in cert_names if have.startswith("DNS:"))
        if not ok:
            missing.append(want)
    return missing


# --------------------------------------------------------------------------------------------
# PEM bundles and signatures


def load_certificate(data: bytes | str, what: str = "certificate") -> x509.Certificate:
    raw = data.encode() if isinstance(data, str) else data
    try:
        return x509.load_pem_x509_certificate(raw)
    except ValueError as exc:
        raise PKIError(f"{what} is not a PEM certificate ({exc})") from exc


def load_certificates(data: bytes | str, what: str = "chain") -> list[x509.Certificate]:
    text = data.decode() if isinstance(data, bytes) else (data or "")
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    return [load_certificate(block, f"{what} entry {i + 1}") for i, block in enumerate(blocks)]


def cert_to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s key verifies ``cert``'s signature and the names chain."""
    if cert.issuer != issuer.subject:
        return False
    public = issuer.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            params = getattr(cert, "signature_algorithm_parameters", None)
            pad = params if params is not None else padding.PKCS1v15()
            public.verify(cert.signature, cert.tbs_certificate_bytes, pad, cert.signature_hash_algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            public.verify(cert.signature, cert.tbs_certificate_bytes)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def verify_chain(
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    anchors: list[x509.Certificate] | None = None,
    now: _dt.datetime | None = None,
) -> None:
    """Raise PKIError unless cert ← chain[0] ← … links by signature and ends at a trust anchor.

    The top of the path must be self-signed (a root included in the chain) or signed by one of
    ``anchors`` (e.g. the host's system trust store). Every certificate must be in its validity
    period.
    """
    now = now or utcnow()
    path = [cert, *chain]
    for item in path:
        if _not_after(item) <= now or _not_before(item) > now + _dt.timedelta(minutes=5):
            raise PKIError(
                f"certificate {item.subject.rfc4514_string()!r} is not valid now "
                f"(valid {_iso(_not_before(item))} to {_iso(_not_after(item))})"
            )
    for child, parent in itertools.pairwise(path):
        if not signed_by(child, parent):
            raise PKIError(
                f"chain does not verify: {child.subject.rfc4514_string()!r} is not signed by the next "
                f"certificate in the chain, {parent.subject.rfc4514_string()!r}"
            )
    top = path[-1]
    if len(path) > 1 and top.issuer == top.subject and signed_by(top, top):
        return
    for anchor in anchors or []:
        if signed_by(top, anchor):
            return
    raise PKIError(
        f"chain does not verify: it ends at {top.subject.rfc4514_string()!r}, issued by "
        f"{top.issuer.rfc4514_string()!r}, which is neither a root in the chain nor a trusted CA"
    )


def load_trust_anchors(path: str = SYSTEM_TRUST_BUNDLE) -> list[x509.Certificate]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    anchors = []
    for block in re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S):
        try:
            anchors.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue
    return anchors


# --------------------------------------------------------------------------------------------
# CSRs and certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def build_csr(key: Any, common_name: str, sans: list[str]) -> x509.CertificateSigningRequest:
    names = [parse_san(s) for s in normalize_sans(sans)]
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(common_name))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    return builder.sign(key, _signing_hash(key))


def csr_to_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def load_csr(data: str | bytes, what: str = "CSR") -> x509.CertificateSigningRequest:
    raw = data.encode() if isinstance(data, str) else data
    try:
        csr = x509.load_pem_x509_csr(raw)
    except ValueError as exc:
        raise PKIError(f"{what} is not a PEM certificate signing request ({exc})") from exc
    if not csr.is_signature_valid:
        raise PKIError(f"{what} has an invalid signature")
    return csr


def _server_extensions(builder: Any, public_key: Any, sans: list[str], issuer_key: Any) -> Any:
    if isinstance(public_key, rsa.RSAPublicKey):
        usage = {"digital_signature": True, "key_encipherment": True, "key_agreement": False}
    else:
        usage = {"digital_signature": True, "key_encipherment": False, "key_agreement": False}
    return (
        builder.add_extension(x509.SubjectAlternativeName([parse_san(s) for s in sans]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                content_commitment=False,
                data_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
                **usage,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)
    )


def issue_certificate(
    public_key: Any,
    common_name: str,
    sans: list[str],
    *,
    issuer_cert: x509.Certificate | None,
    issuer_key: Any,
    validity_days: int,
    now: _dt.datetime | None = None,
) -> x509.Certificate:
    """A server certificate; self-signed when ``issuer_cert`` is None (``issuer_key`` = own key)."""
    if validity_days < 1:
        raise PKIError(f"validity must be at least 1 day, not {validity_days}")
    now = now or utcnow()
    sans = normalize_sans(sans)
    subject = _name(common_name)
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    not_after = now + _dt.timedelta(days=validity_days)
    if issuer_cert is not None:
        not_after = min(not_after, _not_after(issuer_cert))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(not_after)
    )
    builder = _server_extensions(builder, public_key, sans, issuer_key.public_key())
    return builder.sign(issuer_key, _signing_hash(issuer_key))


def create_ca(key: Any, common_name: str, validity_days: int, now: _dt.datetime | None = None) -> Any:
    now = now or utcnow()
    name = _name(common_name)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(random_serial())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, _signing_hash(key))


# --------------------------------------------------------------------------------------------
# the controller CA


class CertificateAuthority:
    """The controller's CA: ``<dir>/ca.pem`` (0644) and ``<dir>/ca.key`` (0600) in a 0700 dir."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.cert_path = os.path.join(directory, "ca.pem")
        self.key_path = os.path.join(directory, "ca.key")
        self.cert: x509.Certificate | None = None
        self.key: Any = None

    def exists(self) -> bool:
        return os.path.exists(self.cert_path) and os.path.exists(self.key_path)

    def load(self, passphrase: str = "") -> CertificateAuthority:
        if not self.exists():
            raise PKIError(f"no CA in {self.directory} (expected ca.pem and ca.key)")
        with open(self.cert_path, "rb") as handle:
            self.cert = load_certificate(handle.read(), f"CA certificate {self.cert_path}")
        with open(self.key_path, "rb") as handle:
            self.key = load_private_key(handle.read(), passphrase, f"CA key {self.key_path}")
        if not same_public_key(self.cert.public_key(), self.key.public_key()):
            raise PKIError(f"CA key {self.key_path} does not belong to CA certificate {self.cert_path}")
        return self

    def create(self, key_type: str, common_name: str, validity_days: int, passphrase: str = "") -> None:
        key = generate_private_key(key_type, CA_KEY_TYPES)
        cert = create_ca(key, common_name, validity_days)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
        atomic_write(self.key_path, key_to_pem(key, passphrase), 0o600)
        atomic_write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        self.cert, self.key = cert, key

    def sign(self, csr_pem: str, common_name: str, sans: list[str], validity_days: int, host: str) -> str:
        if self.cert is None:
            raise PKIError("CA not loaded")
        csr = load_csr(csr_pem, f"CSR of {host}")
        key_type = key_type_of(csr.public_key())
        check_key_type(key_type)
        wanted = normalize_sans(sans)
        cert = issue_certificate(
            csr.public_key(),
            common_name,
            wanted,
            issuer_cert=self.cert,
            issuer_key=self.key,
            validity_days=validity_days,
        )
        return cert_to_pem(cert)


def sign_batch(
    ca: CertificateAuthority, requests: list[dict[str, Any]], validity_days: int
) -> dict[str, Any]:
    """Sign every request ``{host, csr, sans, common_name?, validity_days?}`` with one loaded CA.

    One bad request fails only its host: the result maps host → certificate PEM and host → error.
    """
    certificates: dict[str, str] = {}
    errors: dict[str, str] = {}
    for request in requests:
        host = str(request.get("host", ""))
        if not request.get("csr"):
            continue
        try:
            certificates[host] = ca.sign(
                request["csr"],
                str(request.get("common_name") or host),
                list(request.get("sans") or []),
                int(request.get("validity_days") or validity_days),
                host,
            )
        except PKIError as exc:
            errors[host] = str(exc)
    return {"certificates": certificates, "errors": errors}


# --------------------------------------------------------------------------------------------
# the renewal rules


def needs_reissue(
    cert: x509.Certificate | None,
    key: Any,
    *,
    wanted_sans: list[str] | None,
    key_type: str | None,
    renew_before_days: int,
    issuer: x509.Certificate | None = None,
    self_signed: bool = False,
    force: bool = False,
    now: _dt.datetime | None = None,
) -> list[str]:
    """The reasons to re-issue (empty: keep the certificate). docs/pki.md lists the rules.

    Deliberately *not* a reason: a changed validity period, subject or CA key type — they take
    effect at the next renewal.
    """
    if cert is None:
        return ["missing: no current certificate"]
    reasons = []
    if force:
        reasons.append("forced: ftps_pki_force_rotate is set")
    now = now or utcnow()
    left = _not_after(cert) - now
    if left <= _dt.timedelta(days=renew_before_days):
        reasons.append(
            f"expiring: valid until {_iso(_not_after(cert))}, within the renewal threshold of "
            f"{renew_before_days} days"
        )
    if wanted_sans is not None:
        have, want = set(cert_sans(cert)), set(normalize_sans(wanted_sans))
        if have != want:
            extra, lacking = sorted(have - want), sorted(want - have)
            reasons.append(f"sans: certificate lacks {lacking} and has unwanted {extra}")
    if key_type is not None and key_type_of(cert.public_key()) != key_type:
        reasons.append(f"key type: certificate has {key_type_of(cert.public_key())}, wanted {key_type}")
    if issuer is not None and not signed_by(cert, issuer):
        reasons.append(f"issuer: certificate is not signed by {issuer.subject.rfc4514_string()!r}")
    if self_signed and not signed_by(cert, cert):
        reasons.append("issuer: certificate is not self-signed")
    if key is None:
        reasons.append("key: the private key is missing or unreadable")
    elif not same_public_key(key.public_key(), cert.public_key()):
        reasons.append("key: the private key does not match the certificate")
    return reasons


# --------------------------------------------------------------------------------------------
# facts


def certificate_facts(cert: x509.Certificate, paths: dict[str, str] | None = None) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "fingerprint_sha256": sha256_fingerprint(der),
        "spki_sha256": spki_pin(cert.public_key()),
        "serial": format(cert.serial_number, "x"),
        "not_before": _iso(_not_before(cert)),
        "not_after": _iso(_not_after(cert)),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": cert_sans(cert),
        "key_type": key_type_of(cert.public_key()),
        "key_size": key_size_of(cert.public_key()),
        "paths": paths or {},
    }


# --------------------------------------------------------------------------------------------
# files and the generation store


def group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise PKIError(f"group {name!r} does not exist (the role creates it; run it first)") from exc


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _read_parsed(path: str | None, parse: Any) -> Any:
    """``parse(bytes)`` of the file at ``path``; None when there is no path, no file, or it does not parse."""
    data = _read(path) if path else None
    if data is None:
        return None
    try:
        return parse(data)
    except PKIError:
        return None


class Store:
    """The generation directories and ``current``/``previous`` symlinks on a server."""

    def __init__(self, root: str, group: str = "ftpsd") -> None:
        self.root = root
        self.group = group

    # reading --------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def generation(self, link: str = CURRENT) -> str | None:
        target = self.path(link)
        if not os.path.islink(target):
            return None
        resolved = os.path.realpath(target)
        return resolved if os.path.isdir(resolved) else None

    def current_cert(self) -> x509.Certificate | None:
        gen = self.generation()
        return _read_parsed(os.path.join(gen, CERT_NAME) if gen else None, load_certificate)

    def current_key(self) -> Any:
        gen = self.generation()
        return _read_parsed(os.path.join(gen, KEY_NAME) if gen else None, load_private_key)

    def current_chain_pem(self) -> str:
        gen = self.generation()
        data = _read(os.path.join(gen, CHAIN_NAME)) if gen else None
        return data.decode() if data else ""

    def pending_key(self) -> Any:
        return _read_parsed(self.path(PENDING, KEY_NAME), load_private_key)

    def pending_csr_pem(self) -> str:
        data = _read(self.path(PENDING, "csr.pem"))
        return data.decode() if data else ""

    def next_key(self) -> Any:
        return _read_parsed(self.path(NEXT, KEY_NAME), load_private_key)

    def paths(self) -> dict[str, str]:
        current = self.path(CURRENT)
        return {
            "dir": self.root,
            "current": current,
            "generation": self.generation() or "",
            "previous": self.generation(PREVIOUS) or "",
            "cert": os.path.join(current, CERT_NAME),
            "key": os.path.join(current, KEY_NAME),
            "chain": os.path.join(current, CHAIN_NAME),
            "fullchain": os.path.join(current, FULLCHAIN_NAME),
        }

    def facts(self) -> dict[str, Any]:
        """The current certificate's facts, plus ``next_spki_sha256`` when a next key exists."""
        cert = self.current_cert()
        if cert is None:
            return {}
        facts = certificate_facts(cert, self.paths())
        nxt = self.next_key()
        if nxt is not None:
            facts["next_spki_sha256"] = spki_pin(nxt.public_key())
        return facts

    # writing --------------------------------------------------------------------------------
    def ensure_root(self) -> None:
        gid = group_id(self.group)
        os.makedirs(self.root, mode=0o750, exist_ok=True)
        os.chown(self.root, 0, gid)
        os.chmod(self.root, 0o750)  # noqa: S103 - the daemon's group must traverse to its key

    def stage_pending(self, key: Any, csr_pem: str) -> None:
        """Keep a new key and its CSR until the certificate arrives (root only, never served)."""
        self.ensure_root()
        pending = self.path(PENDING)
        os.makedirs(pending, mode=0o700, exist_ok=True)
        os.chmod(pending, 0o700)
        atomic_write(os.path.join(pending, KEY_NAME), key_to_pem(key), 0o600)
        atomic_write(os.path.join(pending, "csr.pem"), csr_pem.encode(), 0o644)

    def stage_next(self, key: Any) -> None:
        """Keep the next rotation's key (root only, never served until a rotation uses it)."""
        self.ensure_root()
        directory = self.path(NEXT)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        atomic_write(os.path.join(directory, KEY_NAME), key_to_pem(key), 0o600)

    def clear_next(self) -> None:
        shutil.rmtree(self.path(NEXT), ignore_errors=True)

    def clear_pending(self) -> None:
        shutil.rmtree(self.path(PENDING), ignore_errors=True)

    def install(self, cert: x509.Certificate, key: Any, chain: list[x509.Certificate]) -> str:
        """Write a complete new generation, then swap ``current`` (and ``previous``) atomically."""
        self.ensure_root()
        gid = group_id(self.group)
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        name = f"{GEN_PREFIX}{stamp}-{cert.serial_number:x}"
        final = self.path(name)
        staging = tempfile.mkdtemp(prefix=".gen-", dir=self.root)
        try:
            cert_pem = cert_to_pem(cert).encode()
            chain_pem = "".join(cert_to_pem(c) for c in chain).encode()
            atomic_write(os.path.join(staging, CERT_NAME), cert_pem, 0o644)
            atomic_write(os.path.join(staging, CHAIN_NAME), chain_pem, 0o644)
            atomic_write(os.path.join(staging, FULLCHAIN_NAME), cert_pem + chain_pem, 0o644)
            atomic_write(os.path.join(staging, KEY_NAME), key_to_pem(key), 0o640, gid)
            os.chown(staging, 0, gid)
            os.chmod(staging, 0o750)  # noqa: S103 - the daemon's group reads the key (0640) inside
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = self.generation(CURRENT)
        if old is not None:
            self._swap_link(PREVIOUS, os.path.basename(old))
        self._swap_link(CURRENT, name)
        self._prune()
        return final

    def _swap_link(self, link: str, target: str) -> None:
        tmp = self.path(f".{link}.{secrets.token_hex(4)}")
        os.symlink(target, tmp)
        os.replace(tmp, self.path(link))

    def rollback(self) -> str:
        """Point ``current`` back at ``previous`` and ``previous`` at the generation it replaced.

        Both generations stay (the replaced one for inspection); the swap is two atomic renames,
        ``current`` last, so the daemon never finds it missing.
        """
        old, new = self.generation(PREVIOUS), self.generation(CURRENT)
        if old is None or new is None:
            raise PKIError(f"no previous generation in {self.root} to go back to")
        self._swap_link(PREVIOUS, os.path.basename(new))
        self._swap_link(CURRENT, os.path.basename(old))
        return old

    def _prune(self) -> None:
        keep = {self.generation(CURRENT), self.generation(PREVIOUS)}
        for entry in os.listdir(self.root):
            full = self.path(entry)
            stale_tmp = entry.startswith(".gen-")
            if (entry.startswith(GEN_PREFIX) or stale_tmp) and os.path.realpath(full) not in keep:
                shutil.rmtree(full, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# the host-side steps the modules run (decide first, change only when not in check mode)


def _summary(cert: x509.Certificate | None) -> dict[str, Any]:
    if cert is None:
        return {}
    facts = certificate_facts(cert)
    return {k: facts[k] for k in ("serial", "not_after", "sans", "issuer", "key_type", "fingerprint_sha256")}


def request(
    store: Store,
    *,
    common_name: str,
    sans: list[str],
    key_type: str,
    renew_before_days: int,
    rotate_key: bool,
    force: bool,
    issuer: x509.Certificate | None,
    self_signed: bool,
    check_mode: bool,
    extra_reasons: list[str] | None = None,
) -> dict[str, Any]:
    """Decide whether the host needs a new certificate; if so, stage a key and a CSR.

    ``extra_reasons`` are reasons decided elsewhere (acme mode: the CA's renewal window, RFC 9773).

    A pending key (made earlier, never served) is reused while it has the wanted type, so an
    unsigned CSR stays stable across runs (external mode) and a failed run resumes cleanly.
    """
    check_key_type(key_type)
    wanted = normalize_sans(sans)
    cert, key = store.current_cert(), store.current_key()
    reasons = needs_reissue(
        cert,
        key,
        wanted_sans=wanted,
        key_type=key_type,
        renew_before_days=renew_before_days,
        issuer=issuer,
        self_signed=self_signed,
        force=force,
    )
    if cert is not None:
        reasons += [reason for reason in extra_reasons or [] if reason]
    result: dict[str, Any] = {"reissue": bool(reasons), "reasons": reasons, "csr": "", "changed": False}
    result["diff"] = {"before": {"certificate": _summary(cert)}, "after": {"certificate": _summary(cert)}}
    if not reasons:
        if not check_mode and os.path.isdir(store.path(PENDING)):
            store.clear_pending()  # a leftover from an interrupted run; nothing to report
        return result
    pending = store.pending_key()
    pending_csr = store.pending_csr_pem()
    if pending is not None and pending_csr and key_type_of(pending) == key_type:
        try:
            same = set(cert_sans(load_csr(pending_csr))) == set(wanted)
        except PKIError:
            same = False
        if same:
            result["csr"] = pending_csr
            result["diff"]["after"] = {
                "certificate": {"pending": "CSR awaiting signature", "reasons": reasons}
            }
            return result
    result["changed"] = True
    result["diff"]["after"] = {"certificate": {"pending": "new key and CSR", "reasons": reasons}}
    if check_mode:
        return result
    reuse = (
        not rotate_key
        and not force
        and key is not None
        and key_type_of(key) == key_type
        and (cert is None or same_public_key(key.public_key(), cert.public_key()))
    )
    new_key = key if reuse else _usable_next_key(store, key_type, key) or generate_private_key(key_type)
    csr_pem = csr_to_pem(build_csr(new_key, common_name, wanted))
    store.stage_pending(new_key, csr_pem)
    result["csr"] = csr_pem
    return result


def install(
    store: Store,
    *,
    certificate: str = "",
    chain: str = "",
    private_key: str = "",
    self_signed: bool = False,
    common_name: str = "",
    sans: list[str] | None = None,
    required_names: list[str] | None = None,
    validity_days: int = 90,
    trust_anchors: list[x509.Certificate] | None = None,
    verify: bool = True,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Validate and install a certificate with its key as a new generation; report facts.

    The key is, in order: ``private_key`` (provided mode), the pending key if it matches, the
    current key if it matches (an operator re-signed the old CSR). Every check runs before
    anything is written, so a bad certificate leaves the current generation serving.
    """
    current = store.current_cert()
    before = _summary(current)
    result: dict[str, Any] = {"changed": False, "installed": False}
    if self_signed:
        key = store.pending_key()
        if key is None:
            if check_mode and current is None:
                result["changed"] = True
            result.update(facts=store.facts(), diff={"before": before, "after": before})
            return result
        cert = issue_certificate(
            key.public_key(),
            common_name,
            sans or [],
            issuer_cert=None,
            issuer_key=key,
            validity_days=validity_days,
        )
        chain_certs: list[x509.Certificate] = []
    elif certificate:
        cert = load_certificate(certificate, "the new certificate")
        chain_certs = load_certificates(chain, "the chain")
        key = _matching_key(store, cert, private_key)
        if current == cert and load_certificates(store.current_chain_pem()) == chain_certs:
            current_key = store.current_key()
            if current_key is not None and same_public_key(current_key.public_key(), key.public_key()):
                result.update(facts=store.facts(), diff={"before": before, "after": before})
                return result
        if verify:
            validate_server_certificate(cert, chain_certs, required_names or [], trust_anchors)
    else:
        result.update(facts=store.facts(), diff={"before": before, "after": before})
        return result
    result.update(changed=True, installed=True, diff={"before": before, "after": _summary(cert)})
    if check_mode:
        result["facts"] = certificate_facts(cert, store.paths())
        return result
    store.install(cert, key, chain_certs)
    store.clear_pending()
    nxt = store.next_key()
    if nxt is not None and same_public_key(nxt.public_key(), key.public_key()):
        store.clear_next()  # now the current key: the next rotation needs a fresh one
    result["facts"] = store.facts()
    return result


def _usable_next_key(store: Store, key_type: str, current_key: Any) -> Any:
    """The pre-made next key when it has the wanted type and is not the current key, else None."""
    nxt = store.next_key()
    if nxt is None or key_type_of(nxt) != key_type:
        return None
    if current_key is not None and same_public_key(nxt.public_key(), current_key.public_key()):
        return None
    return nxt


def ensure_next_key(store: Store, key_type: str, *, check_mode: bool = False) -> dict[str, Any]:
    """Make sure ``<pki_dir>/next/key.pem`` holds a key of ``key_type`` that is not served yet.

    The key never leaves the host; only its SPKI pin (``next_spki_sha256``) is reported, so the
    clients can pin it before a rotation serves it (RFC 7671 8.1, "current + next").
    """
    check_key_type(key_type)
    current = store.current_key()
    nxt = _usable_next_key(store, key_type, current)
    if nxt is not None:
        return {"changed": False, "next_spki_sha256": spki_pin(nxt.public_key())}
    if check_mode:
        return {"changed": True, "next_spki_sha256": ""}
    nxt = generate_private_key(key_type)
    store.stage_next(nxt)
    return {"changed": True, "next_spki_sha256": spki_pin(nxt.public_key())}


def _matching_key(store: Store, cert: x509.Certificate, private_key: str) -> Any:
    if private_key:
        key = load_private_key(private_key.encode(), what="the provided private key")
        if not same_public_key(key.public_key(), cert.public_key()):
            raise PKIError("the provided private key does not match the certificate")
        return key
    for candidate in (store.pending_key(), store.current_key()):
        if candidate is not None and same_public_key(candidate.public_key(), cert.public_key()):
            return candidate
    raise PKIError(
        "the certificate's public key matches neither this host's pending key (its CSR) "
        "nor its current key: it was not issued for a key of this host"
    )


def validate_server_certificate(
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    required_names: list[str],
    anchors: list[x509.Certificate] | None = None,
    now: _dt.datetime | None = None,
) -> None:
    """Expired, not covering the host, not for servers, or an unverifiable chain → PKIError."""
    now = now or utcnow()
    if _not_after(cert) <= now:
        raise PKIError(f"the certificate expired at {_iso(_not_after(cert))}")
    missing = sans_cover(cert_sans(cert), required_names)
    if missing:
        raise PKIError(
            f"the certificate's SANs {cert_sans(cert)} do not cover {missing}, required for this host"
        )
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            raise PKIError("the certificate's extended key usage does not allow TLS servers (serverAuth)")
    except x509.ExtensionNotFound:
        pass
    verify_chain(cert, chain, anchors, now)


def generations(store: Store) -> dict[str, Any]:
    """The facts of the ``current`` and ``previous`` certificates ({} when there is none)."""
    result = {}
    for link in (CURRENT, PREVIOUS):
        gen = store.generation(link)
        cert = _read_parsed(os.path.join(gen, CERT_NAME) if gen else None, load_certificate)
        result[link] = certificate_facts(cert, {"generation": gen or ""}) if cert is not None else {}
    return result


def current_problems(store: Store) -> list[str]:
    """Why the serving generation cannot be used, in sentences ([] when it can, or when there is
    no generation at all: a host without a certificate is for site.yml, not a broken one).

    Checked: the certificate and the key read as PEM, and the key is the certificate's key. A
    rotation skips a host with problems (it would have nothing sound to go back to)."""
    gen = store.generation(CURRENT)
    if gen is None:
        return []
    problems = []
    cert = key = None
    for name, parse, what in (
        (CERT_NAME, load_certificate, "certificate"),
        (KEY_NAME, load_private_key, "key"),
    ):
        path = os.path.join(gen, name)
        data = _read(path)
        if data is None:
            problems.append(f"the deployed {what} {path} is missing or cannot be read")
            continue
        try:
            parsed = parse(data)
        except PKIError:
            problems.append(
                f"the deployed {what} {path} is damaged: it does not read as a PEM {what} "
                "(changed, cut short or replaced); re-run site.yml to re-issue it"
            )
            continue
        if what == "certificate":
            cert = parsed
        else:
            key = parsed
    if cert is not None and key is not None and spki_pin(cert.public_key()) != spki_pin(key.public_key()):
        problems.append(f"the deployed key in {gen} is not the certificate's key")
    return problems


def rollback(store: Store, *, rollback_from: str, check_mode: bool = False) -> dict[str, Any]:
    """Go back to the previous generation if the current one is ``rollback_from`` (a fingerprint).

    Idempotent: when the current certificate is another one (never installed, or already rolled
    back) nothing changes. A current generation to leave without a previous one is an error.
    """
    try:
        wanted = normalize_fingerprint(rollback_from) if rollback_from else ""
    except ValueError as exc:
        raise PKIError(f"rollback_from: {exc}") from None
    before = generations(store)
    result: dict[str, Any] = {"changed": False, "rolled_back": False, "before": before}
    if not wanted or before[CURRENT].get("fingerprint_sha256") != wanted:
        result["generations"] = before
        return result
    if not before[PREVIOUS]:
        raise PKIError(
            f"the current certificate {wanted} has no previous generation in {store.root} to go back to"
        )
    result.update(changed=True, rolled_back=True)
    if check_mode:
        result["generations"] = {CURRENT: before[PREVIOUS], PREVIOUS: before[CURRENT]}
        return result
    store.rollback()
    result["generations"] = generations(store)
    return result
