"""One reading of a role's value as an integer for the filters that judge it (the renewal window,
a port range): ASCII digit strings are their integers, anything else reaches the rule unchanged
and is named by it; a Unicode digit ('²', which str.isdigit() accepts and int() refuses) is an
error message, never a crash."""

from __future__ import annotations

import pytest
from ansible_collections.ftpskit.ftps.plugins.filter import ftps_ports, ftps_renewal
from ansible_collections.ftpskit.ftps.plugins.plugin_utils.role_values import as_role_int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30),
        ("0", 0),
        (7, 7),
        ("-1", "-1"),
        (" 5", " 5"),
        ("²", "²"),
        ("٣", "٣"),
        (True, True),
        (None, None),
    ],
)
def test_as_role_int(value: object, expected: object) -> None:
    got = as_role_int(value)
    assert got == expected and type(got) is type(expected)


def test_the_filters_share_it() -> None:
    assert ftps_ports.as_role_int is as_role_int
    assert ftps_renewal.as_role_int is as_role_int
    assert not hasattr(ftps_ports, "_as_int")


@pytest.mark.parametrize("odd", ["²", "٣"])
def test_a_unicode_digit_is_named_not_a_crash(odd: str) -> None:
    assert ftps_renewal.ftps_renew_window_problem("30") == ""
    assert f"got {odd!r}" in ftps_renewal.ftps_renew_window_problem(odd)
    assert ftps_ports.ftps_port_range_problem(["50000", "50099"]) == ""
    assert repr(odd) in ftps_ports.ftps_port_range_problem([odd, "50099"])
