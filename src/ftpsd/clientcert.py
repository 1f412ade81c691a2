"""Client certificates: the trusted client CA and its CRL, verification, mapping to one user.

Policy (docs/ftpsd.md, "Client certificates"):

* A client certificate is checked against the client CA file only (``tls.client_ca_file``, a
  CA kept apart from the server CA), never against the system's trust store or the server's
  chain; its revocation is always checked against ``tls.client_crl_file``: the leaf's issuer
  must have a current CRL there (so a leaf must be issued by a CA of ``client_ca_file``, and a
  CRL past its next update refuses every certificate of its CA); the leaf must carry the
  clientAuth extended key usage; chains longer than :data:`MAX_DEPTH` are refused.
* The TLS handshake accepts any certificate (so that the FTP session can say *why* it is refused:
  a TLS alert tells a person nothing); verification happens once, right after the control
  connection's handshake (:meth:`ClientTrust.verify`), and a login decides with its verdict.
* A verified certificate maps to a user only through the exact, case-sensitive equality of one
  value of the configured field (``tls.client_cert_field``: SAN email, SAN URI or subject CN) with
  a user's declared ``certificate_identity``. Values that match two users, or none, map to nobody.
  A user name is never taken from a certificate.

Everything here is read once per load (start, reload): a reload builds a new :class:`ClientTrust`
with the CRL as it is then, which new sessions use; sessions in flight keep theirs.
"""

from __future__ import annotations

import dataclasses
import datetime
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from ftpsd.config import TLSConfig
from ftpskit_common.passwd import User
from ftpskit_common.x509 import sha256_fingerprint

# Certificates in a verified chain, the leaf and the trust anchor included.
MAX_DEPTH = 4
# CA certificates accepted in client_ca_file (a CA rollover holds old and new).
MAX_CAS = 8
# Values of the mapped field one certificate may carry; more is refused as ambiguous.
MAX_VALUES = 16

# Why a certificate does not log anybody in: the login's 530 text and the counter's label
# (ftpsd.counters.CLIENT_CERT_RESULTS). handle_auth_failed capitalises only the first letter
# and lowercases the rest, so the texts are written that way.
REFUSALS = {
    "none": "Client certificate required; none was presented.",
    "untrusted": "Client certificate not issued by the client certificate authority of this server.",
    "revoked": "Client certificate revoked.",
    "expired": "Client certificate expired or not yet valid.",
    "crl": "Client certificate revocation status unknown (no current revocation list of its issuer).",
    "no_client_auth": "Client certificate not made for client authentication (no clientauth usage).",
    "chain_too_long": f"Client certificate chain too long (at most {MAX_DEPTH} certificates).",
    "no_user": "Client certificate maps to no user.",
    "ambiguous": "Client certificate maps to more than one user.",
    "not_allowed": "This user may not log in with a certificate; send the password.",
    "mismatch": "Client certificate belongs to another user.",
}

# OpenSSL's X509_V_ERR_* codes that have a reason of their own; every other error is "untrusted".
_ERRORS = {
    9: "expired",  # X509_V_ERR_CERT_NOT_YET_VALID
    10: "expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    23: "revoked",  # X509_V_ERR_CERT_REVOKED
    3: "crl",  # X509_V_ERR_UNABLE_TO_GET_CRL
    11: "crl",  # X509_V_ERR_CRL_NOT_YET_VALID
    12: "crl",  # X509_V_ERR_CRL_HAS_EXPIRED
    22: "chain_too_long",  # X509_V_ERR_CERT_CHAIN_TOO_LONG
    26: "no_client_auth",  # X509_V_ERR_INVALID_PURPOSE
}


class ClientTrustError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Verdict:
    """What the control connection's client certificate is worth, decided after its handshake."""

    status: str  # "ok" or a key of REFUSALS
    fingerprint: str = ""  # SHA-256 of the leaf (ftpskit_common.x509's format), "" without one
    der: bytes | None = None  # the leaf, for the data connections' comparison
    identities: tuple[str, ...] = ()  # the configured field's values (a verified leaf only)
    subject: str = ""  # for the log (escaped by the log formatter)
    chain: tuple[bytes, ...] = ()  # the intermediates the client sent (DER), to judge it again

    @property
    def ok(self) -> bool:
        return self.status == "ok"


