# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The renewal rules: when a server's certificate must be re-issued."""

from __future__ import annotations

import contextlib
import datetime as _dt
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import signed_by
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import key_type_of, same_public_key
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import cert_sans, normalize_sans
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import cert_not_after, iso_utc, utcnow

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509


def needs_reissue(
    cert: x509.Certificate | None,
    key: Any,
    *,
    wanted_sans: list[str] | None,
    key_type: str | None,
    renew_before_days: int,
    issuer: x509.Certificate | None = None,
    self_signed: bool = False,
    force: bool = False,
    now: _dt.datetime | None = None,
) -> list[str]:
    """The reasons to re-issue (empty: keep the certificate). docs/pki.md lists the rules.

    Deliberately *not* a reason: a changed validity period, subject or CA key type — they take
    effect at the next renewal.
    """
    if cert is None:
        return ["missing: no current certificate"]
    reasons = []
    if force:
        reasons.append("forced: ftps_pki_force_rotate is set")
    now = now or utcnow()
    left = cert_not_after(cert) - now
    if left <= _dt.timedelta(days=renew_before_days):
        reasons.append(
            f"expiring: valid until {iso_utc(cert_not_after(cert))}, within the renewal threshold of "
            f"{renew_before_days} days"
        )
    if wanted_sans is not None:
        have, want = set(cert_sans(cert)), set(normalize_sans(wanted_sans))
        if have != want:
            extra, lacking = sorted(have - want), sorted(want - have)
            reasons.append(f"sans: certificate lacks {lacking} and has unwanted {extra}")
    if key_type is not None and key_type_of(cert.public_key()) != key_type:
        reasons.append(f"key type: certificate has {key_type_of(cert.public_key())}, wanted {key_type}")
    if issuer is not None and not signed_by(cert, issuer):
        reasons.append(f"issuer: certificate is not signed by {issuer.subject.rfc4514_string()!r}")
    if self_signed and not signed_by(cert, cert):
        reasons.append("issuer: certificate is not self-signed")
    if key is None:
        reasons.append("key: the private key is missing or unreadable")
    elif not same_public_key(key.public_key(), cert.public_key()):
        reasons.append("key: the private key does not match the certificate")
    return reasons
