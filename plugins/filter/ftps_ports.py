# Copyright: ftps-kit contributors
# MIT License
"""``value | ftpskit.ftps.ftps_port_range_problem(purpose)``: what is wrong with a port range
``[first, last]``, or "" when nothing.

The rule is ``ftpskit_common.ports.port_range_problem`` (plugins/module_utils/ftpskit_common), the
function ftpsd's config check applies to ``server.passive_ports``; ftps_server's preflight (purpose
``passive``: first >= 1024) and ftps_firewall's (purpose ``firewall``: first >= 1) call it on the
controller before anything changes. Digit strings count as their integers, as the role's template
(``map('int')``) writes them.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.ports import (
    passive_ports_problem,
    port_range_problem,
)
from ansible_collections.ftpskit.ftps.plugins.plugin_utils.role_values import as_role_int

_PURPOSES = {"passive": passive_ports_problem, "firewall": port_range_problem}


def ftps_port_range_problem(value: Any, purpose: str = "passive") -> str:
    if purpose not in _PURPOSES:
        raise AnsibleFilterError(
            f"ftps_port_range_problem: purpose must be one of {sorted(_PURPOSES)}, got {purpose!r}"
        )
    if isinstance(value, (list, tuple)):
        value = [as_role_int(port) for port in value]
    return _PURPOSES[purpose](value)


class FilterModule:
    def filters(self) -> dict:
        return {"ftps_port_range_problem": ftps_port_range_problem}
