#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: the internal CA of ftps-kit in its store, created on first use for a new fleet only."""

DOCUMENTATION = r"""
---
module: ftps_pki_ca
short_description: Ensure the ftps-kit internal CA exists in the kit's store
description:
  - Creates the internal CA (a self-signed CA certificate and its key) in O(path) on first use and
    loads it afterwards. The key is written with mode 0600 in a 0700 directory and never leaves it.
  - Never a second CA by accident - when O(path) holds no CA but a server in O(fleet_certificates)
    already serves a certificate issued by a CA (the fleet has a CA, somewhere else), the module
    fails before anything is created and says what it found and how to point the kit at that CA.
    Only O(create_for_existing_fleet=true) creates a CA for such a fleet. This check needs no
    cryptography, so it also runs in check mode on a key manager that does not have it yet.
  - An existing CA is never replaced; changing O(key_type), O(common_name) or O(validity_days)
    later has no effect on it. Replacing it is a staged CA rollover (M(ftpskit.ftps.ftps_pki_ca_rollover),
    C(playbooks/ca_rollover.yml)); while one is in progress a missing CA is an error, never created.
  - C(roles/ftps_pki/tasks/ca.yml) runs it.
extends_documentation_fragment:
  - ftpskit.ftps.ca
  - ftpskit.ftps.attributes
  - ftpskit.ftps.cryptography
  - ftpskit.ftps.ca_key
options:
  path:
    description: Directory holding C(ca.pem) and C(ca.key). Keep it out of version control.
    type: path
    required: true
  common_name:
    description: Subject common name of a new CA.
    type: str
    default: ftps-kit internal CA
  passphrase:
    description: Passphrase encrypting the CA key (empty for none). Keep it in a vault.
  fleet_certificates:
    description:
      - The certificate (PEM) each server of the run that uses the internal CA serves now, by
        inventory name; an empty string for a server without one. The evidence that the fleet
        already has a CA.
    type: dict
    default: {}
  create_for_existing_fleet:
    description:
      - Create a CA in an empty O(path) even though servers hold certificates from a CA (that CA is
        lost for good; every server will be re-issued and every client must trust the new CA).
    type: bool
    default: false
  store:
    description: The store's name in messages (the key manager's inventory name, or localhost).
    type: str
    default: localhost
attributes:
  check_mode:
    description: Reports that a missing CA would be created, and creates nothing.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Ensure the internal CA exists
  ftpskit.ftps.ftps_pki_ca:
    path: /var/lib/ftps-kit/pki/ca
    passphrase: "{{ vault_ftps_pki_ca_passphrase }}"
    fleet_certificates:
      ftp1: "{{ ftp1_current_pem }}"
  delegate_to: "{{ groups['ftps_ca'] | first }}"
  run_once: true
"""

RETURN = r"""
certificate:
  description: The CA certificate (PEM); empty in check mode when the CA does not exist yet.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
cert_path:
  description: Path of the CA certificate on the store's host.
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import (
    CA_KEY_ARGUMENT_SPEC,
    CertificateAuthority,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca_guard import second_ca_refusal
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import cert_to_pem, certificate_facts
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import CA_KEY_TYPES
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.rollover import rollover_in_progress
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key_type": {"type": "str", "choices": list(CA_KEY_TYPES), "default": "ecdsa-p384"},
            "common_name": {"type": "str", "default": "ftps-kit internal CA"},
            "validity_days": {"type": "int", "default": 3650},
            **CA_KEY_ARGUMENT_SPEC,
            "fleet_certificates": {"type": "dict", "default": {}},
            "create_for_existing_fleet": {"type": "bool", "default": False},
            "store": {"type": "str", "default": "localhost"},
        },
        supports_check_mode=True,
    )
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
            refusal = second_ca_refusal(
                params["store"],
                params["path"],
                {str(host): str(pem or "") for host, pem in params["fleet_certificates"].items()},
                params["create_for_existing_fleet"],
            )
            if refusal:
                module.fail_json(msg=refusal, ca_present=False)
            changed = True
            if module.check_mode:
                module.exit_json(
                    changed=True,
                    certificate="",
                    cert_path=ca.cert_path,
                    diff={"before": {"ca": ""}, "after": {"ca": f"new {params['key_type']} CA"}},
                )
            require_cryptography(module)
            ca.create(
                params["key_type"], params["common_name"], params["validity_days"], params["passphrase"]
            )
        require_cryptography(module)
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