NO_CERTIFICATE = Verdict("none")


def field_values(cert: x509.Certificate, field_name: str) -> tuple[str, ...]:
    """Every value of ``field_name`` (san_email, san_uri, cn) in ``cert``, as written in it."""
    if field_name == "cn":
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    kind = x509.RFC822Name if field_name == "san_email" else x509.UniformResourceIdentifier
    return tuple(san.get_values_for_type(kind))


def map_identities(identities: tuple[str, ...], by_identity: dict[str, str]) -> tuple[str, str]:
    """(status, user): ("ok", the one user whose certificate_identity equals a value exactly),
    ("ambiguous", "") when values name two users (or the certificate carries too many values),
    ("no_user", "") when none matches."""
    if len(identities) > MAX_VALUES:
        return "ambiguous", ""
    users = {by_identity[value] for value in identities if value in by_identity}
    if len(users) > 1:
        return "ambiguous", ""
    if not users:
        return "no_user", ""
    return "ok", users.pop()


def has_client_auth(cert: x509.Certificate) -> bool:
    """The leaf names clientAuth in its extended key usage (an absent extension is not enough)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in eku


def _pem_blocks(data: bytes, label: bytes) -> list[bytes]:
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    blocks, start = [], data.find(begin)
    while start != -1 and len(blocks) <= MAX_CAS:
        stop = data.find(end, start)
        if stop == -1:
            break
        blocks.append(data[start : stop + len(end)])
        start = data.find(begin, stop)
    return blocks


def _read(path: str, key: str, problems: list[str]) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(4 * 1024 * 1024)
    except OSError as exc:
        problems.append(f"tls.{key}: cannot read {path}: {exc.strerror or exc}")
        return None


def _load_cas(path: str, problems: list[str], now: datetime.datetime) -> list[x509.Certificate]:
    data = _read(path, "client_ca_file", problems)
    if data is None:
        return []
    blocks = _pem_blocks(data, b"CERTIFICATE")
    if not blocks:
        problems.append(f"tls.client_ca_file: {path} holds no PEM certificate")
        return []
    if len(blocks) > MAX_CAS:
        problems.append(f"tls.client_ca_file: {path} holds more than {MAX_CAS} certificates")
        return []
    cas = []
    for index, block in enumerate(blocks):
        try:
            ca = x509.load_pem_x509_certificate(block)
        except ValueError:
            problems.append(f"tls.client_ca_file: {path}: certificate {index + 1} is not valid PEM")
            continue
        try:
            constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = constraints.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            subject = ca.subject.rfc4514_string()
            problems.append(f"tls.client_ca_file: {path}: certificate {index + 1} ({subject}) is not a CA")
            continue
        if ca.not_valid_after_utc <= now:
            problems.append(
                f"tls.client_ca_file: {path}: {ca.subject.rfc4514_string()} expired on"
                f" {ca.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
            continue
        cas.append(ca)
    return cas


def _load_crls(
    path: str, cas: list[x509.Certificate], problems: list[str]
) -> list[x509.CertificateRevocationList]:
    data = _read(path, "client_crl_file", problems)
    if data is None:
        return []
    blocks = _pem_blocks(data, b"X509 CRL")
    if not blocks:
        problems.append(f"tls.client_crl_file: {path} holds no PEM CRL")
        return []
    crls = []
    for index, block in enumerate(blocks[:MAX_CAS]):
        try:
            crl = x509.load_pem_x509_crl(block)
        except ValueError:
            problems.append(f"tls.client_crl_file: {path}: CRL {index + 1} is not valid PEM")
            continue
        issuers = [ca for ca in cas if ca.subject == crl.issuer]
        if cas and not any(crl.is_signature_valid(ca.public_key()) for ca in issuers):
            problems.append(
                f"tls.client_crl_file: {path}: CRL {index + 1} (issuer {crl.issuer.rfc4514_string()})"
                " is not signed by a CA of client_ca_file"
            )
            continue
        crls.append(crl)
    for ca in cas:
        if not any(crl.issuer == ca.subject for crl in crls):
            problems.append(
                f"tls.client_crl_file: {path} holds no CRL of {ca.subject.rfc4514_string()}"
                " (its certificates would all be refused)"
            )
    return crls


@dataclass
class ClientTrust:
    """The client CA(s), their CRLs and the mapping policy of one load."""

    ca_file: str
    crl_file: str
    cas: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]
    field: str
    modes: dict[str, str]  # listener ("explicit", "implicit") -> off | request | require
    store: crypto.X509Store = dataclasses.field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        store = crypto.X509Store()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # Converted once per load: every context names them in its CertificateRequest.
            self._ca_objects = tuple(crypto.X509.from_cryptography(ca) for ca in self.cas)
            for ca in self._ca_objects:
                store.add_cert(ca)
            for crl in self.crls:
                store.add_crl(crl)
        # The leaf's revocation is always checked (a CA without a CRL refuses its certificates).
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
        _lib.X509_STORE_set_purpose(store._store, _lib.X509_PURPOSE_SSL_CLIENT)
        self.store = store

    def stale(self, now: datetime.datetime | None = None) -> list[str]:
        """CRLs past their next update (every certificate of their CA is refused until a fresh
        CRL is deployed and the daemon reloaded): one warning each."""
        now = now or datetime.datetime.now(datetime.UTC)
        return [
            f"tls.client_crl_file: the CRL of {crl.issuer.rfc4514_string()} was due for renewal on"
            f" {crl.next_update_utc:%Y-%m-%d %H:%M} UTC: certificates of that CA are refused until a"
            " fresh CRL is deployed"
            for crl in self.crls
            if crl.next_update_utc is not None and crl.next_update_utc <= now
        ]

    def mode(self, listener: str) -> str:
        return self.modes.get(listener, "off")

    def configure(self, ctx: SSL.Context, listener: str) -> None:
        """Make ``ctx`` ask for a client certificate (when the listener does) and accept any in the
        handshake: :meth:`verify` decides afterwards, so that a refusal gets an FTP reply."""
        if self.mode(listener) == "off":
            return
        raw = ctx._context
        _lib.X509_STORE_up_ref(self.store._store)  # the context takes this reference
        _lib.SSL_CTX_set_cert_store(raw, self.store._store)
        _lib.SSL_CTX_set_verify(raw, _lib.SSL_VERIFY_PEER, _accept_in_handshake)
        _lib.SSL_CTX_set_verify_depth(raw, MAX_DEPTH)
        for ca in self._ca_objects:
            ctx.add_client_ca(ca)

    def verify(self, conn: SSL.Connection) -> Verdict:
        """The verdict on the certificate the peer of ``conn`` presented (after its handshake)."""
        leaf = conn.get_peer_certificate()
        if leaf is None:
            return NO_CERTIFICATE
        mine = leaf.to_cryptography()
        # (The server side's peer chain holds the intermediates only; the leaf is skipped anyway.)
        chain = [c for c in (conn.get_peer_cert_chain(as_cryptography=True) or []) if c != mine]
        return self.verify_chain(mine, chain)

    def verify_again(self, verdict: Verdict) -> Verdict:
        """The verdict on the certificate ``verdict`` was about, under this trust (a reload's CAs
        and CRLs): the same leaf and intermediates judged again. No certificate stays none."""
        if not verdict.der:
            return NO_CERTIFICATE
        try:
            leaf = x509.load_der_x509_certificate(verdict.der)
            chain = [x509.load_der_x509_certificate(der) for der in verdict.chain]
        except ValueError:
            return Verdict("untrusted")
        return self.verify_chain(leaf, chain)

    def verify_chain(self, leaf: x509.Certificate, chain: list[x509.Certificate]) -> Verdict:
        """The verdict on ``leaf`` with the intermediates the client sent (``chain``)."""
        der = leaf.public_bytes(serialization.Encoding.DER)
        subject = _subject(leaf)
        base = {
            "fingerprint": sha256_fingerprint(der),
            "der": der,
            "subject": subject,
            "chain": tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
        }
        if len(chain) >= MAX_DEPTH:
            return Verdict("chain_too_long", **base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            store_ctx = crypto.X509StoreContext(
                self.store,
                crypto.X509.from_cryptography(leaf),
                [crypto.X509.from_cryptography(c) for c in chain],
            )
        try:
            verified = store_ctx.get_verified_chain()
        except crypto.X509StoreContextError as exc:
            code = exc.errors[0] if exc.errors else -1
            return Verdict(_ERRORS.get(code, "untrusted"), **base)
        if len(verified) > MAX_DEPTH:
            return Verdict("chain_too_long", **base)
        if not has_client_auth(leaf):
            return Verdict("no_client_auth", **base)
        try:
            identities = field_values(leaf, self.field)
        except ValueError:  # a field `cryptography` cannot decode maps to nobody
            identities = ()
        return Verdict("ok", identities=identities, **base)


def _subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return "(undecodable subject)"


@_ffi.callback("int(int, X509_STORE_CTX *)")
def _accept_in_handshake(ok, store_ctx) -> int:
    # Every presented certificate completes the handshake; ClientTrust.verify judges it after.
    return 1


def load_client_trust(tls: TLSConfig, now: datetime.datetime | None = None) -> ClientTrust | None:
    """The client trust of ``tls`` (None when client_ca_file is ""); raises ClientTrustError
    listing every problem of the CA and CRL files."""
    if not tls.client_ca_file:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    problems: list[str] = []
    cas = _load_cas(tls.client_ca_file, problems, now)
    crls = _load_crls(tls.client_crl_file, cas, problems) if tls.client_crl_file else []
    if problems or not cas:
        raise ClientTrustError(problems or [f"tls.client_ca_file: {tls.client_ca_file} holds no usable CA"])
    return ClientTrust(
        ca_file=tls.client_ca_file,
        crl_file=tls.client_crl_file,
        cas=tuple(cas),
        crls=tuple(crls),
        field=tls.client_cert_field,
        modes={"explicit": tls.client_cert_explicit, "implicit": tls.client_cert_implicit},
    )


def decide(  # noqa: PLR0911 - one return per rule, in the order they apply
    *,
    required: bool,
    verdict: Verdict | None,
    account: User | None,
    name: str,
    by_identity: dict[str, str],
    password_ok: bool,
) -> tuple[bool, str | None]:
    """Whether a login as ``name`` succeeds, and the client certificate's part in it.

    ``verdict``: the session's (None: this listener asks for no certificate); ``account``: the
    user ``name`` (None: no such user); ``password_ok``: the password matched (False when none
    was sent). Returns (ok, reason): reason "ok" when the certificate logged the user in, a key
    of :data:`REFUSALS` when it is why the login is refused, None when no certificate mattered
    (a password login, a wrong password, an unknown user).
    """
    presented = verdict if verdict is not None else NO_CERTIFICATE
    if required and not presented.ok:
        return False, presented.status  # this listener lets nobody in without a valid certificate
    if account is None:
        return False, None
    if account.auth == "password":
        if password_ok:
            return True, None
        if presented.ok and map_identities(presented.identities, by_identity) == ("ok", name):
            return False, "not_allowed"  # a certificate alone never logs a password account in
        return False, None
    if not presented.ok:
        return False, presented.status
    status, user = map_identities(presented.identities, by_identity)
    if status != "ok":
        return False, status
    if user != name:
        return False, "mismatch"
    if account.auth == "certificate":
        return True, "ok"
    return (True, "ok") if password_ok else (False, None)
