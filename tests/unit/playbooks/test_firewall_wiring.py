"""ftps_server's ports reach ftps_firewall's checks on every path that programs or checks the
firewall: site.yml (its first play), firewall.yml and preflight.yml, all through ftps_fleet's entry
point ``preflight_firewall`` (the one place they are handed over; the contract:
tests/unit/docs/test_design_contracts.py, ``test_firewall_rules_are_handed_over_in_one_place``).

An own rule named like one of ftps_server's (``ftpsd-passive``) must be refused as a duplicate name,
the message listing ``ssh``, ftps_server's two rules and the own one: a path that dropped the
hand-over would pass (its dependent rules empty) and, in site.yml and firewall.yml, program a
firewall without ftpsd's ports. Run on the controller itself (local connection, nothing becomes
root) with tags that select only checks, so nothing is changed.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.unit.playbooks.test_site_preflight import run_locally

OWN_DUPLICATE = {"ftps_firewall_rules": [{"name": "ftpsd-passive", "proto": "tcp", "ports": [8021]}]}
NAMES = "ftps_firewall rule names must be unique"
LISTED = "ssh, ftpsd-control, ftpsd-passive, ftpsd-passive"

# playbook -> the arguments that keep it to checks (site.yml: no role task, only the `always`
# preflights; firewall.yml: ftps_firewall's preflight tag, never its programming tasks)
PATHS = {
    "site.yml": ["--tags", "preflight-only-no-role-task"],
    "firewall.yml": ["--tags", "ftps_firewall_preflight"],
    "preflight.yml": [],
}


def _run(tmp_path: pathlib.Path, playbook: str, extra: dict):
    return run_locally(tmp_path, playbook, extra, *PATHS[playbook])


@pytest.mark.parametrize("playbook", sorted(PATHS))
def test_server_ports_are_the_firewalls_dependent_rules(tmp_path: pathlib.Path, playbook: str) -> None:
    result = _run(tmp_path, playbook, OWN_DUPLICATE)
    assert result.returncode != 0, result.stdout[-3000:]
    assert NAMES in result.stdout and LISTED in result.stdout, result.stdout[-3000:]
    assert "changed=0" in result.stdout
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize("playbook", sorted(PATHS))
def test_the_same_paths_pass_without_the_clash(tmp_path: pathlib.Path, playbook: str) -> None:
    """The control: the same runs with an own rule of another name pass and change nothing."""
    own = {"ftps_firewall_rules": [{"name": "extra", "proto": "tcp", "ports": [8021]}]}
    result = _run(tmp_path, playbook, own)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in result.stdout
