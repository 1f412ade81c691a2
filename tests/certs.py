"""The tests' one certificate builder, on `cryptography`: keys, CAs, leaves, CRLs, PKI layout.

Not a test module. Two primitives build every certificate the tests make (``ca_certificate``,
``leaf_certificate``); on them stand

- ``TestCA``: root -> intermediate -> server certificates for 127.0.0.1/localhost, with
  ``write_generation()`` / ``point_current()`` writing a directory shaped like the ``ftps_pki``
  role's generations (cert.pem, key.pem, chain.pem, fullchain.pem; ``current`` swapped atomically);
- ``make_ca()`` / ``make_leaf()``: one CA and server certificates of any key type and SAN set
  (the client tests: ftps_client, ftps_probe, ftps-trust, the stdlib DER reader);
- ``ClientCA``: a client-issuing CA, person certificates (clientAuth EKU, SAN e-mail / URI, CN,
  intermediates) and its CRL, written as ftps_pki deploys them (docs/ftpsd.md, "Client certificates").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "p256", "p384", "ed25519")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_key(kind: str = "p256"):
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


def subject_name(*cns: str, org: str | None = None) -> x509.Name:
    """O=org (when given), then one CN per value."""
    org_attr = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    return x509.Name(org_attr + [x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in cns])


def general_names(sans: tuple[str, ...]) -> list[x509.GeneralName]:
    """``DNS:``, ``IP:``, ``email:`` and ``URI:`` strings as subjectAltName entries."""
    kinds = {
        "DNS": x509.DNSName,
        "IP": lambda value: x509.IPAddress(ipaddress.ip_address(value)),
        "email": x509.RFC822Name,
        "URI": x509.UniformResourceIdentifier,
    }
    return [kinds[kind](value) for kind, value in (san.split(":", 1) for san in sans)]


def _builder(
    key, subject: x509.Name, issuer: Issued | None, not_before, not_after, *, serial: int | None = None
) -> x509.CertificateBuilder:
    """Subject, issuer (``subject`` when self-signed), public key, serial and validity."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def ca_certificate(
    key,
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    path_length: int | None = None,
    days: int = 3650,
    authority_key_id: bool = False,
) -> x509.Certificate:
    """A CA certificate (basicConstraints CA, keyCertSign + cRLSign, SKI), self-signed unless ``issuer``."""
    now = _now()
    signer = issuer.key if issuer else key
    builder = (
        _builder(key, subject, issuer, now - dt.timedelta(days=1), now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if authority_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    return builder.sign(signer, _hash_for(signer))


def leaf_certificate(
    key,
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    sans: list[x509.GeneralName] = (),
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int | None = None,
    key_ids: bool = True,
) -> x509.Certificate:
    """An end-entity certificate (not a CA), self-signed unless ``issuer``: the EKU ``eku`` (none
    when None), the SAN ``sans`` (none when empty), subject/authority key identifiers unless
    ``key_ids`` is false."""
    signer = issuer.key if issuer else key
    builder = _builder(key, subject, issuer, not_before, not_after, serial=serial)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if key_ids:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        if issuer:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
            )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signer, _hash_for(signer))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Issued:
    """A certificate, its key, and the intermediates a client sends after it (person certificates)."""

    cert: x509.Certificate
    key: object
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def fingerprint(self) -> str:
        """In the kit's one format: lowercase hex, no colons (ftpskit_common.x509.sha256_fingerprint)."""
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def write(self, directory: pathlib.Path, stem: str) -> tuple[pathlib.Path, pathlib.Path]:
        """``<stem>.crt`` (the certificate, then its chain) and ``<stem>.key`` (mode 0600)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(b"".join(_pem(c) for c in (self.cert, *self.chain)))
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


# --------------------------------------------------------------------------------------------
# a server CA with an intermediate, and the ftps_pki layout


class TestCA:
    """Root and intermediate CA; issues server certificates for 127.0.0.1/localhost."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "ftpsd test") -> None:
        self.root_key = make_key()
        self.root = ca_certificate(self.root_key, subject_name(f"{name} root CA"), path_length=1)
        self.inter_key = make_key()
        self.intermediate = ca_certificate(
            self.inter_key,
            subject_name(f"{name} intermediate CA"),
            issuer=Issued(self.root, self.root_key),
            path_length=0,
            days=1825,
            authority_key_id=True,
        )

    def issue(self, cn: str = "localhost", *, days: int = 30, expired: bool = False) -> Issued:
        now = _now()
        key = make_key()
        cert = leaf_certificate(
            key,
            subject_name(cn),
            issuer=Issued(self.intermediate, self.inter_key),
            sans=general_names(("DNS:localhost", "IP:127.0.0.1", "IP:::1")),
            not_before=now - dt.timedelta(days=10 if expired else 1),
            not_after=now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=days),
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


# --------------------------------------------------------------------------------------------
# one CA and server certificates of any key type and SAN set (the client tests)

TEST_ORG = "ftps-kit tests"


def make_ca(cn: str = "ftps-kit test CA", key_type: str = "p256") -> Issued:
    key = make_key(key_type)
    return Issued(ca_certificate(key, subject_name(cn, org=TEST_ORG)), key)


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
    now = _now()
    cert = leaf_certificate(
        key,
        subject or subject_name(cn, org=TEST_ORG),
        issuer=issuer,
        sans=general_names(sans),
        not_before=not_before or now - dt.timedelta(hours=1),
        not_after=not_after or now + dt.timedelta(days=90),
        serial=serial,
    )
    return Issued(cert, key)


# --------------------------------------------------------------------------------------------
# a client CA: person certificates and the CRL


class ClientCA:
    """A client-issuing CA (self-signed) with its CRL."""

    __test__ = False

    def __init__(self, name: str = "ftps-kit test client CA") -> None:
        self.key = make_key()
        self.name = subject_name(name)
        self.cert = ca_certificate(self.key, self.name)
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
    ) -> Issued:
        """A leaf with these SAN emails/URIs and CN(s), signed through ``intermediates`` CAs."""
        signer, chain = Issued(self.cert, self.key), []
        for index in range(intermediates):
            key = make_key()
            cert = ca_certificate(key, subject_name(f"intermediate {index}"), issuer=signer)
            chain.insert(0, cert)
            signer = Issued(cert, key)
        key = make_key()
        now = _now()
        cert = leaf_certificate(
            key,
            subject_name(*((cn,) if isinstance(cn, str) else cn)),
            issuer=signer,
            sans=[x509.RFC822Name(e) for e in email] + [x509.UniformResourceIdentifier(u) for u in uri],
            eku=eku,
            not_before=now - dt.timedelta(days=10 if expired else 1),
            not_after=now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=30),
            key_ids=False,
        )
        return Issued(cert, key, tuple(chain))

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

    def revoke(self, person: Issued) -> None:
        self.revoked.append(person.serial)

    def write(self, directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
        """``ca.pem`` and ``crl.pem`` (the CRL as the revocations stand now), atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, crl = directory / "ca.pem", directory / "crl.pem"
        ca.write_bytes(_pem(self.cert))
        tmp = directory / ".crl.pem.tmp"
        tmp.write_bytes(_pem(self.crl()))
        tmp.replace(crl)
        return ca, crl
