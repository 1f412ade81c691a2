# Copyright: ftps-kit contributors
# MIT License (see pyproject.toml)
"""``lookup('ftpskit.ftps.ftpsd_default', name)``: ftpsd's own default for a setting the roles
share with it, read from its one definition in ``ftpskit_common`` (plugins/module_utils), so the
daemon (a hand-written configuration), the modules and the roles' defaults cannot drift apart."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ftpsd_default
author:
  - ftps-kit contributors (@ftps-kit)
short_description: ftpsd's own default of a setting the roles share with it
description:
  - Returns the default ftpsd applies when its configuration names none, from its one definition
    in C(ftpskit_common) (the daemon, the modules and the roles read the same constant).
  - C(passive_ports) is C(ftpskit_common.ports.PASSIVE_PORTS_DEFAULT), the inclusive passive
    port range C([first, last]); the ftps_server role's C(ftps_server_passive_ports) defaults to it.
  - C(pki_dir) is C(ftpskit_common.layout.PKI_DIR), where ftps_pki keeps a server's certificate
    generations; the ftps_pki role's C(ftps_pki_dir) defaults to it.
  - C(renew_before_days) is C(ftpskit_common.layout.RENEW_BEFORE_DAYS), the renewal window in days;
    the ftps_pki role's C(ftps_pki_renew_before_days) defaults to it.
  - C(users_file) is C(ftpskit_common.passwd.USERS_FILE), where ftpsd reads its users; the
    ftps_server role's C(ftps_server_users_file) defaults to it.
options:
  _terms:
    description: The setting, one of C(passive_ports), C(pki_dir), C(renew_before_days), C(users_file).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Show ftpsd's default passive range
  ansible.builtin.debug:
    msg: "{{ lookup('ftpskit.ftps.ftpsd_default', 'passive_ports') }}"
"""

RETURN = r"""
_raw:
  description:
    - The default of each named setting (a list of two ports for C(passive_ports), a path for
      C(pki_dir) and C(users_file), days for C(renew_before_days)).
  type: list
  elements: raw
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import (
    PKI_DIR,
    RENEW_BEFORE_DAYS,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.passwd import USERS_FILE
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.ports import PASSIVE_PORTS_DEFAULT

DEFAULTS: dict[str, Any] = {
    "passive_ports": list(PASSIVE_PORTS_DEFAULT),
    "pki_dir": PKI_DIR,
    "renew_before_days": RENEW_BEFORE_DAYS,
    "users_file": USERS_FILE,
}


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: Any = None, **kwargs: Any) -> list[Any]:
        unknown = [term for term in terms if term not in DEFAULTS]
        if unknown or not terms:
            raise AnsibleLookupError(
                f"ftpsd_default: name one of {sorted(DEFAULTS)}, got {unknown or 'nothing'}"
            )
        return [DEFAULTS[term] for term in terms]
