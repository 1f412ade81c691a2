"""The lab's address plan (lab/lab_addresses.py): every Molecule scenario and lab job has a block of
its own, every host an address no other host has, outside the gateway and podman's dynamic range;
every platform takes its address, its scenario's /etc/hosts entries and the network from the plan
(so no lab name is left to aardvark-dns); what Molecule makes of each molecule.yml with the plan's
variables is exactly the plan; the network check accepts only the planned network."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from molecule.interpolation import Interpolator, TemplateWithDefaults

from tests.paths import ROOT

_spec = importlib.util.spec_from_file_location("lab_addresses", ROOT / "lab" / "lab_addresses.py")
plan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plan)

SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


@pytest.fixture(autouse=True)
def _default_network(monkeypatch) -> None:
    monkeypatch.delenv("FTPSKIT_LAB_NETWORK", raising=False)
    monkeypatch.delenv("FTPSKIT_LAB_SUBNET", raising=False)


def test_the_plan_has_no_problem() -> None:
    assert plan.plan_problems() == []


def test_every_scenario_and_job_has_its_own_block() -> None:
    assert set(SCENARIOS) | set(plan.JOB_HOSTS) == set(plan.BLOCKS)
    assert len(set(plan.BLOCKS.values())) == len(plan.BLOCKS)


def test_every_host_has_an_address_no_other_host_has_in_the_static_area() -> None:
    static = {str(a) for a in ipaddress.IPv4Network("10.213.8.0/24") if 8 <= int(a) % 256 <= 191}
    everything = {}
    for name in plan.BLOCKS:
        planned = plan.hosts(name)
        assert list(planned) == plan.host_names(name)
        for host, address in planned.items():
            assert host not in everything
            everything[host] = address
    assert len(set(everything.values())) == len(everything)
    assert set(everything.values()) <= static
    # the hosts tests and inventories name
    assert everything["pki-deb12"] == "10.213.8.72" and everything["acme-pebble"] == "10.213.8.16"
    named = {"clientcert-km", "rotation-deb13b", "fwb-firewalld", "ca-rollover-client", "ee-km"}
    assert named <= set(everything)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_gets_exactly_the_plan(scenario) -> None:
    """Molecule's own interpolation of the base config and the scenario's molecule.yml with the
    variables lab/molecule-all.sh passes: each platform's ip is its planned address, its
    etc_hosts every host of the scenario, its network the plan's."""
    env = {"MOLECULE_SCENARIO_NAME": scenario, **plan.env(scenario)}
    interpolate = Interpolator(TemplateWithDefaults, env).interpolate
    own = yaml.safe_load(interpolate((ROOT / "molecule" / scenario / "molecule.yml").read_text()))
    base = yaml.safe_load(interpolate((ROOT / ".config" / "molecule" / "config.yml").read_text()))
    platforms = own.get("platforms", base["platforms"])
    planned = plan.hosts(scenario)
    assert [p["name"] for p in platforms] == list(planned)
    for p in platforms:
        assert p["ip"] == planned[p["name"]]
        assert p["etc_hosts"] == planned
        assert p["network"] == "ftpskit-molecule"


def test_another_network_moves_every_address(monkeypatch) -> None:
    monkeypatch.setenv("FTPSKIT_LAB_NETWORK", "ftpskit-other")
    monkeypatch.setenv("FTPSKIT_LAB_SUBNET", "10.213.9.0/24")
    assert plan.network() == {
        "name": "ftpskit-other",
        "subnet": "10.213.9.0/24",
        "gateway": "10.213.9.1",
        "ip_range": "10.213.9.192/26",
    }
    assert plan.hosts("pki") == {"pki-deb12": "10.213.9.72", "pki-deb13": "10.213.9.73"}
    assert plan.env("pki")["FTPSKIT_LAB_NETWORK"] == "ftpskit-other"
    assert plan.plan_problems() == []


@pytest.mark.parametrize("subnet", ["10.213.0.0/16", "10.213.9.0/25", "not-a-subnet"])
def test_a_subnet_other_than_a_24_is_refused(monkeypatch, subnet) -> None:
    monkeypatch.setenv("FTPSKIT_LAB_SUBNET", subnet)
    with pytest.raises(plan.PlanError):
        plan.network()


def test_collisions_and_gaps_are_reported(monkeypatch) -> None:
    blocks = dict(plan.BLOCKS)
    blocks["report"] = blocks["pki"]  # two scenarios, one block
    blocks["gone"] = 20  # no such scenario
    del blocks["faults"]  # a scenario without a block
    blocks["acme"] = 24  # into podman's dynamic range
    monkeypatch.setattr(plan, "BLOCKS", blocks)
    problems = "\n".join(plan.plan_problems())
    assert "'report' and 'pki' share block 9" in problems or "'pki' and 'report' share block 9" in problems
    assert "block of 'gone': no such scenario" in problems
    assert "scenario 'faults' has no block" in problems
    assert "'acme': block 24 is outside 1-23" in problems
    assert "planned twice" in problems


