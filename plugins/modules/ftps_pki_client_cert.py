#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: a client certificate on a managed client host (key and CSR made there)."""

DOCUMENTATION = r"""
---
module: ftps_pki_client_cert
short_description: Request and install a client certificate on a managed client host
description:
  - O(state=request) decides whether the host's client certificate (C(<path>/cert.pem)) must be
    re-issued - none yet, another identity, not issued by O(issuer), not clientAuth-only, or expiring
    within O(renew_before_days) - and if so makes a key on the host (C(<path>/pending-key.pem),
    0600, never leaves it) and returns its CSR. A pending key of the wanted type is reused, so an
    unsigned request stays the same across runs.
  - O(state=install) checks O(certificate) (for the pending or current key, naming O(identity),
    issued by O(issuer), clientAuth only) and only then installs it - C(key.pem) (0600) and
    C(cert.pem) (0644), each replaced atomically. A refused certificate changes nothing.
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
  - ftpskit.ftps.cryptography.managed_host
  - ftpskit.ftps.host_key
options:
  path:
    description: Directory of the client's key and certificate.
    type: path
    required: true
  identity:
    description: The identity the certificate names (an e-mail address).
    type: str
    required: true
  state:
    description: Make the request, or install the signed certificate.
    type: str
    choices: [request, install]
    default: request
  renew_before_days:
    description: Re-issue when the client certificate expires within this many days.
    type: int
    default: 10
  issuer:
    description:
      - The client CA certificate (PEM); a certificate it did not sign is re-issued, and never installed.
    type: str
    required: true
  certificate:
    description: The signed certificate (PEM), for O(state=install).
    type: str
    default: ""
  owner:
    description: Owner of the key and certificate (the local user who logs in with them); empty keeps root.
    type: str
    default: ""
attributes:
  check_mode:
    description: Reports whether a new certificate is needed or would be installed; writes nothing.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Make a key and CSR when the client certificate needs re-issue
  ftpskit.ftps.ftps_pki_client_cert:
    path: /etc/ftps-kit/client/alice
    identity: alice@example.org
    issuer: "{{ ftps_pki_client_ca_certificate }}"
  register: __request
"""

RETURN = r"""
reissue:
  description: Whether a new certificate is needed (state=request).
  returned: always
  type: bool
  sample: true
reasons:
  description: Why (state=request).
  returned: always
  type: list
  elements: str
  sample: ["no certificate yet"]
csr:
  description: The CSR to sign (PEM); empty when none is needed and in check mode.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE REQUEST-----\n..."
"""

import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import load_certificate
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.client import client_install, client_request
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import KEY_TYPE_ARGUMENT_SPEC
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.support import PKIError, require_cryptography


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "identity": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["request", "install"], "default": "request"},
            **KEY_TYPE_ARGUMENT_SPEC,
            "renew_before_days": {"type": "int", "default": 10},
            "issuer": {"type": "str", "required": True},
            "certificate": {"type": "str", "default": ""},
            "owner": {"type": "str", "default": ""},
        },
        required_if=[("state", "install", ["certificate"])],
        supports_check_mode=True,
    )
    require_cryptography(module, "python3-cryptography")
    params = module.params
    uid = gid = -1
    if params["owner"]:
        try:
            entry = pwd.getpwnam(params["owner"])
        except KeyError:
            module.fail_json(msg=f"owner {params['owner']!r} is not a user on this host")
        uid, gid = entry.pw_uid, entry.pw_gid
    try:
        issuer = load_certificate(params["issuer"], "the client CA certificate")
        if params["state"] == "request":
            result = client_request(
                params["path"],
                params["identity"],
                key_type=params["key_type"],
                renew_before_days=params["renew_before_days"],
                issuer=issuer,
                uid=uid,
                gid=gid,
                check_mode=module.check_mode,
            )
        else:
            result = client_install(
                params["path"],
                params["identity"],
                params["certificate"],
                issuer=issuer,
                uid=uid,
                gid=gid,
                check_mode=module.check_mode,
            )
            result.update(reissue=False, reasons=[], csr="")
    except PKIError as exc:
        module.fail_json(msg=f"client certificate in {params['path']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
