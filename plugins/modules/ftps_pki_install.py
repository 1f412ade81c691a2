#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: validate a server certificate and install it with its key as a new generation."""

DOCUMENTATION = r"""
---
module: ftps_pki_install
short_description: Validate and atomically install a server certificate, key and chain
description:
  - Validates the certificate (its key is the host's pending or current key, or O(private_key);
    not expired; its SANs cover O(required_names); serverAuth usage; the chain verifies), and only
    then writes a complete new generation directory C(gen-<UTC timestamp>-<serial>/) with
    C(cert.pem), C(key.pem) (0640 root:O(group)), C(chain.pem) and C(fullchain.pem), swaps the
    C(current) symlink by an atomic rename and points C(previous) at the generation it replaced.
    Older generations are removed.
  - A certificate that fails a check changes nothing; the current generation keeps serving.
  - Without O(certificate) and O(self_signed) it only reports the facts of the current certificate.
extends_documentation_fragment:
  - ftpskit.ftps.generations
  - ftpskit.ftps.attributes
  - ftpskit.ftps.cryptography.managed_host
options:
  certificate:
    description: The certificate to install (PEM).
    type: str
    default: ""
  chain:
    description: Its issuer chain (PEM, leaf's issuer first).
    type: str
    default: ""
  private_key:
    description:
      - The key (PEM) when the operator provides it (mode C(provided)).
      - Otherwise the host's own (pending or current) key is used.
    type: str
    default: ""
  self_signed:
    description: Self-sign the pending key (mode C(self_signed)).
    type: bool
    default: false
  common_name:
    description: Subject common name of a self-signed certificate.
    type: str
    default: ""
  sans:
    description: Subject alternative names of a self-signed certificate.
    type: list
    elements: str
    default: []
  validity_days:
    description: Validity of a self-signed certificate, in days.
    type: int
    default: 90
  required_names:
    description: Names the certificate's SANs must cover.
    type: list
    elements: str
    default: []
  trust_store:
    description: PEM bundle of CAs a chain without its root may end at.
    type: path
    default: /etc/ssl/certs/ca-certificates.crt
  refused:
    description:
      - Why the CA refused this host's request (from the C(errors) that M(ftpskit.ftps.ftps_pki_sign)
        returns); when set the module fails with it and changes nothing.
    type: str
    default: ""
attributes:
  check_mode:
    description: Validates and reports what would be installed; writes nothing.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Install the signed certificate
  ftpskit.ftps.ftps_pki_install:
    certificate: "{{ __ftps_pki_sign.certificates[inventory_hostname] }}"
    chain: "{{ __ftps_pki_sign.chain }}"
    required_names: ["{{ inventory_hostname }}"]
  notify: ftps certificate changed

- name: Install an operator-provided certificate and key
  ftpskit.ftps.ftps_pki_install:
    certificate: "{{ vault_ftps_cert }}"
    private_key: "{{ vault_ftps_key }}"
    chain: "{{ vault_ftps_chain }}"
    required_names: [ftp.example.org]
  no_log: true
"""

RETURN = r"""
installed:
  description: Whether a new generation was (or, in check mode, would be) installed.
  returned: always
  type: bool
  sample: true
ansible_facts:
  description: Facts about the certificate now serving.
  returned: always
  type: complex
  contains:
    ftps_pki_certificate:
      description: >-
        fingerprint_sha256 (lowercase hex of the DER), spki_sha256 (base64 SHA-256 of the public
        key, a pin), serial (hex), not_before, not_after (UTC ISO 8601), subject, issuer, sans,
        key_type, key_size and paths (dir, current, generation, previous, cert, key, chain, fullchain).
        Empty when the host has no certificate.
      type: dict
      sample: {"fingerprint_sha256": "9c1f...", "serial": "5e3a...", "key_type": "ecdsa-p256"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import load_trust_anchors
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import install
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import STORE_ARGUMENT_SPEC, Store
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "certificate": {"type": "str", "default": ""},
            "chain": {"type": "str", "default": ""},
            "private_key": {"type": "str", "default": "", "no_log": True},
            "self_signed": {"type": "bool", "default": False},
            "common_name": {"type": "str", "default": ""},
            "sans": {"type": "list", "elements": "str", "default": []},
            "validity_days": {"type": "int", "default": 90},
            "required_names": {"type": "list", "elements": "str", "default": []},
            "trust_store": {"type": "path", "default": "/etc/ssl/certs/ca-certificates.crt"},
            "refused": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    require_cryptography(module, "python3-cryptography")
    params = module.params
    if params["refused"]:
        module.fail_json(msg=f"the CA refused this host's request, nothing changed: {params['refused']}")
    if params["certificate"] and params["self_signed"]:
        module.fail_json(msg="certificate and self_signed=true are mutually exclusive")
    try:
        result = install(
            Store(params["pki_dir"], params["group"]),
            certificate=params["certificate"],
            chain=params["chain"],
            private_key=params["private_key"],
            self_signed=params["self_signed"],
            common_name=params["common_name"],
            sans=params["sans"],
            required_names=params["required_names"],
            validity_days=params["validity_days"],
            trust_anchors=load_trust_anchors(params["trust_store"]) if params["certificate"] else [],
            check_mode=module.check_mode,
        )
    except PKIError as exc:
        module.fail_json(msg=f"certificate rejected, nothing changed: {exc}")
    facts = result.pop("facts")
    module.exit_json(ansible_facts={"ftps_pki_certificate": facts}, **result)


if __name__ == "__main__":
    main()
