#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: sign client-certificate CSRs with the client CA in the kit's store."""

DOCUMENTATION = r"""
---
module: ftps_pki_client_sign
short_description: Issue client certificates from CSRs with the ftps-kit client CA
description:
  - Loads the client CA (C(<store>/client-ca), see docs/client-certificates.md) once and signs every
    request. The certificate names exactly O(requests[].identity) (SAN e-mail, and CN when it fits),
    carries the clientAuth EKU only, is not a CA, and is valid for O(validity_days) (never beyond the CA).
  - Every CSR is checked before anything is written - valid signature, a supported key (ECDSA P-256/P-384,
    RSA 2048 bits or more), no basicConstraints CA:TRUE, and naming O(requests[].identity) and nothing
    else. A bad request fails only its entry (RV(errors)); with O(fail_on_error) the module fails and
    signs nothing when any entry is bad.
  - Every certificate issued is kept in C(<path>/issued/<serial>.pem), so revocation by user and the
    fleet report can find it.
extends_documentation_fragment:
  - ftpskit.ftps.client_ca
  - ftpskit.ftps.attributes.no_diff
  - ftpskit.ftps.cryptography
  - ftpskit.ftps.ca_key
options:
  validity_days:
    description: Validity of the issued certificates, in days.
    type: int
    default: 30
  fail_on_error:
    description: Fail, and sign nothing, when any request is refused.
    type: bool
    default: false
  requests:
    description: One entry per certificate; entries with an empty O(requests[].csr) are skipped.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The key of RV(certificates) (an inventory host, or the person's identity).
        type: str
        required: true
      identity:
        description:
          - The identity the certificate names (an e-mail address; the account's C(certificate_identity)).
        type: str
        required: true
      csr:
        description: The CSR (PEM).
        type: str
        default: ""
attributes:
  check_mode:
    description: Checks every CSR and reports what it would issue; issues nothing.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Sign alice's CSR with the client CA
  ftpskit.ftps.ftps_pki_client_sign:
    path: /var/lib/ftps-kit/client-ca
    fail_on_error: true
    requests:
      - name: alice
        identity: alice@example.org
        csr: "{{ lookup('ansible.builtin.file', 'alice.csr') }}"
  delegate_to: "{{ groups['ftps_ca'] | first }}"
  run_once: true
"""

RETURN = r"""
certificates:
  description: Issued certificates (PEM) by request name.
  returned: always
  type: dict
  sample: {"alice": "-----BEGIN CERTIFICATE-----\n..."}
errors:
  description: Requests that were refused, with the reason.
  returned: always
  type: dict
  sample: {"bob": "CSR of bob names ['mallory@example.org'], not exactly 'bob@example.org': refused"}
chain:
  description: The client CA certificate (PEM).
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\n..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CA_KEY_ARGUMENT_SPEC
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import cert_to_pem
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.client import (
    CLIENT_CA_ARGUMENT_SPEC,
    ClientCA,
    check_client_csr,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CLIENT_CA_ARGUMENT_SPEC,
            **CA_KEY_ARGUMENT_SPEC,
            "validity_days": {"type": "int", "default": 30},
            "fail_on_error": {"type": "bool", "default": False},
            "requests": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "identity": {"type": "str", "required": True},
                    "csr": {"type": "str", "default": ""},
                },
            },
        },
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    todo = [r for r in params["requests"] if r.get("csr")]
    if not todo:
        module.exit_json(changed=False, certificates={}, errors={}, chain="")
    try:
        store = ClientCA(params["path"], params["passphrase"]).load()
    except PKIError as exc:
        module.fail_json(msg=f"client CA in {params['path']}: {exc}")
    # every CSR is checked before any certificate is issued
    errors: dict[str, str] = {}
    for req in todo:
        try:
            check_client_csr(req["csr"], req["identity"], f"CSR of {req['name']}")
        except PKIError as exc:
            errors[req["name"]] = str(exc)
    if errors and params["fail_on_error"]:
        module.fail_json(msg="; ".join(f"{k}: {v}" for k, v in sorted(errors.items())), errors=errors)
    good = [r for r in todo if r["name"] not in errors]
    if module.check_mode:
        module.exit_json(changed=bool(good), certificates={}, errors=errors, chain=cert_to_pem(store.ca.cert))
    certificates = {}
    for req in good:
        try:
            certificates[req["name"]] = store.sign(
                req["csr"], req["identity"], params["validity_days"], req["name"]
            )
        except PKIError as exc:
            errors[req["name"]] = str(exc)
    module.exit_json(
        changed=bool(certificates), certificates=certificates, errors=errors, chain=cert_to_pem(store.ca.cert)
    )


if __name__ == "__main__":
    main()
