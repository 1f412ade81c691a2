#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: the controller CA of ftps-kit, created on first use."""

DOCUMENTATION = r"""
---
module: ftps_pki_ca
short_description: Ensure the ftps-kit internal CA exists on the controller
description:
  - Creates the internal CA (a self-signed CA certificate and its key) in O(path) on first use and
    loads it afterwards. The key is written with mode 0600 in a 0700 directory and never leaves it.
  - An existing CA is never replaced; changing O(key_type), O(common_name) or O(validity_days)
    later has no effect on it. Replacing it is a staged CA rollover (M(ftpskit.ftps.ftps_pki_ca_rollover),
    C(playbooks/ca_rollover.yml)); while one is in progress a missing CA is an error, never created.
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)).
options:
  path:
    description: Directory holding C(ca.pem) and C(ca.key). Keep it out of version control.
    type: path
    required: true
  key_type:
    description: Key type for a new CA.
    type: str
    choices: [ecdsa-p384, ecdsa-p256, rsa-4096, rsa-3072]
    default: ecdsa-p384
  common_name:
    description: Subject common name of a new CA.
    type: str
    default: ftps-kit internal CA
  validity_days:
    description: Validity of a new CA certificate, in days.
    type: int
    default: 3650
  passphrase:
    description: Passphrase encrypting the CA key (empty for none). Keep it in a vault.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Reports that a missing CA would be created, and creates nothing.
  diff_mode:
    support: full
    description: Returns the changes as a before/after diff.
requirements:
  - cryptography >= 38
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Ensure the internal CA exists
  ftpskit.ftps.ftps_pki_ca:
    path: "{{ inventory_dir }}/.ftps-kit/pki/ca"
    passphrase: "{{ vault_ftps_pki_ca_passphrase }}"
  delegate_to: localhost
  run_once: true
  no_log: true
"""

RETURN = r"""
certificate:
  description: The CA certificate (PEM); empty in check mode when the CA does not exist yet.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
cert_path:
  description: Path of the CA certificate on the controller.
  returned: always
  type: str
  sample: /srv/kit/inventories/prod/.ftps-kit/pki/ca/ca.pem
fingerprint_sha256:
  description: SHA-256 fingerprint of the CA certificate (lowercase hex, no separators).
  returned: when the CA exists
  type: str
  sample: 3f1c...e9
subject:
  description: The CA's subject (RFC 4514).
  returned: when the CA exists
  type: str
  sample: CN=ftps-kit internal CA
not_after:
  description: End of the CA's validity (UTC, ISO 8601).
  returned: when the CA exists
  type: str
  sample: "2036-11-22T08:00:00Z"
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_pki import (
    CA_KEY_TYPES,
    CRYPTOGRAPHY_IMP_ERR,
    HAS_CRYPTOGRAPHY,
    CertificateAuthority,
    PKIError,
    cert_to_pem,
    certificate_facts,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_pki_rollover import rollover_in_progress


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key_type": {"type": "str", "choices": list(CA_KEY_TYPES), "default": "ecdsa-p384"},
            "common_name": {"type": "str", "default": "ftps-kit internal CA"},
            "validity_days": {"type": "int", "default": 3650},
            "passphrase": {"type": "str", "default": "", "no_log": True},
        },
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMP_ERR)
    params = module.params
    ca = CertificateAuthority(params["path"])
    changed = False
    try:
        if not ca.exists():
            stage = rollover_in_progress(params["path"])
            if stage:
                raise PKIError(
                    f"no CA here, and a CA rollover is at stage {stage!r}: resume it with "
                    "playbooks/ca_rollover.yml instead of creating a third CA"
                )
            changed = True
            if module.check_mode:
                module.exit_json(
                    changed=True,
                    certificate="",
                    cert_path=ca.cert_path,
                    diff={"before": {"ca": ""}, "after": {"ca": f"new {params['key_type']} CA"}},
                )
            ca.create(
                params["key_type"], params["common_name"], params["validity_days"], params["passphrase"]
            )
        ca.load(params["passphrase"])
    except PKIError as exc:
        module.fail_json(msg=f"internal CA in {params['path']}: {exc}")
    facts = certificate_facts(ca.cert)
    module.exit_json(
        changed=changed,
        certificate=cert_to_pem(ca.cert),
        cert_path=ca.cert_path,
        fingerprint_sha256=facts["fingerprint_sha256"],
        subject=facts["subject"],
        not_after=facts["not_after"],
        diff={"before": {"ca": "" if changed else facts["subject"]}, "after": {"ca": facts["subject"]}},
    )


if __name__ == "__main__":
    main()
