"""Client certificates: the client CA in the kit's store, issuing from CSRs, revocation and the CRL.

The client CA is a separate CA beside the server CA (``<store>/client-ca/``, docs/client-certificates.md):
a certificate the server CA signed can never log anybody in, and revoking people never touches the
servers' chain. It is the same :class:`CertificateAuthority` (``ca.pem`` + ``ca.key``, made by the
``ftps_pki_ca`` module); this file adds what only client certificates need::

    <store>/client-ca/ca.pem, ca.key   the client CA (key 0600, never leaves the key manager)
    <store>/client-ca/issued/<serial>.pem   every certificate it issued (the report reads them)
    <store>/client-ca/revoked.json     {serial hex: {identity, fingerprint_sha256, revoked_at}}
    <store>/client-ca/crl.pem          the CRL servers check (regenerated when stale or changed)

Keys of client certificates are made where they are used (a managed client host, a person's
machine); only CSRs reach the key manager, and :func:`check_client_csr` refuses a bad one before
anything is written.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.atomicfile import atomic_write
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.certreq import (
    check_identity as _check_identity,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import normalize_fingerprint
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CertificateAuthority, issue_leaf
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    cert_to_pem,
    certificate_facts,
    csr_to_pem,
    load_certificate,
    load_csr,
    signed_by,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    check_key_type,
    generate_private_key,
    key_to_pem,
    key_type_of,
    load_private_key,
    same_public_key,
    signing_hash,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    HAS_CRYPTOGRAPHY,
    PKIError,
    cert_not_after,
    iso_utc,
    read_parsed,
    utcnow,
)

if HAS_CRYPTOGRAPHY:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ISSUED_DIR, REVOKED_FILE, CRL_FILE = "issued", "revoked.json", "crl.pem"

# The client CA's directory, the option of every module that reads or signs with the client CA;
# documented by the ftpskit.ftps.client_ca doc fragment.
CLIENT_CA_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "path": {"type": "path", "required": True},
}


def check_identity(identity: str) -> str:
    """The identity a client certificate names (its SAN e-mail), or PKIError saying what is wrong.

    The one rule, shared with ``ftps-cert`` (ftpskit_common.certreq).
    """
    try:
        return _check_identity(identity if isinstance(identity, str) else "")
    except ValueError as exc:
        raise PKIError(str(exc)) from exc


def check_client_csr(csr_pem: str, identity: str, what: str = "CSR") -> Any:
    """The CSR, checked: valid signature, a supported key, not asking for a CA, naming ``identity`` only.

    The certificate's content is decided here, not by the CSR (the CSR contributes its public key);
    but a CSR that names someone else or asks for a CA is a mistake or an attack and is refused.
    """
    check_identity(identity)
    csr = load_csr(csr_pem, what)
    try:
        check_key_type(key_type_of(csr.public_key()))
    except PKIError as exc:
        raise PKIError(f"{what}: the key is too weak or of an unsupported type ({exc})") from exc
    named: list[str] = []
    for ext in csr.extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            raise PKIError(f"{what} asks for a CA certificate (basicConstraints CA:TRUE): refused")
        if isinstance(value, x509.SubjectAlternativeName):
            for name in value:
                if not isinstance(name, x509.RFC822Name):
                    raise PKIError(
                        f"{what} names {name.value!r}: a client certificate names one e-mail address only"
                    )
                named.append(name.value)
    cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if any(v != identity for v in named + cns) or len(cns) > 1 or len(named) > 1:
        raise PKIError(f"{what} names {sorted(set(named + cns))}, not exactly {identity!r}: refused")
    if not named and not cns:
        raise PKIError(f"{what} names nobody: make it with `ftps-cert request --identity {identity}`")
    return csr


def issue_client_certificate(
    ca: CertificateAuthority, csr: Any, identity: str, validity_days: int, now: _dt.datetime | None = None
) -> Any:
    """A client certificate for ``identity``: SAN e-mail, clientAuth EKU only, not a CA, bounded by the CA."""
    if ca.cert is None:
        raise PKIError("client CA not loaded")
    if validity_days < 1:
        raise PKIError(f"validity must be at least 1 day, not {validity_days}")
    now = now or utcnow()
    not_after = min(now + _dt.timedelta(days=validity_days), cert_not_after(ca.cert))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)] if len(identity) <= 64 else [])
    return issue_leaf(
        csr.public_key(),
        subject,
        [x509.RFC822Name(identity)],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        issuer_name=ca.cert.subject,
        issuer_key=ca.key,
        not_after=not_after,
        now=now,
        # RFC 5280 4.2.1.6: with an empty subject the SAN is critical
        san_critical=len(subject) == 0,
    )


def client_identity(cert: Any) -> str:
    """The e-mail SAN a client certificate names ('' if none)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    emails = san.get_values_for_type(x509.RFC822Name)
    return emails[0] if len(emails) == 1 else ""


