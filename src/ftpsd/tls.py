"""TLS material and policy: read certificate/key/chain once per load, build SSL contexts from it
(one per control connection, shared with its data connections: see :class:`ContextFactory`).

The PKI keeps generations in directories and points ``current`` at one of them. The certificate's
directory is resolved with ``os.path.realpath()`` once per load and the key and chain are read
from that same directory (when they are configured next to the certificate), so a reload racing
with a ``current`` swap can never pair a new certificate with an old key. All files are read into
memory first and the context is built from the parsed objects.
"""

from __future__ import annotations

import datetime
import os
import stat
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL, crypto
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from ftpsd.clientcert import ClientTrust
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


def key_file_problem(st: os.stat_result, path: str) -> str | None:
    """Why a private key file with this ``stat`` must not be used, or None.

    Needed: read by the daemon only. The owner is root or the user checking (the daemon's user
    when the daemon checks); nothing for others; the group may read (0640: ftps_pki deploys
    ``root:<daemon's group> 0640``) but never write; a process that is not root must be in
    that group for group-read to be what lets it read.
    """
    mode = stat.S_IMODE(st.st_mode)
    euid = os.geteuid()
    needed = "use mode 0600 (owner root or the daemon's user) or 0640 with the daemon's group"
    if st.st_uid not in (0, euid):
        return f"tls.keyfile: {path} is owned by uid {st.st_uid}, not root or uid {euid}; {needed}"
    if mode & 0o037 or (mode & 0o040 and euid != 0 and st.st_gid not in (os.getegid(), *os.getgroups())):
        return f"tls.keyfile: {path} has mode {mode:04o}, readable or writable beyond the daemon; {needed}"
    return None


def _read_key(path: str, problems: list[str]) -> bytes | None:
    """Read the key, checking the mode and owner of the very file read (fstat, no race)."""
    try:
        with open(path, "rb") as handle:
            problem = key_file_problem(os.fstat(handle.fileno()), path)
            if problem:
                problems.append(problem)
                return None
            return handle.read()
    except OSError as exc:
        problems.append(f"tls.keyfile: cannot read {path}: {exc.strerror or exc}")
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
    key_pem = _read_key(key_path, problems)
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


class ContextFactory:
    """The configured policy and material, ready to build one SSL context per control connection.

    Why one context per connection: an OpenSSL server context owns its session cache and its
    session-ticket keys, so a session can only ever be resumed on a connection made from the
    context that issued it. Giving each control connection its own context, and its data
    connections that same context, makes "this data connection resumes *its own* control
    connection's session" a property of OpenSSL's lookup rather than a check of ours (vsftpd gets
    the same from one process per session). See docs/ftpsd.md, "Binding of data connections".

    The material is converted to OpenSSL objects once per load; each context then only takes
    references to them (measured: ~0.16 ms of CPU per context, a quarter of a TLS 1.3 handshake).
    """

    def __init__(self, tls: TLSConfig, material: TLSMaterial, client: ClientTrust | None = None) -> None:
        self.tls = tls
        self.material = material
        self.client = client  # the client CA and CRL of this load (None: client certificates off)
        leaf = material.cert.fingerprint(hashes.SHA256())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self._cert = crypto.X509.from_cryptography(material.cert)
            self._key = crypto.PKey.from_cryptography_key(material.key)
            self._chain = tuple(
                crypto.X509.from_cryptography(extra)
                for extra in material.chain
                if extra.fingerprint(hashes.SHA256()) != leaf
            )
        try:
            self.new_context().check_privatekey()  # fail fast, before any session needs one
        except SSL.Error as exc:
            raise TLSMaterialError([f"tls: OpenSSL rejected the configuration: {exc}"]) from None

    def new_context(self, listener: str = "explicit") -> SSL.Context:
        """A fresh server context: its own session cache and ticket keys (see the class doc);
        on a ``listener`` ("explicit", "implicit") that asks for client certificates, it asks."""
        tls = self.tls
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
        # References to the objects converted once per load: pyOpenSSL's use_certificate() would
        # convert from `cryptography` again on every call (measured: 0.39 ms instead of 0.16 ms).
        raw = ctx._context
        if _lib.SSL_CTX_use_certificate(raw, self._cert._x509) != 1:
            _raise_current_error()
        if _lib.SSL_CTX_use_PrivateKey(raw, self._key._pkey) != 1:
            _raise_current_error()
        for extra in self._chain:
            _lib.X509_up_ref(extra._x509)  # the context takes ownership of this reference
            if _lib.SSL_CTX_add_extra_chain_cert(raw, extra._x509) != 1:
                _lib.X509_free(extra._x509)
                _raise_current_error()
        # Resumption on data connections: server-side cache (TLS 1.2 session ids) and tickets
        # (TLS 1.3, and TLS 1.2 clients that ask); both belong to this context only. After a
        # reload, sessions in flight keep resuming against the context they started with.
        ctx.set_session_id(SESSION_ID_CONTEXT)
        ctx.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
        ctx.set_timeout(SESSION_TIMEOUT)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        if self.client is not None:
            self.client.configure(ctx, listener)
        return ctx


