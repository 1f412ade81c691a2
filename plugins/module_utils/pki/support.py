# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""What every part of the fleet's key manager shares: the cryptography import guard, the domain
error, time and serials.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from typing import Any

from ansible.module_utils.basic import missing_required_lib

CRYPTOGRAPHY_IMP_ERR: str | None = None
try:
    from cryptography import x509

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised on hosts without python3-cryptography
    import traceback

    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMP_ERR = traceback.format_exc()


SERIAL_BITS = 128


class PKIError(Exception):
    """A domain error with a sentence an operator can act on."""


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def cert_not_after(cert: x509.Certificate) -> _dt.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=_dt.UTC)


def cert_not_before(cert: x509.Certificate) -> _dt.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=_dt.UTC)


def iso_utc(value: _dt.datetime) -> str:
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_if_exists(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def read_parsed(path: str | None, parse: Any) -> Any:
    """``parse(bytes)`` of the file at ``path``; None when there is no path, no file, or it does not parse."""
    data = read_if_exists(path) if path else None
    if data is None:
        return None
    try:
        return parse(data)
    except PKIError:
        return None


def random_serial() -> int:
    """A random, positive, non-zero serial of at most 128 bits (RFC 5280 4.1.2.2)."""
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial > 0:
            return serial


def require_cryptography(module: Any, package: str = "cryptography") -> None:
    """Fail the module (``missing_required_lib``, not a traceback) when cryptography is missing.

    ``package`` names what to install where the module runs: ``cryptography`` on the controller,
    Debian's ``python3-cryptography`` on a server.
    """
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib(package), exception=CRYPTOGRAPHY_IMP_ERR)
