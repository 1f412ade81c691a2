"""ftps_fleet's deprecated input names: one map (vars/main.yml, __ftps_fleet_deprecated_names,
grouped by the workflow that reads them), one warner (tasks/deprecated.yml, the action
ftpskit.ftps.ftps_deprecated_vars), the same action in every role that still reads an old name.

An ansible-playbook run on the controller shows Ansible's own deprecation warning for every old
name in use that the workflow reads (the rotation's check: the gate's and the rotation's
ftps_rotate_* names), once per run although two hosts run the warner twice, and none for the
names only another workflow reads (report.yml's, revoke.yml's, client_cert.yml's generic
``identity``); the old names still work (the check reads them). The map and the names the role
reads agree.
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
GROUPS = INTERNALS["__ftps_fleet_deprecated_names"]
ALIASES = {old: new for group in GROUPS.values() for old, new in group.items()}
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


def test_each_old_name_in_use_is_warned_once_by_the_workflow_that_reads_it(tmp_path: pathlib.Path) -> None:
    read = {
        "ftps_rotate_serial": 2,
        "ftps_rotate_expiring_within_days": "",
        "ftps_rotate_probe_from": "localhost",
    }
    # read by report.yml, revoke.yml and client_cert.yml alone: not the rotation's business
    elsewhere = {"ftps_report_warn_days": 10, "revoke_serial": "1F", "identity": "alice", "csr_file": "x.csr"}
    result = _run(tmp_path, {**read, **elsewhere})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for old in ALIASES:
        expected = 1 if old in read else 0
        assert output.count(_warning(old)) == expected, (old, output[-3000:])
    assert output.count("[DEPRECATION WARNING]") == len(read), output[-3000:]


# Each workflow's first entry point (and settings, rotate.yml's check) warns about the groups it reads.
WARNERS = {
    "settings.yml": ["gate", "rotation"],
    "rollover_begin.yml": ["rollover", "gate"],
    "report_read.yml": ["report"],
    "revoke.yml": ["revoke"],
    "client_cert.yml": ["client_cert"],
    "migrate.yml": ["migrate"],
}


def _warner_calls(tasks: list) -> list[dict]:
    found = []
    for task in tasks or []:
        if "deprecated.yml" in (
            task.get("ansible.builtin.include_tasks"),
            task.get("ansible.builtin.import_tasks"),
        ):
            found.append(task.get("vars", {}))
        found += _warner_calls(task.get("block"))
    return found


def test_each_workflow_warns_about_the_groups_it_reads() -> None:
    calls = {
        path.name: _warner_calls(yaml.safe_load(path.read_text()))
        for path in sorted((FLEET / "tasks").glob("*.yml"))
    }
    calls = {name: found for name, found in calls.items() if found}
    assert calls == {name: [{"__ftps_fleet_deprecated_for": groups}] for name, groups in WARNERS.items()}
    # every group is some workflow's, and the generic names are client_cert.yml's alone
    assert {group for groups in WARNERS.values() for group in groups} == set(GROUPS)
    assert set(GROUPS["client_cert"]) == {"identity", "csr_file", "cert_file"}
    warner = yaml.safe_load((FLEET / "tasks" / "deprecated.yml").read_text())
    (task,) = warner
    assert "__ftps_fleet_deprecated_for" in task["ftpskit.ftps.ftps_deprecated_vars"]["aliases"]


def test_the_roles_have_one_warner() -> None:
    """ftps_server and ftps_users warn about their own old names with the same action, from their
    own map (vars/main.yml), in their preflight; no role prints its own "[DEPRECATED]" line."""
    for role in ("ftps_server", "ftps_users"):
        internals = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())
        names = internals[f"__{role}_deprecated_names"]
        assert internals[f"__{role}_deprecated_removed_in"]
        tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "preflight.yml").read_text())
        (warner,) = [t for t in tasks if "ftpskit.ftps.ftps_deprecated_vars" in t]
        assert (
            warner["ftpskit.ftps.ftps_deprecated_vars"]["aliases"] == f"{{{{ __{role}_deprecated_names }}}}"
        )
        # each name in the map is one the role still reads (its checks and its internals)
        text = "".join(p.read_text() for p in (ROOT / "roles" / role).rglob("*.yml") if p.name != "main.yml")
        text += (
            (ROOT / "roles" / role / "vars" / "main.yml").read_text().split(f"__{role}_deprecated_names:")[0]
        )
        for name in names:
            assert f"{name} is defined" in text or f"{name} | default(" in text, (role, name)
    for path in (ROOT / "roles").rglob("*.yml"):
        assert "[DEPRECATED]" not in path.read_text(), path


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
