"""Test certificates for the client tests (ftps_client, ftps_probe, ftps-trust), made with cryptography.

Not a test module: the unit tests compare the stdlib DER reader with what cryptography says, and
the integration tests serve these certificates on loopback.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "p256", "p384", "ed25519")


def make_key(kind: str):
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _hash_for(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(cn: str, org: str = "ftps-kit tests") -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, directory: pathlib.Path, stem: str) -> tuple[pathlib.Path, pathlib.Path]:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


def make_ca(cn: str = "ftps-kit test CA", key_type: str = "p256") -> Issued:
    key = make_key(key_type)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _hash_for(key))
    )
    return Issued(cert, key)


def make_leaf(
    issuer: Issued | None,
    *,
    cn: str = "localhost",
    sans: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1"),
    key_type: str = "p256",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    subject: x509.Name | None = None,
    serial: int | None = None,
) -> Issued:
    """A server certificate signed by ``issuer`` (self-signed when ``issuer`` is None)."""
    key = make_key(key_type)
    now = dt.datetime.now(dt.UTC)
    general = []
    for san in sans:
        kind, value = san.split(":", 1)
        if kind == "DNS":
            general.append(x509.DNSName(value))
        elif kind == "IP":
            general.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind == "email":
            general.append(x509.RFC822Name(value))
        elif kind == "URI":
            general.append(x509.UniformResourceIdentifier(value))
    subject = subject or _name(cn)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return Issued(builder.sign(signer_key, _hash_for(signer_key)), key)
