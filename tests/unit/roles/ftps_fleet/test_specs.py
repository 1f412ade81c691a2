"""ftps_fleet's argument specs: the health gate's settings have one definition (the anchored
group in ``main``), merged into every entry point that runs the gate (gate, rotate, rollback),
which therefore declare exactly the same options; Ansible's own YAML loader (what checks the
specs at run time) reads them so, and so does the README generator's (PyYAML)."""

from __future__ import annotations

import re

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader

from tests.paths import ROOT

SPECS_FILE = ROOT / "roles" / "ftps_fleet" / "meta" / "argument_specs.yml"
GATE_SETTINGS = {
    "ftps_fleet_probe_from",
    "ftps_fleet_probe_user",
    "ftps_fleet_probe_password",
    "ftps_fleet_ca_path",
    "ftps_fleet_probe_address",
    "ftps_fleet_gate_retries",
}
# the entry points that run the gate (gate.yml: rotate and rollback include it as a file, so no
# other spec checks the settings for them)
RUN_THE_GATE = ("gate", "rotate", "rollback")


def _loaded() -> dict[str, dict]:
    return {
        "ansible": DataLoader().load_from_file(str(SPECS_FILE))["argument_specs"],
        "pyyaml": yaml.safe_load(SPECS_FILE.read_text())["argument_specs"],
    }


@pytest.mark.parametrize("loader", ["ansible", "pyyaml"])
def test_every_gate_runner_declares_exactly_the_gate_settings(loader: str) -> None:
    specs = _loaded()[loader]
    main = specs["main"]["options"]
    expected = {name: main[name] for name in GATE_SETTINGS}
    for entry in RUN_THE_GATE:
        options = specs[entry]["options"]
        assert {name: options.get(name) for name in GATE_SETTINGS} == expected, entry
    # the password stays a secret wherever it is declared
    assert all(specs[entry]["options"]["ftps_fleet_probe_password"]["no_log"] for entry in RUN_THE_GATE)


def test_the_gate_settings_are_written_once() -> None:
    text = SPECS_FILE.read_text()
    for name in GATE_SETTINGS:
        assert len(re.findall(rf"^\s+{name}:", text, re.MULTILINE)) == 1, name
    assert text.count("&ftps_fleet_gate_settings") == 1
    assert text.count("<<: *ftps_fleet_gate_settings") == len(RUN_THE_GATE)


def test_the_gate_reads_only_declared_settings() -> None:
    """The gate's internals (vars/main.yml) read no ftps_fleet_* setting outside its group
    besides its own (the fingerprint and the names check)."""
    internals = yaml.safe_load((ROOT / "roles" / "ftps_fleet" / "vars" / "main.yml").read_text())
    gate = "\n".join(
        line
        for line in (ROOT / "roles" / "ftps_fleet" / "tasks" / "gate.yml").read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    read = set(re.findall(r"\bftps_fleet_[a-z_]+", gate))
    for name in re.findall(r"\b__ftps_fleet_[a-z_]+", gate):
        read |= set(re.findall(r"(?<!_)\bftps_fleet_[a-z_]+", str(internals.get(name, ""))))
    gate_options = set(_loaded()["pyyaml"]["gate"]["options"])
    outputs = {
        "ftps_fleet_gate_ok",
        "ftps_fleet_gate_problems",
        "ftps_fleet_gate_results",
        "ftps_fleet_gate_served",
    }
    assert read - outputs <= gate_options, sorted(read - outputs - gate_options)
