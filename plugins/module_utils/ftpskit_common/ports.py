"""The one rule for a port range ``[first, last]``: the passive range of ftpsd and a firewall range.

Standard library only. The daemon's config check (``ftpsd.config``), the ftps_server role's
preflight and the ftps_firewall role's preflight (both through the ``ftpskit.ftps.ftps_port_range_problem``
filter) call :func:`port_range_problem`; nobody else writes the rule.

The passive range starts at :data:`PASSIVE_PORTS_MIN` (1024): the whole range is opened in the
firewall (site.yml hands it to ftps_firewall), and a range reaching below 1024 would open the
well-known ports other services listen on (22, 25, 80 ...); ftpsd could bind them (its unit grants
CAP_NET_BIND_SERVICE for the control ports), so only this rule keeps them out. A firewall rule's
own ranges may start at 1: it opens what its author names, a privileged port included.
:data:`PASSIVE_PORTS_DEFAULT` is ftpsd's own default range (a hand-written configuration).
"""

from __future__ import annotations

from typing import Any

PORT_MAX = 65535
PASSIVE_PORTS_MIN = 1024
# ftpsd's passive range when its configuration names none. The ftps_server role's default
# (ftps_server_passive_ports) is the same range, for Ansible; tests/unit/docs/test_design_contracts.py
# keeps the two equal.
PASSIVE_PORTS_DEFAULT = (50000, 50099)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def port_range_problem(value: Any, low: int = 1) -> str:
    """What is wrong with ``value`` as an inclusive range ``[first, last]``, or "" when nothing.

    The rule: a list of exactly two integers (not booleans, not strings) with
    ``low <= first <= last <= 65535``. The sentence names the rule and the value (``got ...``);
    the caller puts the setting's name in front.
    """
    rule = f"must be [first, last] with {low} <= first <= last <= {PORT_MAX}"
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(p) for p in value):
        return f"{rule}; got {value!r}"
    first, last = value
    if first > last:
        return f"{rule}; got {list(value)!r} (inverted: first > last)"
    if first < low or last > PORT_MAX:
        return f"{rule}; got {list(value)!r}"
    return ""


def passive_ports_problem(value: Any) -> str:
    """:func:`port_range_problem` with the passive range's floor, :data:`PASSIVE_PORTS_MIN`."""
    return port_range_problem(value, PASSIVE_PORTS_MIN)
