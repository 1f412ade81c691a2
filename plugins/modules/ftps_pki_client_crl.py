#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: revoke client certificates and keep the client CA's CRL current."""

DOCUMENTATION = r"""
---
module: ftps_pki_client_crl
short_description: Revoke client certificates and keep the ftps-kit client CA's CRL current
description:
  - With O(revoke), records the certificates it names (by identity - every certificate issued to that
    user -, by serial or by SHA-256 fingerprint) as revoked in C(<path>/revoked.json). A selector that
    names no certificate the client CA issued fails before anything changes. Revoking what is already
    revoked changes nothing.
  - Regenerates C(<path>/crl.pem) when there is none, when it does not list exactly the recorded
    revocations, when it was not signed by this CA, or when its nextUpdate is within
    O(renew_before_days); otherwise leaves it as it is (a second run reports no change). A new CRL
    is valid for O(next_update_days) and carries the next CRL number.
extends_documentation_fragment:
  - ftpskit.ftps.client_ca
  - ftpskit.ftps.attributes.no_diff
  - ftpskit.ftps.cryptography
  - ftpskit.ftps.ca_key
options:
  next_update_days:
    description:
      - Days from now to a new CRL's nextUpdate (servers refuse every client certificate once it has passed).
    type: int
    default: 7
  renew_before_days:
    description:
      - Regenerate the CRL when its nextUpdate is within this many days; less than O(next_update_days).
    type: int
    default: 3
  revoke:
    description: What to revoke (exactly one of its keys), or nothing.
    type: dict
    default: {}
    suboptions:
      identity:
        description: Every certificate issued to this identity.
        type: str
      serial:
        description: The certificate with this serial (hex, colons allowed).
        type: str
      fingerprint:
        description: The certificate with this SHA-256 fingerprint (hex, colons allowed).
        type: str
attributes:
  check_mode:
    description: >-
      Checks the selector and reports what would be revoked and whether the CRL would be regenerated.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Revoke alice's certificates and regenerate the CRL
  ftpskit.ftps.ftps_pki_client_crl:
    path: /var/lib/ftps-kit/client-ca
    revoke:
      identity: alice@example.org
  delegate_to: "{{ groups['ftps_ca'] | first }}"
  run_once: true
"""

RETURN = r"""
crl:
  description: The CRL (PEM); empty in check mode when there is none yet.
  returned: always
  type: str
  sample: "-----BEGIN X509 CRL-----\n..."
next_update:
  description: The CRL's nextUpdate (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-12-13T00:00:00Z"
reasons:
  description: Why the CRL was regenerated (empty when it was current).
  returned: always
  type: list
  elements: str
  sample: ["revocations changed (0 listed, 1 recorded)"]
newly_revoked:
  description: The certificates this call revoked (serial, identity, fingerprint).
  returned: always
  type: list
  elements: dict
  sample: [{"serial": "5f3a...", "identity": "alice@example.org", "fingerprint_sha256": "3f1c..."}]
revoked:
  description: The serials (hex) of every revoked certificate.
  returned: always
  type: list
  elements: str
  sample: ["5f3a..."]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CA_KEY_ARGUMENT_SPEC
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import certificate_facts
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.client import (
    CLIENT_CA_ARGUMENT_SPEC,
    ClientCA,
    client_identity,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CLIENT_CA_ARGUMENT_SPEC,
            **CA_KEY_ARGUMENT_SPEC,
            "next_update_days": {"type": "int", "default": 7},
            "renew_before_days": {"type": "int", "default": 3},
            "revoke": {
                "type": "dict",
                "default": {},
                "options": {
                    "identity": {"type": "str"},
                    "serial": {"type": "str"},
                    "fingerprint": {"type": "str"},
                },
            },
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    selector = {k: v for k, v in (params["revoke"] or {}).items() if v}
    try:
        store = ClientCA(params["path"], params["passphrase"]).load()
        if params["renew_before_days"] >= params["next_update_days"]:
            raise PKIError(
                f"renew_before_days ({params['renew_before_days']}) must be less than next_update_days "
                f"({params['next_update_days']})"
            )
        chosen = store.select(**selector) if selector else []
        new = store.revoke(chosen, check_mode=module.check_mode)
        result = store.ensure_crl(
            params["next_update_days"], params["renew_before_days"], check_mode=module.check_mode
        )
    except PKIError as exc:
        module.fail_json(msg=f"client CA in {params['path']}: {exc}")
    newly = [
        {"serial": f["serial"], "identity": client_identity(c), "fingerprint_sha256": f["fingerprint_sha256"]}
        for c in chosen
        for f in [certificate_facts(c)]
        if f["serial"] in new
    ]
    if module.check_mode and new:
        result["revoked"] = sorted(set(result["revoked"]) | set(new))
    module.exit_json(
        changed=bool(new) or result["changed"],
        crl=result["crl"],
        next_update=result["next_update"],
        reasons=result["reasons"],
        newly_revoked=newly,
        revoked=result["revoked"],
    )


if __name__ == "__main__":
    main()
