"""The renewal window's one rule (ftpskit_common.layout.renew_before_days_problem): ftpsd's config
check and ftps_pki's preflight (the filter ftps_renew_window_problem) judge every value alike."""

from __future__ import annotations

import pytest
from ansible_collections.ftpskit.ftps.plugins.filter.ftps_renewal import ftps_renew_window_problem
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import (
    RENEW_BEFORE_DAYS,
    RENEW_BEFORE_DAYS_MAX,
    renew_before_days_problem,
)

from ftpsd.config import ConfigError, parse_config

GOOD = [0, 1, RENEW_BEFORE_DAYS, RENEW_BEFORE_DAYS_MAX]
BAD = [-1, RENEW_BEFORE_DAYS_MAX + 1, 40000, True, False, 1.5, "30", None, [30]]


@pytest.mark.parametrize("value", GOOD)
def test_a_good_window_has_no_problem(value):
    assert renew_before_days_problem(value) == ""
    assert ftps_renew_window_problem(value) == ""


@pytest.mark.parametrize("value", BAD)
def test_a_bad_window_is_named_with_the_rule(value):
    assert (
        renew_before_days_problem(value)
        == f"must be an integer 0-{RENEW_BEFORE_DAYS_MAX} days, got {value!r}"
    )


def test_the_filter_reads_digit_strings_as_the_roles_int_does():
    assert ftps_renew_window_problem("30") == ""
    assert ftps_renew_window_problem("40000") == renew_before_days_problem(40000)
    assert ftps_renew_window_problem("-1") == renew_before_days_problem("-1")


@pytest.mark.parametrize("value", GOOD + BAD)
def test_ftpsd_and_the_preflight_judge_alike(value):
    """ftpsd's config check refuses exactly what the rule refuses, with the same sentence."""
    try:
        parse_config({"tls": {"renew_before_days": value}})
        problems = []
    except ConfigError as error:
        problems = error.problems
    mine = [p for p in problems if "tls.renew_before_days" in p]
    rule = renew_before_days_problem(value)
    assert bool(mine) == bool(rule)
    if rule:
        assert rule in mine[0]
