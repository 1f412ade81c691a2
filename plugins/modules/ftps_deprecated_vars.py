#!/usr/bin/python
# Copyright: ftps-kit contributors
# MIT License
"""Documentation of the action plugin ftps_deprecated_vars (plugins/action/): it runs on the
controller only, so this module has no code of its own."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ftps_deprecated_vars
short_description: Warn about every deprecated variable name in use, as an Ansible deprecation
description:
  - For each key of O(aliases) that is a variable of the host (inventory, play, extra vars, ...),
    shows Ansible's own deprecation warning, C([DEPRECATION WARNING]) with C(This feature will be
    removed from collection 'ftpskit.ftps' version) O(version), unless C(deprecation_warnings) is off.
  - Ansible shows each warning once per run, however many hosts or entry points run the task.
  - Runs on the controller (an action plugin); contacts no host and changes nothing.
options:
  aliases:
    description: The deprecated variable names, each mapped to what replaces it (shown after C(use)).
    type: dict
    required: true
  version:
    description: The collection version that removes the deprecated names.
    type: str
    required: true
  see:
    description: Where the replacement is documented, added to each message in parentheses.
    type: str
    default: ""
extends_documentation_fragment:
  - ftpskit.ftps.attributes.no_diff
attributes:
  check_mode:
    description: >-
      Changes nothing, so it warns in check mode too. Runs on the controller (an action plugin) and
      contacts no host.
notes:
  - The kit's one warner. The roles ftps_fleet, ftps_server and ftps_users run it with their maps
    of old to new names (their C(vars/main.yml)); ftps_fleet warns, in each workflow, only about the
    old names that workflow reads.
author:
  - ftps-kit contributors (@ftps-kit)
"""

EXAMPLES = r"""
- name: Warn about the deprecated names in use
  ftpskit.ftps.ftps_deprecated_vars:
    aliases:
      ftps_rotate_serial: ftps_fleet_rotate_serial
    version: 0.3.0
    see: roles/ftps_fleet/README.md
"""

RETURN = r"""
deprecated:
  description: The deprecated names in use on this host, in the order of O(aliases).
  returned: always
  type: list
  elements: str
  sample: [ftps_rotate_serial]
"""
