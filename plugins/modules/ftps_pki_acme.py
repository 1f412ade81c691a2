#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: drive ACME orders for a batch of servers' CSRs from the controller."""

DOCUMENTATION = r"""
---
module: ftps_pki_acme
short_description: ACME account, renewal information, orders and certificates for server CSRs
description:
  - Runs on the controller (C(run_once=true), C(delegate_to=localhost)) for every host of the
    play in one call. The servers' keys never come here, only their CSRs and certificates.
  - The account key is created once in O(account_dir) (ECDSA P-256, 0600 in a 0700 directory,
    encrypted with O(account_passphrase) when set) and registered at the CA the first time an
    order is due; the account URL is kept beside it, so runs with nothing due contact the CA only
    for renewal information.
  - O(phase=renewal_info) reads ACME Renewal Information (RFC 9773) for O(certificates) and
    returns the hosts whose suggested window has opened (RV(due)); a CA without C(renewalInfo)
    in its directory yields none.
  - O(phase=challenges) creates one order per entry of O(requests) with a CSR and returns the
    http-01 tokens each server must serve (RV(tokens)) and the orders (RV(orders)); for dns-01 it
    calls O(dns_hook) C(add) for each TXT record.
  - O(phase=certificates) answers the challenges of O(orders), waits for the CA, finalizes with
    the CSR and returns the certificates and chains; for dns-01 it calls O(dns_hook) C(remove).
  - A host's failure (challenge unreachable, CAA, rate limit, refused name...) never fails the
    module; it is returned in RV(errors) as a sentence for the operator.
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
options:
  phase:
    description: Which step of the protocol to run.
    type: str
    choices: [renewal_info, challenges, certificates]
    required: true
  directory_url:
    description: The ACME directory; empty for Let's Encrypt (production, or staging with O(staging)).
    type: str
    default: ""
  staging:
    description: With an empty O(directory_url), use Let's Encrypt's staging directory.
    type: bool
    default: false
  ca_bundle:
    description:
      - PEM bundle the directory's TLS certificate must verify against.
      - Empty for the default of Python's requests (certifi).
    type: path
    default: ""
  account_dir:
    description: Where account keys live, one subdirectory per directory URL.
    type: path
    required: true
  account_passphrase:
    description: Passphrase encrypting the account key at rest.
    type: str
    default: ""
  email:
    description: Contact e-mail of the account (registered with the account only).
    type: str
    default: ""
  agree_terms:
    description: Agree to the CA's terms of service when the account is created.
    type: bool
    default: false
  eab_kid:
    description: External account binding key identifier (commercial CAs).
    type: str
    default: ""
  eab_hmac_key:
    description: External account binding HMAC key (base64url).
    type: str
    default: ""
  challenge_type:
    description: How the servers prove control of their names.
    type: str
    choices: [http-01, dns-01]
    default: http-01
  http01_port:
    description: The responder's port (used in error messages).
    type: int
    default: 80
  dns_hook:
    description: Executable on the controller called as C(<hook> add|remove <name> <value>) for dns-01.
    type: path
    default: ""
  dns_propagation_seconds:
    description: Wait after publishing TXT records before the CA is told to look.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for validation and issuance, per order.
    type: int
    default: 120
  certificates:
    description: For O(phase=renewal_info), C({host, certificate}) per host.
    type: list
    elements: dict
    default: []
  requests:
    description: For O(phase=challenges), C({host, csr}) per host; an empty csr is skipped.
    type: list
    elements: dict
    default: []
  orders:
    description: For O(phase=certificates), RV(orders) of the challenges phase (hosts still in the play).
    type: dict
    default: {}
attributes:
  check_mode:
    description: Creates no key or account and orders nothing; reports what it would do.
requirements:
  - acme (certbot's ACME library) and josepy on the controller
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Order certificates for the queued CSRs
  ftpskit.ftps.ftps_pki_acme:
    phase: challenges
    directory_url: https://acme.example.net/directory
    account_dir: "{{ ftps_pki_acme_account_dir }}"
    requests:
      - host: ftp1
        csr: "{{ hostvars['ftp1'].__ftps_pki_request.csr }}"
  delegate_to: localhost
  run_once: true
  register: __ftps_pki_acme_challenges
"""