def is_client_certificate(cert: Any) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


# --------------------------------------------------------------------------------------------
# the CRL


def build_crl(
    ca: CertificateAuthority,
    revoked: dict[str, dict[str, Any]],
    number: int,
    next_update_days: int,
    now: _dt.datetime | None = None,
) -> Any:
    """A CRL of the client CA listing every serial in ``revoked`` (hex → record with ``revoked_at``)."""
    if ca.cert is None:
        raise PKIError("client CA not loaded")
    if next_update_days < 1:
        raise PKIError(f"the CRL's next update must be at least 1 day ahead, not {next_update_days}")
    now = now or utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _dt.timedelta(minutes=5))
        .next_update(now + _dt.timedelta(days=next_update_days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for serial_hex, record in sorted(revoked.items()):
        when = _dt.datetime.strptime(record["revoked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(serial_hex, 16)).revocation_date(when).build()
        )
    return builder.sign(ca.key, signing_hash(ca.key))


def crl_next_update_time(crl: Any) -> _dt.datetime | None:
    value = getattr(crl, "next_update_utc", None)
    if value is not None:
        return value
    return crl.next_update.replace(tzinfo=_dt.UTC) if crl.next_update is not None else None


def crl_number(crl: Any) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def crl_reasons(
    crl: Any,
    ca: CertificateAuthority,
    revoked: dict[str, dict[str, Any]],
    renew_before_days: int,
    now: _dt.datetime,
) -> list[str]:
    """Why the CRL on disk must be regenerated (empty: it is current)."""
    if crl is None:
        return ["no CRL yet"]
    if crl.issuer != ca.cert.subject or not crl.is_signature_valid(ca.cert.public_key()):
        return ["the CRL was not signed by this client CA"]
    reasons = []
    listed = {format(entry.serial_number, "x") for entry in crl}
    if listed != set(revoked):
        reasons.append(f"revocations changed ({len(listed)} listed, {len(revoked)} recorded)")
    next_update = crl_next_update_time(crl)
    if next_update is None or next_update - now <= _dt.timedelta(days=renew_before_days):
        reasons.append(
            f"the CRL's next update ({iso_utc(next_update) if next_update else 'none'}) "
            f"is within {renew_before_days} days"
        )
    return reasons


# --------------------------------------------------------------------------------------------
# the client CA's records in the store


class ClientCA:
    """The client CA directory in the kit's store: the CA, what it issued, what is revoked, the CRL."""

    def __init__(self, directory: str, passphrase: str = "") -> None:
        self.directory = directory
        self.passphrase = passphrase
        self.ca = CertificateAuthority(directory)
        self.issued_dir = os.path.join(directory, ISSUED_DIR)
        self.revoked_path = os.path.join(directory, REVOKED_FILE)
        self.crl_path = os.path.join(directory, CRL_FILE)

    def load(self) -> ClientCA:
        self.ca.load(self.passphrase)
        return self

    # issued ---------------------------------------------------------------------------------
    def issued(self) -> list[Any]:
        if not os.path.isdir(self.issued_dir):
            return []
        out = []
        for name in sorted(os.listdir(self.issued_dir)):
            if name.endswith(".pem"):
                with open(os.path.join(self.issued_dir, name), "rb") as handle:
                    out.append(load_certificate(handle.read(), f"issued certificate {name}"))
        return out

    def record_issued(self, cert: Any) -> None:
        os.makedirs(self.issued_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.issued_dir, f"{format(cert.serial_number, 'x')}.pem")
        atomic_write(path, cert_to_pem(cert).encode(), 0o644)

    def sign(self, csr_pem: str, identity: str, validity_days: int, what: str) -> str:
        csr = check_client_csr(csr_pem, identity, what)
        cert = issue_client_certificate(self.ca, csr, identity, validity_days)
        self.record_issued(cert)
        return cert_to_pem(cert)

    # revocation -----------------------------------------------------------------------------
    def revoked(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.revoked_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PKIError(f"{self.revoked_path} cannot be read ({exc}): restore it from a backup") from exc
        if not isinstance(data, dict):
            raise PKIError(f"{self.revoked_path} is not a JSON object: restore it from a backup")
        return data

    def select(self, identity: str = "", serial: str = "", fingerprint: str = "") -> list[Any]:
        """The issued certificates a revocation names; PKIError when it names none."""
        given = [
            k for k, v in (("identity", identity), ("serial", serial), ("fingerprint", fingerprint)) if v
        ]
        if len(given) != 1:
            raise PKIError("name exactly one of identity, serial or fingerprint to revoke")
        certs = self.issued()
        if identity:
            chosen = [c for c in certs if client_identity(c) == identity]
        elif serial:
            wanted = serial.lower().replace(":", "").lstrip("0") or "0"
            chosen = [c for c in certs if format(c.serial_number, "x") == wanted]
        else:
            try:
                wanted = normalize_fingerprint(fingerprint)
            except ValueError as exc:
                raise PKIError(str(exc)) from exc
            chosen = [c for c in certs if certificate_facts(c)["fingerprint_sha256"] == wanted]
        if not chosen:
            raise PKIError(
                f"no certificate issued by the client CA in {self.directory} has {given[0]} "
                f"{(identity or serial or fingerprint)!r}: "
                "nothing revoked (playbooks/report.yml lists the issued ones)"
            )
        return chosen

    def revoke(
        self, certs: list[Any], now: _dt.datetime | None = None, check_mode: bool = False
    ) -> list[str]:
        """Record ``certs`` as revoked; return the serials newly revoked (already revoked ones stay)."""
        now = now or utcnow()
        records = self.revoked()
        new = []
        for cert in certs:
            serial = format(cert.serial_number, "x")
            if serial in records:
                continue
            records[serial] = {
                "identity": client_identity(cert),
                "fingerprint_sha256": certificate_facts(cert)["fingerprint_sha256"],
                "not_after": iso_utc(cert_not_after(cert)),
                "revoked_at": iso_utc(now),
            }
            new.append(serial)
        if new and not check_mode:
            atomic_write(
                self.revoked_path, (json.dumps(records, indent=2, sort_keys=True) + "\n").encode(), 0o600
            )
        return new

    # the CRL --------------------------------------------------------------------------------
    def current_crl(self) -> Any:
        try:
            with open(self.crl_path, "rb") as handle:
                return x509.load_pem_x509_crl(handle.read())
        except (OSError, ValueError):
            return None

    def ensure_crl(
        self,
        next_update_days: int,
        renew_before_days: int,
        now: _dt.datetime | None = None,
        check_mode: bool = False,
    ) -> dict[str, Any]:
        """Regenerate the CRL when stale, foreign or out of date with the records; return it and why."""
        if renew_before_days >= next_update_days:
            raise PKIError(
                f"the CRL renewal window ({renew_before_days} days) must be shorter than its validity "
                f"({next_update_days} days), otherwise every run regenerates it"
            )
        now = now or utcnow()
        revoked = self.revoked()
        crl = self.current_crl()
        reasons = crl_reasons(crl, self.ca, revoked, renew_before_days, now)
        if reasons and not check_mode:
            number = crl_number(crl) + 1 if crl is not None else 1
            crl = build_crl(self.ca, revoked, number, next_update_days, now)
            atomic_write(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        pem = crl.public_bytes(serialization.Encoding.PEM).decode() if crl is not None else ""
        next_update = crl_next_update_time(crl) if crl is not None else None
        return {
            "changed": bool(reasons),
            "reasons": reasons,
            "crl": pem,
            "next_update": iso_utc(next_update) if next_update else "",
            "revoked": sorted(revoked),
        }

    # the report -----------------------------------------------------------------------------
    def inventory(self, now: _dt.datetime | None = None) -> list[dict[str, Any]]:
        """One row per issued certificate: who, serial, expiry, days left, revoked."""
        now = now or utcnow()
        revoked = self.revoked()
        rows = []
        for cert in self.issued():
            facts = certificate_facts(cert)
            record = revoked.get(facts["serial"])
            rows.append(
                {
                    "identity": client_identity(cert),
                    "serial": facts["serial"],
                    "fingerprint_sha256": facts["fingerprint_sha256"],
                    "not_after": facts["not_after"],
                    "days_remaining": (cert_not_after(cert) - now).days,
                    "expired": cert_not_after(cert) <= now,
                    "revoked": record is not None,
                    "revoked_at": record["revoked_at"] if record else "",
                }
            )
        return sorted(rows, key=lambda r: (r["identity"], r["not_after"]))


# --------------------------------------------------------------------------------------------
# on the client: the key, the CSR, the certificate


def client_reasons(  # noqa: PLR0917 - the facts the renewal rules compare, each one named
    cert: Any, key: Any, identity: str, issuer: Any, renew_before_days: int, now: _dt.datetime | None = None
) -> list[str]:
    """Why a client host's certificate must be re-issued (empty: it is fine)."""
    now = now or utcnow()
    if cert is None or key is None:
        return ["no certificate yet"]
    reasons = []
    if not same_public_key(cert.public_key(), key.public_key()):
        reasons.append("the certificate does not belong to the key")
    if client_identity(cert) != identity:
        reasons.append(f"the certificate names {client_identity(cert)!r}, not {identity!r}")
    if issuer is not None and not signed_by(cert, issuer):
        reasons.append("the certificate was not issued by the client CA")
    if not is_client_certificate(cert):
        reasons.append("the certificate is not a clientAuth-only certificate")
    left = cert_not_after(cert) - now
    if left <= _dt.timedelta(days=renew_before_days):
        reasons.append(
            f"expiring: valid until {iso_utc(cert_not_after(cert))}, within {renew_before_days} days"
        )
    return reasons


KEY_FILE, CERT_FILE, PENDING_KEY_FILE, CSR_FILE = "key.pem", "cert.pem", "pending-key.pem", "csr.pem"


def build_client_csr(key: Any, identity: str) -> Any:
    """The CSR of a client key: CN and SAN e-mail both ``identity`` (what check_client_csr accepts)."""
    check_identity(identity)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)] if len(identity) <= 64 else [])
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(identity)]), critical=False)
    )
    return builder.sign(key, signing_hash(key))


