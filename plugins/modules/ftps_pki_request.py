#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: decide whether a server needs a new certificate; if so, make its key and CSR."""

DOCUMENTATION = r"""
---
module: ftps_pki_request
short_description: Decide on re-issue and make a server key and CSR on the server itself
description:
  - Reads the server's current certificate and key (C(<pki_dir>/current)) and applies the renewal
    rules of docs/pki.md. When a new certificate is needed it generates a key and a CSR on the
    host and keeps them in C(<pki_dir>/pending/) (root only, never served); the key never leaves
    the host. Only the CSR is returned.
  - A pending key of the wanted type whose CSR carries the wanted names is reused, so the CSR of
    an unsigned request stays the same across runs.
  - Nothing serving changes here; M(ftpskit.ftps.ftps_pki_install) installs the certificate.
extends_documentation_fragment:
  - ftpskit.ftps.generations
  - ftpskit.ftps.attributes
  - ftpskit.ftps.cryptography.managed_host
  - ftpskit.ftps.host_key
options:
  common_name:
    description: Subject common name of the CSR.
    type: str
    required: true
  sans:
    description: Subject alternative names wanted (C(DNS:name), C(IP:addr) or bare names/addresses).
    type: list
    elements: str
    required: true
  renew_before_days:
    description: Re-issue when the certificate expires within this many days.
    type: int
    default: 30
  rotate_key:
    description: Make a new key on every re-issue (otherwise the current key is reused when it still fits).
    type: bool
    default: true
  force:
    description: Re-issue (with a new key) even if nothing else requires it. Not idempotent by design.
    type: bool
    default: false
  issuer:
    description:
      - The expected issuer's certificate (PEM); a certificate it did not sign is re-issued.
      - Empty to skip the check.
    type: str
    default: ""
  self_signed:
    description: The certificate is expected to be self-signed.
    type: bool
    default: false
  extra_reasons:
    description:
      - Reasons to re-issue decided elsewhere, e.g. an ACME CA's renewal window (RFC 9773); they
        count like the renewal rules when the host has a certificate.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Reports whether a new certificate is needed; creates no key and no CSR.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Make a key and a CSR if the certificate needs re-issue
  ftpskit.ftps.ftps_pki_request:
    common_name: "{{ inventory_hostname }}"
    sans: ["{{ inventory_hostname }}", "{{ ansible_facts.fqdn }}", "10.213.0.11"]
    key_type: ecdsa-p256
    issuer: "{{ __ftps_pki_ca.certificate }}"
  register: __ftps_pki_request
"""

RETURN = r"""
reissue:
  description: Whether a new certificate is needed.
  returned: always
  type: bool
  sample: true
reasons:
  description: Why (one sentence per renewal rule that fired; empty when none).
  returned: always
  type: list
  elements: str
  sample: ["expiring: valid until 2026-12-01T00:00:00Z, within the renewal threshold of 30 days"]
csr:
  description: The CSR to sign (PEM); empty when none is needed, and in check mode.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE REQUEST-----\n..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import RENEW_BEFORE_DAYS
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import load_certificate
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import KEY_TYPE_ARGUMENT_SPEC
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.steps import request
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.store import STORE_ARGUMENT_SPEC, Store
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "common_name": {"type": "str", "required": True},
            "sans": {"type": "list", "elements": "str", "required": True},
            **KEY_TYPE_ARGUMENT_SPEC,
            "renew_before_days": {"type": "int", "default": RENEW_BEFORE_DAYS},
            "rotate_key": {"type": "bool", "default": True},
            "force": {"type": "bool", "default": False},
            "issuer": {"type": "str", "default": ""},
            "self_signed": {"type": "bool", "default": False},
            "extra_reasons": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    require_cryptography(module, "python3-cryptography")
    params = module.params
    try:
        issuer = load_certificate(params["issuer"], "the issuer certificate") if params["issuer"] else None
        result = request(
            Store(params["pki_dir"], params["group"]),
            common_name=params["common_name"],
            sans=params["sans"],
            key_type=params["key_type"],
            renew_before_days=params["renew_before_days"],
            rotate_key=params["rotate_key"],
            force=params["force"],
            issuer=issuer,
            self_signed=params["self_signed"],
            check_mode=module.check_mode,
            extra_reasons=params["extra_reasons"],
        )
    except PKIError as exc:
        module.fail_json(msg=f"{params['common_name']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
