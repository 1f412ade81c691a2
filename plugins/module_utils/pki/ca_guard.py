# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""The kit's store (where the internal CA lives) and the accidental-second-CA guard.

A store without a CA is normal for a new fleet and a disaster for an existing one: the CA made
there would re-issue every server from a CA no client trusts. That happens when the store is a
new place (an AWX job's fresh container, an empty data directory, a typo in the path, a key
manager that replaced the controller without the CA being moved). The evidence that a fleet
already has a CA is on the servers: the certificates the kit deployed. This module judges it;
``ftps_pki_ca`` asks it before creating anything. Standard library only (the X.509 reader of
ftpskit_common), so the check also runs on a key manager that has no cryptography yet.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import (
    CertificateParseError,
    parse_certificate,
    pem_to_der,
)

# How many hosts the refusal names one by one (the rest are counted).
SHOWN_HOSTS = 5


def issued_certificates(certificates: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The hosts whose deployed certificate (PEM) was issued by a CA, with what identifies it.

    Empty PEM: the host has no certificate. A self-issued certificate (ftps_pki's self_signed
    mode) is no evidence of a CA. A file that is not a readable certificate counts: something the
    kit deployed is there, and nobody can tell by whom it was issued.
    """
    out: dict[str, dict[str, Any]] = {}
    for host, pem in sorted(certificates.items()):
        if not (pem or "").strip():
            continue
        try:
            ders = pem_to_der(pem)
            facts = parse_certificate(ders[0]) if ders else None
        except (CertificateParseError, ValueError, IndexError):
            facts = None
        if facts is None:
            out[host] = {"issuer": "(unreadable certificate)", "fingerprint_sha256": "", "not_after": ""}
        elif not facts["self_issued"]:
            out[host] = {k: facts[k] for k in ("issuer", "fingerprint_sha256", "not_after")}
    return out


def second_ca_refusal(
    store: str,
    ca_dir: str,
    certificates: dict[str, str],
    create_for_existing_fleet: bool = False,
) -> str:
    """Why a CA must not be created in ``store``:``ca_dir`` now ('' = creating one is fine).

    ``certificates`` maps each server of the run that uses the internal CA to the PEM it serves
    ('' when it has none). Call it only when the store has no CA.
    """
    found = issued_certificates(certificates)
    if not found or create_for_existing_fleet:
        return ""
    issuers = sorted({facts["issuer"] for facts in found.values()})
    shown = [
        f"{host} ({facts['issuer']}"
        + (
            f", sha256 {facts['fingerprint_sha256'][:16]}..., not after {facts['not_after']}"
            if facts["not_after"]
            else ""
        )
        + ")"
        for host, facts in list(found.items())[:SHOWN_HOSTS]
    ]
    more = len(found) - len(shown)
    return (
        f"The kit's store ({store}:{ca_dir}) has no CA (ca.pem and ca.key), but {len(found)} server(s) "
        f"already hold certificates issued by {', '.join(issuers)}: {'; '.join(shown)}"
        + (f" and {more} more" if more > 0 else "")
        + ". A CA made now would re-issue them from a CA no client trusts, so nothing was changed. "
        "Point the kit at the fleet's existing CA: the key manager (the one host of group ftps_ca) "
        "and ftps_pki_store_dir, or ftps_pki_store=controller with the directory that holds it "
        "(ftps_pki_store_dir, or ftps_pki_ca_dir for the CA directory itself); a controller-local CA "
        "moves to a key manager with playbooks/migrate_store.yml (docs/pki.md). Only if that CA is "
        "lost for good: run again with -e ftps_pki_ca_create_for_existing_fleet=true (a new CA; every "
        "server is re-issued from it and every client must trust it)."
    )