def _load_key(data: bytes) -> Any:
    return load_private_key(data)


def _client_files(directory: str) -> dict[str, str]:
    return {
        name: os.path.join(directory, f)
        for name, f in (
            ("key", KEY_FILE),
            ("cert", CERT_FILE),
            ("pending_key", PENDING_KEY_FILE),
            ("csr", CSR_FILE),
        )
    }


def client_request(
    directory: str,
    identity: str,
    *,
    key_type: str,
    renew_before_days: int,
    issuer: Any,
    uid: int = -1,
    gid: int = -1,
    check_mode: bool = False,
    now: _dt.datetime | None = None,
) -> dict[str, Any]:
    """Decide on a client host whether its certificate must be re-issued; if so, a key (made here,
    kept here: ``pending-key.pem`` 0600) and the CSR to send. A pending key of the wanted type is
    reused, so an unsigned request stays the same across runs."""
    check_identity(identity)
    files = _client_files(directory)
    cert = read_parsed(files["cert"], load_certificate)
    key = read_parsed(files["key"], _load_key)
    reasons = client_reasons(cert, key, identity, issuer, renew_before_days, now)
    if not reasons:
        return {"changed": False, "reissue": False, "reasons": [], "csr": ""}
    if check_mode:
        return {"changed": True, "reissue": True, "reasons": reasons, "csr": ""}
    os.makedirs(directory, mode=0o755, exist_ok=True)
    pending = read_parsed(files["pending_key"], _load_key)
    changed = False
    if pending is None or key_type_of(pending) != key_type:
        pending = generate_private_key(key_type)
        atomic_write(files["pending_key"], key_to_pem(pending), 0o600)
        if uid >= 0 or gid >= 0:
            os.chown(files["pending_key"], uid, gid)
        changed = True
    csr = build_client_csr(pending, identity)
    return {"changed": changed, "reissue": True, "reasons": reasons, "csr": csr_to_pem(csr)}