def test_a_platform_not_using_the_plan_is_reported(tmp_path, monkeypatch) -> None:
    molecule = tmp_path / "molecule"
    shutil.copytree(ROOT / "molecule" / "pki", molecule / "pki", ignore=shutil.ignore_patterns("tests"))
    text = (molecule / "pki" / "molecule.yml").read_text()
    text = text.replace("    etc_hosts: ${FTPSKIT_LAB_HOSTS}\n", "", 1)
    text = text.replace("${FTPSKIT_LAB_IP_DEB13:-unplanned}", "10.213.8.99")
    (molecule / "pki" / "molecule.yml").write_text(text)
    monkeypatch.setattr(plan, "MOLECULE", molecule)
    monkeypatch.setattr(plan, "BLOCKS", {"pki": 9})
    monkeypatch.setattr(plan, "JOB_HOSTS", {})
    assert plan.plan_problems() == [
        "pki: platform pki-deb12: etc_hosts is None, want '${FTPSKIT_LAB_HOSTS}'",
        "pki: platform pki-deb13: ip is '10.213.8.99', want '${FTPSKIT_LAB_IP_DEB13:-unplanned}'",
    ]


def test_two_hosts_with_one_suffix_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(plan, "JOB_HOSTS", {"ee": ["ee-deb13", "other-deb13"]})
    with pytest.raises(plan.PlanError, match="FTPSKIT_LAB_IP_DEB13"):
        plan.env("ee")


def _inspect(lease: dict | None, subnet: str = "10.213.8.0/24", gateway: str = "10.213.8.1") -> list:
    s = {"subnet": subnet, "gateway": gateway}
    if lease is not None:
        s["lease_range"] = lease
    return [{"name": "ftpskit-molecule", "subnets": [s]}]


def test_the_network_check_accepts_only_the_planned_network() -> None:
    # what podman 4.3 reports for `network create --subnet 10.213.8.0/24 --ip-range 10.213.8.192/26`
    good = {"start_ip": "10.213.8.193", "end_ip": "10.213.8.255"}
    assert plan.network_problems(_inspect(good)) == []
    assert plan.network_problems(_inspect(None)) == [
        "dynamic range none, want 10.213.8.192/26 (10.213.8.193-10.213.8.255)"
    ]
    assert plan.network_problems(_inspect(good, subnet="10.213.9.0/24", gateway="10.213.9.1")) == [
        "subnet 10.213.9.0/24, want 10.213.8.0/24",
        "gateway 10.213.9.1, want 10.213.8.1",
    ]
    wide = {"start_ip": "10.213.8.2", "end_ip": "10.213.8.255"}
    assert plan.network_problems(_inspect(wide))[0].startswith("dynamic range 10.213.8.2-10.213.8.255")


def test_the_command_line() -> None:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "lab" / "lab_addresses.py"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )

    assert run("network").stdout == "ftpskit-molecule 10.213.8.0/24 10.213.8.1 10.213.8.192/26\n"
    assert run("hosts", "ee").stdout == "ee-km 10.213.8.104\nee-deb13 10.213.8.105\nee-client 10.213.8.106\n"
    lines = dict(line.split("=", 1) for line in run("env", "pki").stdout.splitlines())
    assert json.loads(lines["FTPSKIT_LAB_HOSTS"]) == {"pki-deb12": "10.213.8.72", "pki-deb13": "10.213.8.73"}
    assert lines["FTPSKIT_LAB_IP_DEB12"] == "10.213.8.72"
    missing = run("env", "nonesuch")
    assert missing.returncode == 2 and "no block" in missing.stderr
    bad = run("check-network", stdin=json.dumps(_inspect(None)))
    assert bad.returncode == 1 and "dynamic range none" in bad.stdout
    assert run("check").returncode == 0


def test_ee_jobs_hosts_are_the_plans() -> None:
    """lab/ee-jobs.sh starts its hosts at the plan's addresses (job `ee`), by the same names."""
    text = (ROOT / "lab" / "ee-jobs.sh").read_text()
    block = text.split("\nhosts=(\n", 1)[1].split("\n)\n", 1)[0]
    names = [line.strip().strip('"').split()[0] for line in block.splitlines() if line.strip()]
    assert names == plan.JOB_HOSTS["ee"]
    assert 'lab_addresses.py" hosts ee' in text and '--ip "${address[$name]}"' in text
