"""TLS material and policy: read certificate/key/chain once per load, build the SSL context.

The PKI keeps generations in directories and points ``current`` at one of them. The certificate's
directory is resolved with ``os.path.realpath()`` once per load and the key and chain are read
from that same directory (when they are configured next to the certificate), so a reload racing
with a ``current`` swap can never pair a new certificate with an old key. All files are read into
memory first and the context is built from the parsed objects.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL

from ftpsd.config import TLSConfig
from ftpskit_common.x509 import sha256_fingerprint

# Session tickets and the server-side cache must outlive long transfers: a client that opened its
# control connection hours ago still resumes on its next data connection.
SESSION_TIMEOUT = 86_400
SESSION_ID_CONTEXT = b"ftpsd"
_VERSIONS = {"TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}


class TLSMaterialError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TLSMaterial:
    directory: str
    cert: x509.Certificate
    key: object
    chain: tuple[x509.Certificate, ...]
    fingerprint: str  # SHA-256 in ftpskit_common.x509.sha256_fingerprint's format

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc


def _read(path: str, what: str, problems: list[str]) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        problems.append(f"tls.{what}: cannot read {path}: {exc.strerror or exc}")
        return None


def resolve_paths(tls: TLSConfig) -> tuple[str, str, str, str]:
    """(directory, cert, key, chain) with the certificate's directory resolved once."""
    cert_dir = os.path.dirname(tls.certfile)
    real_dir = os.path.realpath(cert_dir)

    def pin(path: str) -> str:
        if path and os.path.dirname(path) == cert_dir:
            return os.path.join(real_dir, os.path.basename(path))
        return os.path.realpath(path) if path else ""

    return real_dir, pin(tls.certfile), pin(tls.keyfile), pin(tls.chainfile)


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint in the kit's one format (lowercase hex, no colons)."""
    return sha256_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def load_material(tls: TLSConfig, now: datetime.datetime | None = None) -> TLSMaterial:
    """Read and check cert, key and chain; raises TLSMaterialError listing every problem."""
    problems: list[str] = []
    directory, cert_path, key_path, chain_path = resolve_paths(tls)
    cert_pem = _read(cert_path, "certfile", problems)
    key_pem = _read(key_path, "keyfile", problems)
    chain_pem = _read(chain_path, "chainfile", problems) if chain_path else b""
    cert = key = None
    chain: list[x509.Certificate] = []
    if cert_pem is not None:
        try:
            cert = x509.load_pem_x509_certificates(cert_pem)[0]
        except ValueError:
            problems.append(f"tls.certfile: {cert_path} holds no PEM certificate")
    if key_pem is not None:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            problems.append(f"tls.keyfile: {key_path} holds no usable unencrypted PEM private key ({exc})")
    if chain_pem:
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            problems.append(f"tls.chainfile: {chain_path} holds no PEM certificate")
    if cert is not None:
        now = now or datetime.datetime.now(datetime.UTC)
        if cert.not_valid_after_utc <= now:
            problems.append(
                f"tls.certfile: {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if cert.not_valid_before_utc > now:
            start = cert.not_valid_before_utc
            problems.append(f"tls.certfile: {cert_path} is not valid before {start:%Y-%m-%d %H:%M} UTC")
        if key is not None:
            pub = serialization.PublicFormat.SubjectPublicKeyInfo
            der = serialization.Encoding.DER
            if cert.public_key().public_bytes(der, pub) != key.public_key().public_bytes(der, pub):
                problems.append(f"tls.keyfile: {key_path} does not match the certificate {cert_path}")
    if problems or cert is None:
        raise TLSMaterialError(problems)
    return TLSMaterial(
        directory=directory, cert=cert, key=key, chain=tuple(chain), fingerprint=fingerprint(cert)
    )


def build_context(tls: TLSConfig, material: TLSMaterial) -> SSL.Context:
    """The server context: the configured policy plus the material (full chain served)."""
    try:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(_VERSIONS[tls.min_version])
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION if tls.tls13 else SSL.TLS1_2_VERSION)
        ctx.set_options(
            SSL.OP_NO_SSLv2
            | SSL.OP_NO_SSLv3
            | SSL.OP_NO_COMPRESSION
            | SSL.OP_NO_RENEGOTIATION
            | SSL.OP_CIPHER_SERVER_PREFERENCE
        )
        ctx.set_cipher_list(tls.ciphers.encode("ascii"))
        ctx.use_certificate(material.cert)
        ctx.use_privatekey(material.key)
        for extra in material.chain:
            if extra.fingerprint(hashes.SHA256()) != material.cert.fingerprint(hashes.SHA256()):
                ctx.add_extra_chain_cert(extra)
        ctx.check_privatekey()
        # Resumption on data connections: server-side cache (TLS 1.2 session ids) and tickets
        # (TLS 1.3, and TLS 1.2 clients that ask); both bound to this context, so after a reload
        # in-flight sessions keep resuming against the context they started with.
        ctx.set_session_id(SESSION_ID_CONTEXT)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        ctx.set_timeout(SESSION_TIMEOUT)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    except SSL.Error as exc:
        raise TLSMaterialError([f"tls: OpenSSL rejected the configuration: {exc}"]) from None
    return ctx


def session_reused(conn: SSL.Connection) -> bool:
    """Whether the handshake on ``conn`` resumed an earlier session.

    pyOpenSSL (26.x) has no public accessor; this calls OpenSSL's ``SSL_session_reused`` through
    pyOpenSSL's cffi binding (``OpenSSL._util.lib``), which is why src/pyproject.toml pins
    pyOpenSSL below 27. ``tests/integration`` prove it both ways (reusing and non-reusing clients).
    """
    from OpenSSL._util import lib

    return bool(lib.SSL_session_reused(conn._ssl))
