#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: report a server's current and previous certificate generations, roll back."""

DOCUMENTATION = r"""
---
module: ftps_pki_generation
short_description: Report the current and previous certificate generations; go back to the previous one
description:
  - Reads the C(current) and C(previous) generations that M(ftpskit.ftps.ftps_pki_install) keeps
    under O(pki_dir) and returns the facts of both certificates.
  - With O(rollback_from), and only while the current certificate has that fingerprint, points
    C(current) back at the previous generation (and C(previous) at the one it leaves, kept for
    inspection) by atomic symlink renames. Reloading the daemon is the caller's job.
  - With O(next_key_type), makes sure the host holds the key of its next rotation
    (C(<pki_dir>/next/key.pem), root only, never leaves the host, not served) and reports its SPKI
    pin as C(next_spki_sha256) in RV(certificate), beside the current C(spki_sha256), so clients
    can pin it before a rotation serves it (RFC 7671 section 8.1).
    M(ftpskit.ftps.ftps_pki_request) uses that key for the next new-key certificate.
  - Idempotent. Run again (or when the certificate was never installed) it changes nothing.
extends_documentation_fragment:
  - ftpskit.ftps.generations
  - ftpskit.ftps.attributes
options:
  rollback_from:
    description:
      - SHA-256 fingerprint (hex, colons and case ignored) of the certificate to leave. Empty =
        report only.
    type: str
    default: ""
  next_key_type:
    description:
      - Key type of the next key to keep ready (as M(ftpskit.ftps.ftps_pki_request)'s key
        types). Empty = do not make one. A next key of another type is replaced.
    type: str
    default: ""
attributes:
  check_mode:
    description: Reports the generations and whether a rollback would happen; changes nothing.
  diff_mode:
    description: Returns the current generation before and after as a diff.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Read the generations before a rotation
  ftpskit.ftps.ftps_pki_generation:
    pki_dir: "{{ ftps_pki_layout.dir }}"
  register: __before

- name: Go back to the previous certificate after a failed health gate
  ftpskit.ftps.ftps_pki_generation:
    rollback_from: "{{ ftps_pki_certificate.fingerprint_sha256 }}"
"""

RETURN = r"""
generations:
  description: Facts of the C(current) and C(previous) certificates after the call (empty when absent).
  returned: always
  type: dict
  sample: {"current": {"fingerprint_sha256": "9c1f...", "not_after": "2027-03-01T10:00:00Z"}, "previous": {}}
rolled_back:
  description: Whether C(current) was pointed back at the previous generation.
  returned: always
  type: bool
problems:
  description:
    - Why the serving generation cannot be used, one sentence each (its certificate or key is
      missing or damaged, or the key is not the certificate's). Empty when it is sound, and when
      there is no generation at all (then C(generations.current) is empty).
  returned: always
  type: list
  elements: str
  sample: ["the deployed certificate <pki_dir>/current/cert.pem is damaged: ..."]
next_spki_sha256:
  description:
    - SPKI pin of the next key (base64 SHA-256, as spki_sha256); empty in check mode before it exists.
  returned: when O(next_key_type) is set
  type: str
certificate:
  description:
    - The current certificate's facts (as M(ftpskit.ftps.ftps_pki_install)'s C(ftps_pki_certificate)
      fact) with C(next_spki_sha256); empty when there is no certificate.
  returned: when O(next_key_type) is set
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import (
    current_problems,
    ensure_next_key,
    rollback,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import STORE_ARGUMENT_SPEC, Store
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "rollback_from": {"type": "str", "default": ""},
            "next_key_type": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    require_cryptography(module, "python3-cryptography")
    params = module.params
    store = Store(params["pki_dir"], params["group"])
    try:
        result = rollback(store, rollback_from=params["rollback_from"], check_mode=module.check_mode)
    except PKIError as exc:
        module.fail_json(msg=f"cannot roll back, nothing changed: {exc}")
    if params["next_key_type"]:
        try:
            made = ensure_next_key(store, params["next_key_type"], check_mode=module.check_mode)
        except PKIError as exc:
            module.fail_json(msg=f"cannot make the next key: {exc}")
        result["changed"] = result["changed"] or made["changed"]
        result["next_spki_sha256"] = made["next_spki_sha256"]
        facts = store.facts()
        if facts and made["next_spki_sha256"]:
            facts["next_spki_sha256"] = made["next_spki_sha256"]
        result["certificate"] = facts
    result["problems"] = current_problems(store)
    before = result.pop("before")
    result["diff"] = {
        "before": {"current": before["current"].get("fingerprint_sha256", "")},
        "after": {"current": result["generations"]["current"].get("fingerprint_sha256", "")},
    }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
