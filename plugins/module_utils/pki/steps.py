# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The host-side steps the ``ftps_pki`` modules run: decide first, change only when not in check mode."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import normalize_fingerprint
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import issue_certificate
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import (
    build_csr,
    certificate_facts,
    csr_to_pem,
    load_certificate,
    load_certificates,
    load_csr,
    verify_chain,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import (
    check_key_type,
    generate_private_key,
    key_type_of,
    load_private_key,
    same_public_key,
    spki_pin,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.renewal import needs_reissue
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.sans import (
    cert_sans,
    normalize_sans,
    sans_cover,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import (
    CERT_NAME,
    CURRENT,
    KEY_NAME,
    PENDING,
    PREVIOUS,
    Store,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import (
    PKIError,
    cert_not_after,
    iso_utc,
    read_if_exists,
    read_parsed,
    utcnow,
)

# Without cryptography, support.HAS_CRYPTOGRAPHY says so and the modules fail before using it.
with contextlib.suppress(ImportError):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID


def _summary(cert: x509.Certificate | None) -> dict[str, Any]:
    if cert is None:
        return {}
    facts = certificate_facts(cert)
    return {k: facts[k] for k in ("serial", "not_after", "sans", "issuer", "key_type", "fingerprint_sha256")}


def request(
    store: Store,
    *,
    common_name: str,
    sans: list[str],
    key_type: str,
    renew_before_days: int,
    rotate_key: bool,
    force: bool,
    issuer: x509.Certificate | None,
    self_signed: bool,
    check_mode: bool,
    extra_reasons: list[str] | None = None,
) -> dict[str, Any]:
    """Decide whether the host needs a new certificate; if so, stage a key and a CSR.

    ``extra_reasons`` are reasons decided elsewhere (acme mode: the CA's renewal window, RFC 9773).

    A pending key (made earlier, never served) is reused while it has the wanted type, so an
    unsigned CSR stays stable across runs (external mode) and a failed run resumes cleanly.
    """
    check_key_type(key_type)
    wanted = normalize_sans(sans)
    cert, key = store.current_cert(), store.current_key()
    reasons = needs_reissue(
        cert,
        key,
        wanted_sans=wanted,
        key_type=key_type,
        renew_before_days=renew_before_days,
        issuer=issuer,
        self_signed=self_signed,
        force=force,
    )
    if cert is not None:
        reasons += [reason for reason in extra_reasons or [] if reason]
    result: dict[str, Any] = {"reissue": bool(reasons), "reasons": reasons, "csr": "", "changed": False}
    result["diff"] = {"before": {"certificate": _summary(cert)}, "after": {"certificate": _summary(cert)}}
    if not reasons:
        if not check_mode and os.path.isdir(store.path(PENDING)):
            store.clear_pending()  # a leftover from an interrupted run; nothing to report
        return result
    pending = store.pending_key()
    pending_csr = store.pending_csr_pem()
    if pending is not None and pending_csr and key_type_of(pending) == key_type:
        try:
            same = set(cert_sans(load_csr(pending_csr))) == set(wanted)
        except PKIError:
            same = False
        if same:
            result["csr"] = pending_csr
            result["diff"]["after"] = {
                "certificate": {"pending": "CSR awaiting signature", "reasons": reasons}
            }
            return result
    result["changed"] = True
    result["diff"]["after"] = {"certificate": {"pending": "new key and CSR", "reasons": reasons}}
    if check_mode:
        return result
    reuse = (
        not rotate_key
        and not force
        and key is not None
        and key_type_of(key) == key_type
        and (cert is None or same_public_key(key.public_key(), cert.public_key()))
    )
    new_key = key if reuse else _usable_next_key(store, key_type, key) or generate_private_key(key_type)
    csr_pem = csr_to_pem(build_csr(new_key, common_name, wanted))
    store.stage_pending(new_key, csr_pem)
    result["csr"] = csr_pem
    return result


def install(
    store: Store,
    *,
    certificate: str = "",
    chain: str = "",
    private_key: str = "",
    self_signed: bool = False,
    common_name: str = "",
    sans: list[str] | None = None,
    required_names: list[str] | None = None,
    validity_days: int = 90,
    trust_anchors: list[x509.Certificate] | None = None,
    verify: bool = True,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Validate and install a certificate with its key as a new generation; report facts.

    The key is, in order: ``private_key`` (provided mode), the pending key if it matches, the
    current key if it matches (an operator re-signed the old CSR). Every check runs before
    anything is written, so a bad certificate leaves the current generation serving.
    """
    current = store.current_cert()
    before = _summary(current)
    result: dict[str, Any] = {"changed": False, "installed": False}
    if self_signed:
        key = store.pending_key()
        if key is None:
            if check_mode and current is None:
                result["changed"] = True
            result.update(facts=store.facts(), diff={"before": before, "after": before})
            return result
        cert = issue_certificate(
            key.public_key(),
            common_name,
            sans or [],
            issuer_cert=None,
            issuer_key=key,
            validity_days=validity_days,
        )
        chain_certs: list[x509.Certificate] = []
    elif certificate:
        cert = load_certificate(certificate, "the new certificate")
        chain_certs = load_certificates(chain, "the chain")
        key = _matching_key(store, cert, private_key)
        if current == cert and load_certificates(store.current_chain_pem()) == chain_certs:
            current_key = store.current_key()
            if current_key is not None and same_public_key(current_key.public_key(), key.public_key()):
                result.update(facts=store.facts(), diff={"before": before, "after": before})
                return result
        if verify:
            validate_server_certificate(cert, chain_certs, required_names or [], trust_anchors)
    else:
        result.update(facts=store.facts(), diff={"before": before, "after": before})
        return result
    result.update(changed=True, installed=True, diff={"before": before, "after": _summary(cert)})
    if check_mode:
        result["facts"] = certificate_facts(cert, store.paths())
        return result
    store.install(cert, key, chain_certs)
    store.clear_pending()
    nxt = store.next_key()
    if nxt is not None and same_public_key(nxt.public_key(), key.public_key()):
        store.clear_next()  # now the current key: the next rotation needs a fresh one
    result["facts"] = store.facts()
    return result


def _usable_next_key(store: Store, key_type: str, current_key: Any) -> Any:
    """The pre-made next key when it has the wanted type and is not the current key, else None."""
    nxt = store.next_key()
    if nxt is None or key_type_of(nxt) != key_type:
        return None
    if current_key is not None and same_public_key(nxt.public_key(), current_key.public_key()):
        return None
    return nxt


def ensure_next_key(store: Store, key_type: str, *, check_mode: bool = False) -> dict[str, Any]:
    """Make sure ``<pki_dir>/next/key.pem`` holds a key of ``key_type`` that is not served yet.

    The key never leaves the host; only its SPKI pin (``next_spki_sha256``) is reported, so the
    clients can pin it before a rotation serves it (RFC 7671 8.1, "current + next").
    """
    check_key_type(key_type)
    current = store.current_key()
    nxt = _usable_next_key(store, key_type, current)
    if nxt is not None:
        return {"changed": False, "next_spki_sha256": spki_pin(nxt.public_key())}
    if check_mode:
        return {"changed": True, "next_spki_sha256": ""}
    nxt = generate_private_key(key_type)
    store.stage_next(nxt)
    return {"changed": True, "next_spki_sha256": spki_pin(nxt.public_key())}


def _matching_key(store: Store, cert: x509.Certificate, private_key: str) -> Any:
    if private_key:
        key = load_private_key(private_key.encode(), what="the provided private key")
        if not same_public_key(key.public_key(), cert.public_key()):
            raise PKIError("the provided private key does not match the certificate")
        return key
    for candidate in (store.pending_key(), store.current_key()):
        if candidate is not None and same_public_key(candidate.public_key(), cert.public_key()):
            return candidate
    raise PKIError(
        "the certificate's public key matches neither this host's pending key (its CSR) "
        "nor its current key: it was not issued for a key of this host"
    )


def validate_server_certificate(
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    required_names: list[str],
    anchors: list[x509.Certificate] | None = None,
    now: _dt.datetime | None = None,
) -> None:
    """Expired, not covering the host, not for servers, or an unverifiable chain → PKIError."""
    now = now or utcnow()
    if cert_not_after(cert) <= now:
        raise PKIError(f"the certificate expired at {iso_utc(cert_not_after(cert))}")
    missing = sans_cover(cert_sans(cert), required_names)
    if missing:
        raise PKIError(
            f"the certificate's SANs {cert_sans(cert)} do not cover {missing}, required for this host"
        )
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            raise PKIError("the certificate's extended key usage does not allow TLS servers (serverAuth)")
    except x509.ExtensionNotFound:
        pass
    verify_chain(cert, chain, anchors, now)


def generations(store: Store) -> dict[str, Any]:
    """The facts of the ``current`` and ``previous`` certificates ({} when there is none)."""
    result = {}
    for link in (CURRENT, PREVIOUS):
        gen = store.generation(link)
        cert = read_parsed(os.path.join(gen, CERT_NAME) if gen else None, load_certificate)
        result[link] = certificate_facts(cert, {"generation": gen or ""}) if cert is not None else {}
    return result


def current_problems(store: Store) -> list[str]:
    """Why the serving generation cannot be used, in sentences ([] when it can, or when there is
    no generation at all: a host without a certificate is for site.yml, not a broken one).

    Checked: the certificate and the key read as PEM, and the key is the certificate's key. A
    rotation skips a host with problems (it would have nothing sound to go back to)."""
    gen = store.generation(CURRENT)
    if gen is None:
        return []
    problems = []
    cert = key = None
    for name, parse, what in (
        (CERT_NAME, load_certificate, "certificate"),
        (KEY_NAME, load_private_key, "key"),
    ):
        path = os.path.join(gen, name)
        data = read_if_exists(path)
        if data is None:
            problems.append(f"the deployed {what} {path} is missing or cannot be read")
            continue
        try:
            parsed = parse(data)
        except PKIError:
            problems.append(
                f"the deployed {what} {path} is damaged: it does not read as a PEM {what} "
                "(changed, cut short or replaced); re-run site.yml to re-issue it"
            )
            continue
        if what == "certificate":
            cert = parsed
        else:
            key = parsed
    if cert is not None and key is not None and spki_pin(cert.public_key()) != spki_pin(key.public_key()):
        problems.append(f"the deployed key in {gen} is not the certificate's key")
    return problems


def rollback(store: Store, *, rollback_from: str, check_mode: bool = False) -> dict[str, Any]:
    """Go back to the previous generation if the current one is ``rollback_from`` (a fingerprint).

    Idempotent: when the current certificate is another one (never installed, or already rolled
    back) nothing changes. A current generation to leave without a previous one is an error.
    """
    try:
        wanted = normalize_fingerprint(rollback_from) if rollback_from else ""
    except ValueError as exc:
        raise PKIError(f"rollback_from: {exc}") from None
    before = generations(store)
    result: dict[str, Any] = {"changed": False, "rolled_back": False, "before": before}
    if not wanted or before[CURRENT].get("fingerprint_sha256") != wanted:
        result["generations"] = before
        return result
    if not before[PREVIOUS]:
        raise PKIError(
            f"the current certificate {wanted} has no previous generation in {store.root} to go back to"
        )
    result.update(changed=True, rolled_back=True)
    if check_mode:
        result["generations"] = {CURRENT: before[PREVIOUS], PREVIOUS: before[CURRENT]}
        return result
    store.rollback()
    result["generations"] = generations(store)
    return result
