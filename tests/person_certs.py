"""Client (person) certificates for the client-certificate tests: a client CA, leaves with the
clientAuth EKU and a chosen SAN email / URI / CN, intermediates, and the CA's CRL.

Not a test module. ``ClientCA.write(directory)`` writes ``ca.pem`` and ``crl.pem`` as ftps_pki
deploys them (docs/ftpsd.md, "Client certificates").
"""

from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Person:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()  # intermediates the client sends after its leaf

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    def write(self, directory: pathlib.Path, stem: str) -> tuple[pathlib.Path, pathlib.Path]:
        """``<stem>.crt`` (leaf, then its intermediates) and ``<stem>.key`` (mode 0600)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain))
        cert_path.write_bytes(pem)
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


def _ca_cert(subject: x509.Name, issuer: x509.Name, key, signer, path_length: int | None) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )


class ClientCA:
    """A client-issuing CA (self-signed) with its CRL."""

    __test__ = False

    def __init__(self, name: str = "ftps-kit test client CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = _ca_cert(self.name, self.name, self.key, self.key, None)
        self.revoked: list[int] = []

    def issue(
        self,
        *,
        email: tuple[str, ...] = (),
        uri: tuple[str, ...] = (),
        cn: str | tuple[str, ...] = "person",
        eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
        expired: bool = False,
        intermediates: int = 0,
    ) -> Person:
        """A leaf with these SAN emails/URIs and CN(s), signed through ``intermediates`` CAs."""
        signer_key, signer_name, chain = self.key, self.name, []
        for index in range(intermediates):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"intermediate {index}")])
            chain.insert(0, _ca_cert(name, signer_name, key, signer_key, None))
            signer_key, signer_name = key, name
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cns = (cn,) if isinstance(cn, str) else cn
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value) for value in cns])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(signer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=10 if expired else 1))
            .not_valid_after(now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        names = [x509.RFC822Name(e) for e in email] + [x509.UniformResourceIdentifier(u) for u in uri]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Person(builder.sign(signer_key, hashes.SHA256()), key, tuple(chain))

    def crl(self, *, next_update: dt.timedelta = dt.timedelta(days=7)) -> x509.CertificateRevocationList:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.name)
            .last_update(min(now - dt.timedelta(minutes=5), now + next_update - dt.timedelta(days=1)))
            .next_update(now + next_update)
        )
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def revoke(self, person: Person) -> None:
        self.revoked.append(person.serial)

    def write(self, directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
        """``ca.pem`` and ``crl.pem`` (the CRL as the revocations stand now), atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, crl = directory / "ca.pem", directory / "crl.pem"
        ca.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        tmp = directory / ".crl.pem.tmp"
        tmp.write_bytes(self.crl().public_bytes(serialization.Encoding.PEM))
        tmp.replace(crl)
        return ca, crl
