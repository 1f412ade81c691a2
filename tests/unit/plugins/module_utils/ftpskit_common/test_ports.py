"""One rule for the passive port range, shared by ftpsd's config check, ftps_server's preflight
(the ``ftps_port_range_problem`` filter) and ftps_firewall's preflight.

The table runs through all three entry points that are Python (the shared function, the filter,
the daemon's ``parse_config``) and each must give the same verdict; the roles' preflights call the
filter (test_preflight.py runs them through Ansible).
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.filter.ftps_ports import ftps_port_range_problem
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.ports import (
    PASSIVE_PORTS_MIN,
    passive_ports_problem,
    port_range_problem,
)

from ftpsd.config import ConfigError, parse_config

# range -> (good as a passive range, good as a firewall range)
CASES = {
    "default": ([50000, 50099], True, True),
    "one-port": ([1024, 1024], True, True),
    "top": ([65535, 65535], True, True),
    "below-1024": ([1023, 2000], False, True),
    "privileged": ([80, 200], False, True),
    "zero": ([0, 10], False, False),
    "above-65535": ([50000, 65536], False, False),
    "inverted": ([50099, 50000], False, False),
    "one": ([50000], False, False),
    "three": ([1, 2, 3], False, False),
    "bool": ([50000, True], False, False),
    "float": ([50000.0, 50099], False, False),
    "not-a-list": ("50000-50099", False, False),
    "none": (None, False, False),  # the daemon: the key left out, its good default
}


@pytest.mark.parametrize(("value", "passive_ok", "firewall_ok"), CASES.values(), ids=CASES.keys())
def test_one_verdict_everywhere(value: object, passive_ok: bool, firewall_ok: bool) -> None:
    assert (passive_ports_problem(value) == "") is passive_ok
    assert (port_range_problem(value) == "") is firewall_ok
    assert ftps_port_range_problem(value, "passive") == passive_ports_problem(value)
    assert ftps_port_range_problem(value, "firewall") == port_range_problem(value)
    daemon_ok = passive_ok or value is None  # no key: the daemon's default
    try:
        parse_config({"server": {} if value is None else {"passive_ports": value}})
    except ConfigError as err:
        daemon = [p for p in err.problems if p.startswith("server.passive_ports:")]
        assert daemon == ([] if daemon_ok else [f"server.passive_ports: {passive_ports_problem(value)}"])
    else:
        assert daemon_ok


def test_missing_key_is_the_good_default() -> None:
    assert parse_config({"server": {}}).server.passive_ports == (50000, 50099)


def test_sentences_name_the_rule_and_the_value() -> None:
    assert passive_ports_problem([50099, 50000]) == (
        "must be [first, last] with 1024 <= first <= last <= 65535;"
        " got [50099, 50000] (inverted: first > last)"
    )
    assert port_range_problem([0, 10]) == (
        "must be [first, last] with 1 <= first <= last <= 65535; got [0, 10]"
    )
    assert PASSIVE_PORTS_MIN == 1024


def test_filter_reads_digit_strings_as_the_template_writes_them() -> None:
    assert ftps_port_range_problem(["50000", "50099"]) == ""
    assert "got [50000, 'x']" in ftps_port_range_problem(["50000", "x"])


def test_filter_refuses_an_unknown_purpose() -> None:
    with pytest.raises(AnsibleFilterError, match="purpose must be one of"):
        ftps_port_range_problem([50000, 50099], "ssh")
