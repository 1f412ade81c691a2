#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: serve ACME http-01 tokens from a short-lived responder on the server."""

DOCUMENTATION = r"""
---
module: ftps_pki_acme_http01
short_description: Start or stop the ACME http-01 responder and its firewall window on a server
description:
  - O(state=present) writes the order's tokens under C(/run/ftps-kit-acme/), opens TCP
    O(port) in the kit's nftables table (one rule, inserted first, found again by its comment),
    starts the transient systemd unit C(ftps-kit-acme-http01) that answers exactly
    C(GET /.well-known/acme-challenge/<token>) and checks from the server itself that every token
    is served. The unit stops by itself after O(timeout) seconds (C(RuntimeMaxSec)); its
    C(ExecStopPost) closes the firewall window, also when the controller never comes back.
  - O(state=absent) stops the responder, removes the window rule and the tokens.
  - Without the kit's table (ftps_firewall not applied yet) no window is needed and none is made.
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
options:
  state:
    description: Start (V(present)) or stop and clean up (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  tokens:
    description: The tokens to serve, C({identifier, token, key_authorization}) each.
    type: list
    elements: dict
    default: []
  port:
    description:
      - TCP port the responder listens on.
      - The CA always connects to port 80; another port only behind a redirect or NAT.
    type: int
    default: 80
  bind_address:
    description: Address to listen on; empty for every address of the server.
    type: str
    default: ""
  timeout:
    description: Hard limit of the responder's life, in seconds.
    type: int
    default: 300
  firewall:
    description: Open (and close) the port in the kit's nftables table.
    type: bool
    default: true
  nft_table:
    description: The kit's nftables table (family inet).
    type: str
    default: ftps_kit
  nft_chain:
    description: Its input chain.
    type: str
    default: input
attributes:
  check_mode:
    description: Reports that the responder would start or stop; changes nothing.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Serve the order's tokens
  ftpskit.ftps.ftps_pki_acme_http01:
    tokens: "{{ __ftps_pki_acme_challenges.tokens[inventory_hostname] }}"
    port: 80

- name: Stop the responder and close the port
  ftpskit.ftps.ftps_pki_acme_http01:
    state: absent
"""

RETURN = r"""
window_opened:
  description: Whether a firewall rule was inserted for the port (false without the kit's table).
  returned: state=present
  type: bool
  sample: true
window_rules_removed:
  description: How many window rules were removed.
  returned: state=absent
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.acme_http01 import (
    RUN_DIR,
    Http01Error,
    absent,
    present,
    set_runner,
    unit_active,
    window_rules,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            # Key authorizations are public by design: the responder serves them over plain HTTP.
            "tokens": {"type": "list", "elements": "dict", "default": [], "no_log": False},
            "port": {"type": "int", "default": 80},
            "bind_address": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 300},
            "firewall": {"type": "bool", "default": True},
            "nft_table": {"type": "str", "default": "ftps_kit"},
            "nft_chain": {"type": "str", "default": "input"},
        },
        supports_check_mode=True,
    )
    set_runner(module.run_command)
    params = module.params
    table, chain = params["nft_table"], params["nft_chain"]
    if params["state"] == "absent":
        if module.check_mode:
            import os

            busy = unit_active() or bool(window_rules(table, chain)) or os.path.isdir(RUN_DIR)
            module.exit_json(changed=busy, window_rules_removed=0)
        result = absent(table=table, chain=chain)
        module.exit_json(**result)
    if not params["tokens"]:
        module.fail_json(msg="state=present needs the order's tokens")
    if not 1 <= params["port"] <= 65535 or params["timeout"] < 10:
        module.fail_json(msg="port must be 1-65535 and timeout at least 10 seconds")
    if module.check_mode:
        module.exit_json(changed=True, window_opened=False)
    try:
        result = present(
            params["tokens"],
            bind=params["bind_address"],
            port=params["port"],
            timeout=params["timeout"],
            table=table,
            chain=chain,
            firewall=params["firewall"],
        )
    except (Http01Error, OSError) as exc:
        module.fail_json(msg=f"the http-01 challenge cannot be served, nothing changed: {exc}")
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
