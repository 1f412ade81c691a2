#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: one step of a staged rollover of the ftps-kit internal CA, in the kit's store."""

DOCUMENTATION = r"""
---
module: ftps_pki_ca_rollover
short_description: One step of a staged rollover of the ftps-kit internal CA
description:
  - Keeps the state of a rollover from the internal CA in O(path) to a new one, and does the steps
    that touch the CA directories in the kit's store. C(playbooks/ca_rollover.yml) runs the stages and the
    steps on the hosts between them (clients trusting both CAs, servers re-issued behind a health
    gate, the old CA removed from clients); docs/ca-rollover.md describes them.
  - Layout beside O(path) - C(<path>-next/) the new CA until the swap, C(<path>-previous/) the old
    CA after it (its key kept, encrypted when O(passphrase) is set), C(<path>-retired/<fingerprint>/)
    the old CA's certificate after stage 3 (its key deleted), C(<path>-rollover.json) the state.
  - Every step is idempotent and checks the layout it starts from; a step that already happened
    changes nothing, a step whose stage has not come is refused before anything changes.
extends_documentation_fragment:
  - ftpskit.ftps.ca
  - ftpskit.ftps.attributes.no_diff
  - ftpskit.ftps.cryptography
  - ftpskit.ftps.ca_key
options:
  path:
    description: The CA directory (C(ftps_pki_ca_dir)), holding C(ca.pem) and C(ca.key).
    type: path
    required: true
  action:
    description:
      - C(status) reads the state and the CA directories, changing nothing.
      - C(prepare) (stage 1) makes the new CA in C(<path>-next/) and starts the state.
      - C(trusted) ends stage 1 (every client trusts both CAs).
      - C(swap) (stage 2) makes the new CA the signing one, the old one moves to C(<path>-previous/).
      - C(reissued) ends stage 2 (every internal-CA server has a certificate from the new CA).
      - C(retire) (stage 3) archives the old CA's certificate and deletes its key.
      - C(retired) ends stage 3 (no client trusts the old CA); the rollover is complete.
    type: str
    choices: [status, prepare, trusted, swap, reissued, retire, retired]
    default: status
  passphrase:
    description:
      - Passphrase of the current CA's key, also used for the new CA's key (empty for none). Both keys
        are opened before the swap moves anything. Keep it in a vault.
  key_type:
    description: Key type of the new CA (O(action=prepare)).
  common_name:
    description:
      - Subject common name of the new CA (O(action=prepare)). Empty - the current CA's name and the
        date. It must differ from the current CA's name.
    type: str
    default: ""
  validity_days:
    description: Validity of the new CA certificate, in days (O(action=prepare)).
attributes:
  check_mode:
    description: Says whether the step would change anything, and changes nothing.
  diff_mode:
    description: The state file and the directories are reported in the result instead.
seealso:
  - module: ftpskit.ftps.ftps_pki_ca
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Where is the CA rollover?
  ftpskit.ftps.ftps_pki_ca_rollover:
    path: "{{ ftps_pki_ca_dir }}"
  delegate_to: localhost
  run_once: true
  register: rollover

- name: Stage 1 - make the new CA (clients are told to trust it next)
  ftpskit.ftps.ftps_pki_ca_rollover:
    path: "{{ ftps_pki_ca_dir }}"
    action: prepare
    passphrase: "{{ vault_ftps_pki_ca_passphrase }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
stage:
  description: The stage in progress or next to run - none, trust, reissue, retire or complete.
  returned: always
  type: str
  sample: reissue
state:
  description: The state file's content (the two CAs, when each step happened); empty without a rollover.
  returned: always
  type: dict
state_path:
  description: The state file on the store's host.
  returned: always
  type: str
active:
  description:
    - The signing CA's directory - present, fingerprint_sha256, subject, not_before, not_after,
      certificate (the PEM, when present), key_present, key_encrypted.
  returned: always
  type: dict
next:
  description: The new CA's directory before the swap (same fields as RV(active)).
  returned: always
  type: dict
previous:
  description: The old CA's directory after the swap (same fields as RV(active)).
  returned: always
  type: dict
retired:
  description: The old CA's archive after stage 3 (same fields; key_present false).
  returned: always
  type: dict
trust:
  description: The CA certificates (PEM) clients must trust at this point - one, or two during a rollover.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CA_KEY_ARGUMENT_SPEC
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import CA_KEY_TYPES
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.rollover import ACTIONS, run
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "action": {"type": "str", "choices": list(ACTIONS), "default": "status"},
            **CA_KEY_ARGUMENT_SPEC,
            "key_type": {"type": "str", "choices": list(CA_KEY_TYPES), "default": "ecdsa-p384"},
            "common_name": {"type": "str", "default": ""},
            "validity_days": {"type": "int", "default": 3650},
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    if params["validity_days"] < 1:
        module.fail_json(msg="validity_days must be at least 1")
    try:
        result = run(
            params["action"],
            params["path"],
            params["passphrase"],
            key_type=params["key_type"],
            common_name=params["common_name"],
            validity_days=params["validity_days"],
            check_mode=module.check_mode,
        )
    except (PKIError, OSError) as exc:
        module.fail_json(msg=f"CA rollover of {params['path']} ({params['action']}): {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