def build_context(tls: TLSConfig, material: TLSMaterial) -> SSL.Context:
    """One server context with the configured policy and material (full chain served)."""
    return ContextFactory(tls, material).new_context()


def _raise_current_error() -> None:
    from OpenSSL._util import exception_from_error_queue

    exception_from_error_queue(SSL.Error)


# -- after the control handshake: the context serves only its own data connections -------------


@_ffi.callback("int(SSL *, int *, void *)")
def _no_ticket_on_data(ssl, alert, arg) -> int:
    # Runs while the ClientHello is processed, after a presented ticket has been decrypted and
    # before OpenSSL decides whether to send new ones: setting SSL_OP_NO_TICKET here makes it
    # send none (OpenSSL's final_server_name() drops the expected ticket when a servername
    # callback turns tickets off). Returning SSL_TLSEXT_ERR_OK is required for that.
    _lib.SSL_set_options(ssl, _lib.SSL_OP_NO_TICKET)
    return _lib.SSL_TLSEXT_ERR_OK


def seal_control_context(ctx: SSL.Context) -> None:
    """Called once the control connection's handshake is complete: every later handshake on
    ``ctx`` is a data connection (renegotiation is refused), and those get no session tickets.

    A ticket sent on a data connection is something the client must read before it closes; lftp
    (GnuTLS) does not, so its kernel answers the unread ticket with a reset that destroys the
    upload's close_notify (426). The control connection's tickets are all a client needs.
    """
    _lib.SSL_CTX_set_tlsext_servername_callback(ctx._context, _no_ticket_on_data)


class _Refusal:
    __slots__ = ("refused",)

    def __init__(self) -> None:
        self.refused = False


class ResumptionGate:
    """Makes a data connection's handshake fail unless it resumes a session of its context.

    OpenSSL calls the certificate callback only for full handshakes (a resumption needs no
    certificate), before the server has sent anything but the alert; refusing there means a
    non-resuming client gets no ServerHello, no session id and no ticket, so it cannot obtain a
    session of this context to resume later ("minting" one through a refused data connection).
    The owner keeps the gate as long as the connection (the callback's argument points into it).
    """

    __slots__ = ("_handle", "_state")

    def __init__(self, conn: SSL.Connection) -> None:
        self._state = _Refusal()
        self._handle = _ffi.new_handle(self._state)
        _lib.SSL_set_cert_cb(conn._ssl, _refuse_full_handshake, self._handle)

    @property
    def refused(self) -> bool:
        """True once a full (non-resuming) handshake was refused on the connection."""
        return self._state.refused


@_ffi.callback("int(SSL *, void *)")
def _refuse_full_handshake(ssl, arg) -> int:
    # An exception here makes cffi return 0, which refuses too (fail closed).
    if _lib.SSL_session_reused(ssl):
        return 1  # not reached with OpenSSL 3 and 4 (no certificate callback on resumption)
    _ffi.from_handle(arg).refused = True
    return 0  # fail the handshake: OpenSSL sends an alert and nothing else


def session_reused(conn: SSL.Connection) -> bool:
    """Whether the handshake on ``conn`` resumed an earlier session.

    pyOpenSSL (26.x) has no public accessor; this calls OpenSSL's ``SSL_session_reused`` through
    pyOpenSSL's cffi binding (``OpenSSL._util.lib``), which is why src/pyproject.toml pins
    pyOpenSSL below 27. ``tests/integration`` prove it both ways (reusing and non-reusing clients).
    """
    return bool(_lib.SSL_session_reused(conn._ssl))


def describe_ssl_error(err: Exception) -> str:
    """One short line for a TLS failure a peer caused (a bad record, an alert, a reset): the
    reasons OpenSSL gave, or the system error, never a traceback (ftpsd logs these as the end of
    a session, not as a bug)."""
    if isinstance(err, SSL.SysCallError) and len(err.args) == 2:
        code, text = err.args
        if isinstance(code, int) and code > 0:
            return os.strerror(code)
        return str(text) or "connection closed"
    reasons = []
    if err.args and isinstance(err.args[0], list):
        reasons = [str(entry[2]) for entry in err.args[0] if isinstance(entry, tuple) and len(entry) >= 3]
    return "; ".join(reason for reason in reasons if reason) or "connection broken"


def last_ssl_error(conn: SSL.Connection, result: int) -> str:
    """What a failed ``SSL_write``/``SSL_read`` (returning ``result``) on ``conn`` met, as
    :func:`describe_ssl_error` puts it; call it before the error queue is cleared."""
    code = _lib.SSL_get_error(conn._ssl, result)
    if code == _lib.SSL_ERROR_SYSCALL:
        errno_ = _ffi.errno
        return os.strerror(errno_) if errno_ else "connection closed"
    if code == _lib.SSL_ERROR_ZERO_RETURN:
        return "TLS close_notify received"
    error = _lib.ERR_peek_last_error()
    if error:
        reason = _lib.ERR_reason_error_string(error)
        if reason != _ffi.NULL:
            return _ffi.string(reason).decode("ascii", "replace")
    return "connection broken"
