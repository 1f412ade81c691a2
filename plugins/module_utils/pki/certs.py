# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Certificates and CSRs: PEM bundles, signatures, chain verification, trust anchors, facts."""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import re
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import sha256_fingerprint
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    key_size_of,
    key_type_of,
    signing_hash,
    spki_pin,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import (
    cert_sans,
    normalize_sans,
    parse_san,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    cert_not_after,
    cert_not_before,
    iso_utc,
    utcnow,
)

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import NameOID


SYSTEM_TRUST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


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
        if cert_not_after(item) <= now or cert_not_before(item) > now + _dt.timedelta(minutes=5):
            raise PKIError(
                f"certificate {item.subject.rfc4514_string()!r} is not valid now "
                f"(valid {iso_utc(cert_not_before(item))} to {iso_utc(cert_not_after(item))})"
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


def common_name_subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def build_csr(key: Any, common_name: str, sans: list[str]) -> x509.CertificateSigningRequest:
    names = [parse_san(s) for s in normalize_sans(sans)]
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(common_name_subject(common_name))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    return builder.sign(key, signing_hash(key))


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


def certificate_facts(cert: x509.Certificate, paths: dict[str, str] | None = None) -> dict[str, Any]:
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "fingerprint_sha256": sha256_fingerprint(der),
        "spki_sha256": spki_pin(cert.public_key()),
        "serial": format(cert.serial_number, "x"),
        "not_before": iso_utc(cert_not_before(cert)),
        "not_after": iso_utc(cert_not_after(cert)),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": cert_sans(cert),
        "key_type": key_type_of(cert.public_key()),
        "key_size": key_size_of(cert.public_key()),
        "paths": paths or {},
    }
