# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Subject alternative names: parsing, canonical strings, coverage (wildcards included)."""

from __future__ import annotations

import contextlib
import ipaddress

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import canonical_san
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509


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
