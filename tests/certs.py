"""A small test CA on `cryptography`: root -> intermediate -> server certificates, PKI layout.

``make_pki_generation()`` writes a directory shaped like the ``ftps_pki`` role's generations
(cert.pem, key.pem, chain.pem, fullchain.pem) and ``point_current()`` swaps the ``current``
symlink atomically, as the role does.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def fingerprint(self) -> str:
        """In the kit's one format: lowercase hex, no colons (ftpskit_common.x509.sha256_fingerprint)."""
        return self.cert.fingerprint(hashes.SHA256()).hex()


class TestCA:
    """Root and intermediate CA; issues server certificates for 127.0.0.1/localhost."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "ftpsd test") -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} root CA"))
            .issuer_name(_name(f"{name} root CA"))
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()), critical=False
            )
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.root_key, hashes.SHA256())
        )
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} intermediate CA"))
            .issuer_name(self.root.subject)
            .public_key(self.inter_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.inter_key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()), critical=False
            )
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.root_key, hashes.SHA256())
        )

    def issue(self, cn: str = "localhost", *, days: int = 30, expired: bool = False) -> Issued:
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        start = now - datetime.timedelta(days=10 if expired else 1)
        end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()),
                critical=False,
            )
            .sign(self.inter_key, hashes.SHA256())
        )
        return Issued(cert, key)

    def write_root(self, path: pathlib.Path) -> pathlib.Path:
        path.write_bytes(_pem(self.root))
        return path


def write_generation(pki: pathlib.Path, name: str, issued: Issued, ca: TestCA) -> pathlib.Path:
    """A generation directory as ftps_pki writes it."""
    gen = pki / name
    gen.mkdir(parents=True)
    (gen / "cert.pem").write_bytes(_pem(issued.cert))
    key_path = gen / "key.pem"
    key_path.write_bytes(_key_pem(issued.key))
    key_path.chmod(0o640)
    (gen / "chain.pem").write_bytes(_pem(ca.intermediate))
    (gen / "fullchain.pem").write_bytes(_pem(issued.cert) + _pem(ca.intermediate))
    return gen


def point_current(pki: pathlib.Path, gen: pathlib.Path, link: str = "current") -> None:
    """Swap ``pki/current`` to ``gen`` with one rename() of a new symlink."""
    tmp = pki / f".{link}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(gen.name, tmp)
    os.replace(tmp, pki / link)


def key_pem(issued: Issued) -> bytes:
    return _key_pem(issued.key)


def cert_pem(cert: x509.Certificate) -> bytes:
    return _pem(cert)
