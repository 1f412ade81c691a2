#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""Ansible module: read this host's names and addresses and its intended certificate SANs."""

DOCUMENTATION = r"""
---
module: ftps_pki_identity
short_description: Read a server's own names and addresses and the SAN set its certificate must carry
description:
  - Runs on the server and reads, there and then, its fully qualified name (as
    C(socket.getfqdn()) resolves it) and the source addresses of its default IPv4 and IPv6 routes
    (what C(ip route get) reports; empty when there is no such route).
  - Returns RV(sans), the exact subject alternative names a certificate for this host must carry,
    O(hostname), the FQDN (O(fqdn)), the default addresses (O(addresses)), then O(extra_sans);
    blanks and localhost names dropped, duplicates removed, in the canonical spelling
    (C(DNS:lower.case), C(IP:address)).
  - Nothing comes from Ansible facts. On ansible-core 2.21 a C(run_once) task in an earlier play
    can make one host's facts show on every host of the run (ansible/ansible#87415), and a fact
    cache can be older than an address change; registered results of this module belong to the
    host it ran on.
  - The one definition used by M(ftpskit.ftps.ftps_pki_request) (issuance), the rotation gate and
    the certificate report (C(ftpskit_common.sans)). Standard library only, so it runs before the
    host has C(python3-cryptography).
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
options:
  hostname:
    description: The host's inventory name, the first SAN. Empty = none.
    type: str
    default: ""
  fqdn:
    description: Add the host's fully qualified name.
    type: bool
    default: true
  addresses:
    description: Add the source addresses of the host's default IPv4 and IPv6 routes.
    type: bool
    default: true
  extra_sans:
    description: More names or addresses (C(DNS:)/C(IP:) prefixes optional), added as they are.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Read-only; the same in check mode.
  diff_mode:
    description: Changes nothing, so there is no diff.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Read this server's own identity
  ftpskit.ftps.ftps_pki_identity:
    hostname: "{{ inventory_hostname }}"
    extra_sans: [ftp.example.internal]
  register: __identity
"""

RETURN = r"""
sans:
  description: The SAN set a certificate for this host must carry, exactly, canonical spelling.
  returned: always
  type: list
  elements: str
  sample: ["DNS:ftp1", "DNS:ftp1.example.internal", "IP:10.213.0.11"]
identity:
  description: What was read on the host.
  returned: always
  type: dict
  sample: {"hostname": "ftp1", "fqdn": "ftp1.example.internal", "ipv4": "10.213.0.11", "ipv6": ""}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import (
    intended_sans,
    read_host_identity,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "hostname": {"type": "str", "default": ""},
            "fqdn": {"type": "bool", "default": True},
            "addresses": {"type": "bool", "default": True},
            "extra_sans": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    identity = read_host_identity()
    try:
        sans = intended_sans(
            params["hostname"],
            identity,
            hostname_enabled=bool(params["hostname"]),
            fqdn_enabled=params["fqdn"],
            addresses_enabled=params["addresses"],
            extra_sans=params["extra_sans"],
        )
    except ValueError as exc:
        module.fail_json(msg=f"this host's names cannot go into a certificate: {exc}", identity=identity)
    module.exit_json(changed=False, sans=sans, identity=identity)


if __name__ == "__main__":
    main()
