#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: sign every host's CSR with the internal CA in the store, in one call."""

DOCUMENTATION = r"""
---
module: ftps_pki_sign
short_description: Sign a batch of server CSRs with the ftps-kit internal CA
description:
  - Loads the CA once and signs every request in one call, so a fleet's signing step is a single
    module run.
  - The controller decides the certificate's names. The SANs come from O(requests[].sans), not from
    the CSR. The CSR contributes only its public key (its signature is checked).
  - A bad request fails only its host (returned in RV(errors)); the other hosts get certificates.
extends_documentation_fragment:
  - ftpskit.ftps.attributes
  - ftpskit.ftps.cryptography
  - ftpskit.ftps.ca_key
options:
  ca_path:
    description: Directory of the CA (see M(ftpskit.ftps.ftps_pki_ca)).
    type: path
    required: true
  validity_days:
    description: Default validity of the issued certificates, in days.
    type: int
    default: 90
  requests:
    description: One entry per host; entries with an empty O(requests[].csr) are skipped.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: The inventory hostname (the key of RV(certificates)).
        type: str
        required: true
      csr:
        description: The host's CSR (PEM).
        type: str
        default: ""
      sans:
        description: The subject alternative names to certify.
        type: list
        elements: str
        required: true
      common_name:
        description: Subject common name; defaults to O(requests[].host).
        type: str
      validity_days:
        description: Validity for this host, overriding O(validity_days).
        type: int
attributes:
  check_mode:
    description: Reports the certificates it would issue and issues none.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Sign the CSRs of every host in one call
  ftpskit.ftps.ftps_pki_sign:
    ca_path: "{{ ftps_pki_ca_dir }}"
    requests: >-
      {{ ansible_play_batch | map('extract', hostvars, '__ftps_pki_sign_request')
         | select('defined') | list }}
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
certificates:
  description: Issued certificates (PEM) by host.
  returned: always
  type: dict
  sample: {"srv1": "-----BEGIN CERTIFICATE-----\n..."}
errors:
  description: Hosts whose request was refused, with the reason.
  returned: always
  type: dict
  sample: {"srv2": "invalid DNS name in subject alternative name 'bad name'"}
chain:
  description: The chain to install with each certificate (the CA certificate, PEM).
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
signed:
  description: How many certificates were issued (or would be, in check mode).
  returned: always
  type: int
  sample: 1000
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import (
    CA_KEY_ARGUMENT_SPEC,
    CertificateAuthority,
    sign_batch,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import cert_to_pem
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ca_path": {"type": "path", "required": True},
            **CA_KEY_ARGUMENT_SPEC,
            "validity_days": {"type": "int", "default": 90},
            "requests": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "host": {"type": "str", "required": True},
                    "csr": {"type": "str", "default": ""},
                    "sans": {"type": "list", "elements": "str", "required": True},
                    "common_name": {"type": "str"},
                    "validity_days": {"type": "int"},
                },
            },
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    todo = [r for r in params["requests"] if r.get("csr")]
    if not todo:
        module.exit_json(changed=False, certificates={}, errors={}, chain="", signed=0)
    names = sorted(r["host"] for r in todo)
    diff = {"before": {"issued": []}, "after": {"issued": names}}
    if module.check_mode:
        module.exit_json(changed=True, certificates={}, errors={}, chain="", signed=len(todo), diff=diff)
    try:
        ca = CertificateAuthority(params["ca_path"]).load(params["passphrase"])
    except PKIError as exc:
        module.fail_json(msg=f"internal CA in {params['ca_path']}: {exc}")
    result = sign_batch(ca, todo, params["validity_days"])
    module.exit_json(
        changed=bool(result["certificates"]),
        certificates=result["certificates"],
        errors=result["errors"],
        chain=cert_to_pem(ca.cert),
        signed=len(result["certificates"]),
        diff=diff,
    )


if __name__ == "__main__":
    main()
