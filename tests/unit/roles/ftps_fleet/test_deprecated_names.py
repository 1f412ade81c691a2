"""ftps_fleet's deprecated input names: one map (vars/main.yml, __ftps_fleet_deprecated_names),
one warner (tasks/deprecated.yml, the action ftpskit.ftps.ftps_deprecated_vars).

An ansible-playbook run on the controller shows Ansible's own deprecation warning for every old
name in use, of both families (the rotation's ftps_rotate_* settings and the fleet playbooks'
inputs), once per run although two hosts run the warner twice; the old names still work (the
check reads them). The map and the names the role reads agree.
"""

from __future__ import annotations

import json
import pathlib
import re

import yaml

from tests.paths import ROOT
from tests.playbook import run_playbook

FLEET = ROOT / "roles" / "ftps_fleet"
INTERNALS = yaml.safe_load((FLEET / "vars" / "main.yml").read_text())
ALIASES = INTERNALS["__ftps_fleet_deprecated_names"]
VERSION = INTERNALS["__ftps_fleet_deprecated_removed_in"]


def _warning(old: str) -> str:
    return (
        f"[DEPRECATION WARNING]: The variable {old} is deprecated: use {ALIASES[old]} instead "
        f'(roles/ftps_fleet/README.md, "Deprecated names"). '
        f"This feature will be removed from collection 'ftpskit.ftps' version {VERSION}."
    )


PLAY = [
    {
        "name": "Run the settings' check twice on two hosts",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check the settings",
                "ansible.builtin.include_role": {"name": "ftpskit.ftps.ftps_fleet", "tasks_from": "settings"},
            },
            {
                "name": "Check them again (a second entry point warns too)",
                "ansible.builtin.include_role": {"name": "ftpskit.ftps.ftps_fleet", "tasks_from": "settings"},
            },
        ],
    }
]


def _run(tmp_path: pathlib.Path, extra: dict):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        "    one: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
        "    two: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
    )
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    return run_playbook(inventory, play, "-e", json.dumps(extra), cwd=tmp_path)


def test_each_old_name_in_use_is_warned_once(tmp_path: pathlib.Path) -> None:
    used = {
        "ftps_rotate_serial": 2,
        "ftps_rotate_expiring_within_days": "",
        "ftps_report_warn_days": 10,
        "revoke_serial": "1F",
        "identity": "alice",
    }
    result = _run(tmp_path, used)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for old in ALIASES:
        expected = 1 if old in used else 0
        assert output.count(_warning(old)) == expected, (old, output[-3000:])
    assert output.count("[DEPRECATION WARNING]") == len(used), output[-3000:]


def test_an_old_name_still_works_and_is_checked(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, {"ftps_rotate_serial": "ten"})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "ftps_rotate_serial a positive number or percentage (ten)" in output
    assert output.count(_warning("ftps_rotate_serial")) == 1


def test_no_warning_without_old_names(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, {"ftps_fleet_rotate_serial": 2})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "DEPRECAT" not in result.stdout + result.stderr


ANSIBLE_NAMES = {"hostvars", "groups", "query", "now", "lookup"}
# `{{ old | default(...` or `{{ old if old ...`: a deprecated name read before its new one
READ = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\s*(?:\||if\b)")


def test_the_map_names_exactly_the_old_names_the_role_reads() -> None:
    # every role's own variables (its defaults) and Ansible's are read too; the rest are old names
    role_vars = {
        name
        for defaults in ROOT.glob("roles/*/defaults/main.yml")
        for name in yaml.safe_load(defaults.read_text()) or {}
    }
    # the internals read them, and so do the two settings that are rotate.yml's play keywords
    # (serial, max_fail_percentage: a play keyword sees the role's defaults, not its internals)
    defaults = yaml.safe_load((FLEET / "defaults" / "main.yml").read_text())
    read = {
        name
        for value in [*INTERNALS.values(), *defaults.values()]
        if isinstance(value, str)
        for name in READ.findall(value)
        if not name.startswith("__") and name not in role_vars | ANSIBLE_NAMES
    }
    assert read == set(ALIASES), (sorted(read - set(ALIASES)), sorted(set(ALIASES) - read))
    in_defaults = {
        name for value in defaults.values() if isinstance(value, str) for name in READ.findall(value)
    }
    assert in_defaults == {"ftps_rotate_serial", "ftps_rotate_max_fail_percentage"}
    # and nothing else carries its own list of them (the one warner, the one map)
    for path in FLEET.rglob("*.yml"):
        text = path.read_text()
        assert "[DEPRECATED]" not in text, path
        assert "varnames" not in text, path
