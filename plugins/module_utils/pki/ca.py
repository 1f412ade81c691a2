# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The controller's internal CA: creating it, issuing server certificates, batched signing."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    cert_to_pem,
    common_name_subject,
    load_certificate,
    load_csr,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    CA_KEY_TYPES,
    check_key_type,
    generate_private_key,
    key_to_pem,
    key_type_of,
    load_private_key,
    same_public_key,
    signing_hash,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import normalize_sans, parse_san
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    cert_not_after,
    random_serial,
    utcnow,
)

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID


# The passphrase option of the modules that open or make a CA key (ftps_pki_ca, _ca_rollover,
# _sign, _client_sign, _client_crl); its documentation is the doc fragment ftpskit.ftps.ca_key.
CA_KEY_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "passphrase": {"type": "str", "default": "", "no_log": True},
}


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(*granted: str) -> x509.KeyUsage:
    """A keyUsage extension value granting exactly ``granted`` (names of x509.KeyUsage's flags)."""
    unknown = set(granted) - set(_KEY_USAGES)
    if unknown:
        raise ValueError(f"unknown key usages {sorted(unknown)}")
    return x509.KeyUsage(**{name: name in granted for name in _KEY_USAGES})


def issue_leaf(
    public_key: Any,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    extended_usage: Any,
    *,
    issuer_name: x509.Name,
    issuer_key: Any,
    not_after: _dt.datetime,
    now: _dt.datetime,
    san_critical: bool = False,
) -> x509.Certificate:
    """The one end-entity certificate builder (server and client certificates alike).

    Not a CA; keyUsage digitalSignature, plus keyEncipherment for an RSA key; the one extended key
    usage ``extended_usage`` (an ExtendedKeyUsageOID); the subject alternative names ``sans``
    (critical when the caller says so: RFC 5280 4.2.1.6, an empty subject); subject and authority
    key identifiers. Valid from five minutes before ``now`` (clock skew) to ``not_after``.
    """
    usages = ["digital_signature"] + (
        ["key_encipherment"] if isinstance(public_key, rsa.RSAPublicKey) else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=san_critical)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(*usages), critical=True)
        .add_extension(x509.ExtendedKeyUsage([extended_usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    return builder.sign(issuer_key, signing_hash(issuer_key))


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
    subject = common_name_subject(common_name)
    not_after = now + _dt.timedelta(days=validity_days)
    if issuer_cert is not None:
        not_after = min(not_after, cert_not_after(issuer_cert))
    return issue_leaf(
        public_key,
        subject,
        [parse_san(s) for s in sans],
        ExtendedKeyUsageOID.SERVER_AUTH,
        issuer_name=issuer_cert.subject if issuer_cert is not None else subject,
        issuer_key=issuer_key,
        not_after=not_after,
        now=now,
    )


def create_ca(key: Any, common_name: str, validity_days: int, now: _dt.datetime | None = None) -> Any:
    now = now or utcnow()
    name = common_name_subject(common_name)
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
        .add_extension(key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, signing_hash(key))


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