RETURN = r"""
due:
  description: phase=renewal_info; host -> why the CA's renewal window says renew now.
  returned: always
  type: dict
  sample: {"ftp1": "ari: the CA suggests renewal between 2026-12-01T00:00:00Z and 2026-12-03T00:00:00Z"}
renewal_info:
  description: phase=renewal_info; host -> window_start, window_end, chosen, explanation_url.
  returned: always
  type: dict
ari_available:
  description: phase=renewal_info; whether the CA's directory offers renewalInfo.
  returned: always
  type: bool
tokens:
  description: phase=challenges; host -> [{identifier, token, key_authorization}] to serve over http-01.
  returned: always
  type: dict
orders:
  description: phase=challenges; host -> the order's state for phase=certificates.
  returned: always
  type: dict
certificates:
  description: phase=certificates; host -> certificate (PEM).
  returned: always
  type: dict
chains:
  description: phase=certificates; host -> issuer chain (PEM).
  returned: always
  type: dict
errors:
  description: host -> why no certificate, one sentence for the operator.
  returned: always
  type: dict
account:
  description: The account key's path and whether it or the registration is new.
  returned: always
  type: dict
  sample:
    key: inventories/prod/.ftps-kit/pki/acme/acme-v02.api.letsencrypt.org_directory/account.key
    created: false
    registered: false
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.acme import (
    ACME_IMP_ERR,
    HAS_ACME,
    Account,
    AcmeError,
    Connection,
    directory_url,
    phase_certificates,
    phase_challenges,
    phase_renewal_info,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "phase": {
                "type": "str",
                "choices": ["renewal_info", "challenges", "certificates"],
                "required": True,
            },
            "directory_url": {"type": "str", "default": ""},
            "staging": {"type": "bool", "default": False},
            "ca_bundle": {"type": "path", "default": ""},
            "account_dir": {"type": "path", "required": True},
            "account_passphrase": {"type": "str", "default": "", "no_log": True},
            "email": {"type": "str", "default": ""},
            "agree_terms": {"type": "bool", "default": False},
            "eab_kid": {"type": "str", "default": ""},
            "eab_hmac_key": {"type": "str", "default": "", "no_log": True},
            "challenge_type": {"type": "str", "choices": ["http-01", "dns-01"], "default": "http-01"},
            "http01_port": {"type": "int", "default": 80},
            "dns_hook": {"type": "path", "default": ""},
            "dns_propagation_seconds": {"type": "int", "default": 0},
            "timeout": {"type": "int", "default": 120},
            "certificates": {"type": "list", "elements": "dict", "default": []},
            "requests": {"type": "list", "elements": "dict", "default": []},
            "orders": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    if not HAS_ACME:
        module.fail_json(msg=missing_required_lib("acme (pip install acme)"), exception=ACME_IMP_ERR)
    p = module.params
    url = directory_url(p["directory_url"], p["staging"])
    result = {
        "changed": False,
        "due": {},
        "renewal_info": {},
        "ari_available": False,
        "tokens": {},
        "orders": {},
        "certificates": {},
        "chains": {},
        "errors": {},
    }
    if p["phase"] == "renewal_info":
        out = phase_renewal_info(Connection(url, p["ca_bundle"]), p["certificates"])
        for warning in out["warnings"]:
            module.warn(warning)
        result.update(due=out["due"], renewal_info=out["info"], ari_available=out["available"])
        module.exit_json(**result)

    account = Account(p["account_dir"], url)
    wanted = [r for r in p["requests"] if r.get("csr")] if p["phase"] == "challenges" else list(p["orders"])
    if not wanted:
        result["account"] = {"key": account.key_path, "created": False, "registered": False}
        module.exit_json(**result)
    try:
        created = account.ensure(p["account_passphrase"], module.check_mode)
    except (AcmeError, OSError) as exc:
        module.fail_json(msg=f"ACME account: {exc}")
    result["account"] = {"key": account.key_path, "created": created, "registered": False}
    result["changed"] = created
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)
    conn = Connection(url, p["ca_bundle"], account, timeout=30)
    try:
        result["account"]["registered"] = conn.register(
            email=p["email"],
            agree_terms=p["agree_terms"],
            eab_kid=p["eab_kid"],
            eab_hmac_key=p["eab_hmac_key"],
        )
    except AcmeError as exc:
        # Every host that wanted a certificate fails with the reason; the current ones keep serving.
        hosts = [r["host"] for r in wanted] if p["phase"] == "challenges" else wanted
        result["errors"] = {host: str(exc) for host in hosts}
        result["changed"] = created
        module.exit_json(**result)
    if p["phase"] == "challenges":
        out = phase_challenges(
            conn,
            wanted,
            challenge_type=p["challenge_type"],
            port=p["http01_port"],
            dns_hook=p["dns_hook"],
            dns_propagation_seconds=p["dns_propagation_seconds"],
            run=module.run_command,
        )
        result.update(orders=out["orders"], tokens=out["tokens"], errors=out["errors"])
        result["changed"] = bool(out["orders"]) or created or result["account"]["registered"]
    else:
        out = phase_certificates(
            conn,
            p["orders"],
            challenge_type=p["challenge_type"],
            port=p["http01_port"],
            timeout=p["timeout"],
            dns_hook=p["dns_hook"],
            run=module.run_command,
        )
        for warning in out["warnings"]:
            module.warn(warning)
        result.update(certificates=out["certificates"], chains=out["chains"], errors=out["errors"])
        result["changed"] = bool(out["certificates"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