def client_install(
    directory: str,
    identity: str,
    certificate: str,
    *,
    issuer: Any,
    uid: int = -1,
    gid: int = -1,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Install a signed certificate for the pending key: checked first (the key's, this identity's,
    the client CA's, clientAuth only), then key and certificate each replaced atomically."""
    files = _client_files(directory)
    cert = load_certificate(certificate, "the signed client certificate")
    pending = read_parsed(files["pending_key"], _load_key)
    current = read_parsed(files["key"], _load_key)
    key = (
        pending
        if pending is not None and same_public_key(pending.public_key(), cert.public_key())
        else current
    )
    problems = client_reasons(cert, key, identity, issuer, -1)
    if key is None or problems:
        raise PKIError(
            f"the signed certificate is refused, nothing installed: {'; '.join(problems) or 'no key for it'}"
        )
    if check_mode:
        return {"changed": True}
    if key is pending:
        atomic_write(files["key"], key_to_pem(pending), 0o600)
        if uid >= 0 or gid >= 0:
            os.chown(files["key"], uid, gid)
        os.unlink(files["pending_key"])
    atomic_write(files["cert"], cert_to_pem(cert).encode(), 0o644)
    return {"changed": True, "certificate": certificate_facts(cert)}


# --------------------------------------------------------------------------------------------
# the report's Prometheus textfile (node_exporter's textfile collector on the key manager)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _epoch(stamp: str) -> int:
    return int(_dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp())


def render_prometheus(rows: list[dict[str, Any]], crl_next_update: str) -> str:
    """Expiry of every unexpired client certificate the client CA issued, and the CRL's nextUpdate."""
    lines = [
        "# HELP ftpskit_client_cert_not_after_timestamp_seconds Expiry of a client certificate the client CA"
        " issued (unexpired ones), seconds since the epoch.",
        "# TYPE ftpskit_client_cert_not_after_timestamp_seconds gauge",
    ]
    live = [r for r in rows if not r["expired"]]
    for row in live:
        revoked = str(row["revoked"]).lower()
        labels = f'identity="{_label(row["identity"])}",serial="{row["serial"]}",revoked="{revoked}"'
        lines.append(
            f"ftpskit_client_cert_not_after_timestamp_seconds{{{labels}}} {_epoch(row['not_after'])}"
        )
    lines += [
        "# HELP ftpskit_client_crl_next_update_timestamp_seconds The client CA's CRL nextUpdate: servers"
        " refuse every client certificate after it, seconds since the epoch.",
        "# TYPE ftpskit_client_crl_next_update_timestamp_seconds gauge",
    ]
    if crl_next_update:
        lines.append(f"ftpskit_client_crl_next_update_timestamp_seconds {_epoch(crl_next_update)}")
    return "\n".join(lines) + "\n"


def render_lines(rows: list[dict[str, Any]], warn_days: int) -> list[str]:
    """The report's table of client certificates, one line each, with what needs attention."""
    out = []
    for row in rows:
        if row["revoked"]:
            state = f"REVOKED {row['revoked_at']}"
        elif row["expired"]:
            state = "expired"
        elif row["days_remaining"] < warn_days:
            state = f"EXPIRING in {row['days_remaining']} days"
        else:
            state = f"ok, {row['days_remaining']} days left"
        out.append(f"  {row['identity']:<32} serial {row['serial']:<32} until {row['not_after']}  {state}")
    return out
