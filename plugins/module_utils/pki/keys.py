# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Private keys: the supported types, generation, PEM in and out, SPKI pins."""

from __future__ import annotations

import contextlib
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import spki_sha256
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa


KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")


# The option of the modules that make a key on the managed host (ftps_pki_request,
# ftps_pki_client_cert); its documentation is the doc fragment ftpskit.ftps.host_key.
KEY_TYPE_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "key_type": {"type": "str", "choices": list(KEY_TYPES), "default": "ecdsa-p256"},
}


CA_KEY_TYPES = ("ecdsa-p384", "ecdsa-p256", "rsa-4096", "rsa-3072")


def _spki_der(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_pin(public_key: Any) -> str:
    """The SPKI pin of a public key: base64 of SHA-256 over its DER SubjectPublicKeyInfo."""
    return spki_sha256(_spki_der(public_key))


def same_public_key(a: Any, b: Any) -> bool:
    return _spki_der(a) == _spki_der(b)


def check_key_type(key_type: str, allowed: tuple[str, ...] = KEY_TYPES) -> str:
    if key_type not in allowed:
        raise PKIError(f"unsupported key type {key_type!r}; supported: {', '.join(allowed)}")
    return key_type


def generate_private_key(key_type: str, allowed: tuple[str, ...] = KEY_TYPES) -> Any:
    check_key_type(key_type, allowed)
    family, _sep, size = key_type.partition("-")
    if family == "ecdsa":
        curve = ec.SECP256R1() if size == "p256" else ec.SECP384R1()
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=int(size))


def key_type_of(key: Any) -> str:
    """The kit's name for a private or public key's type, e.g. ``ecdsa-p256``; ``other`` if foreign."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(public.curve.name, "ecdsa-other")
    if isinstance(public, rsa.RSAPublicKey):
        return f"rsa-{public.key_size}"
    return "other"


def key_size_of(key: Any) -> int:
    public = key.public_key() if hasattr(key, "public_key") else key
    return int(getattr(public, "key_size", 0))


def key_to_pem(key: Any, passphrase: str = "") -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(data: bytes, passphrase: str = "", what: str = "private key") -> Any:
    try:
        return serialization.load_pem_private_key(data, password=passphrase.encode() or None)
    except TypeError as exc:  # encrypted without passphrase, or the reverse
        raise PKIError(f"{what}: {exc} (check the passphrase)") from exc
    except ValueError as exc:
        raise PKIError(f"{what} cannot be read: wrong passphrase or not a PEM private key ({exc})") from exc


def signing_hash(key: Any) -> Any:
    if key_type_of(key) == "ecdsa-p384":
        return hashes.SHA384()
    return hashes.SHA256()
