"""The slicing rule (docs/awx.md, "Slicing"): users.yml and firewall.yml may run as slices of an
AWX sliced job, and report.yml (each slice adds its servers' rows to the kit's store and writes
the fleet's report from every row: docs/report.md); every other playbook needs the whole fleet in
one run and refuses a slice before anything else happens.

AWX passes no slice number or count to the playbook (awx/main/models/unified_jobs.py and
jobs.py `awx_meta_vars`: the slice only cuts the inventory). A slice job runs in the workflow
AWX made from the job template, so it has awx_job_launch_type 'workflow' and a workflow job
named like its job template: those are the extra vars set here, as AWX sets them.
"""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
import yaml

from tests.paths import ROOT
from tests.playbook import run_playbook

PLAYBOOKS = ROOT / "playbooks"
# Must see the whole fleet: the key manager's CA and records, the prober, every server.
# (preflight.yml contacts no host, but its store check needs group ftps_ca, which a slice may lack.)
WHOLE_FLEET = [
    "ca_rollover.yml",
    "client_cert.yml",
    "migrate_store.yml",
    "preflight.yml",
    "revoke.yml",
    "rotate.yml",
    "site.yml",
]
# Per host, nothing shared, or (report.yml) one report across slices: may run sliced.
SLICEABLE = ["firewall.yml", "report.yml", "users.yml"]
# Not run on their own: imported by the playbooks above.
IMPORTED = ["publish_pins.yml"]
GUARD = {"name": "ftpskit.ftps.ftps_fleet", "tasks_from": "unsliced"}

# The extra vars AWX gives a job of the sliced workflow it made from job template 'FTPS rotate'.
SLICE = {
    "awx_job_id": 42,
    "awx_job_launch_type": "workflow",
    "awx_job_template_name": "FTPS rotate",
    "awx_workflow_job_id": 41,
    "awx_workflow_job_name": "FTPS rotate",
    "tower_job_launch_type": "workflow",
}
MESSAGE = "runs as a slice of the sliced job 'FTPS rotate' (workflow job 41)"


def first_tasks(play: dict) -> list[dict]:
    return play.get("pre_tasks") or play.get("tasks") or []


def test_every_playbook_has_a_slicing_rule() -> None:
    found = sorted(p.name for p in PLAYBOOKS.glob("*.yml"))
    assert found == sorted(WHOLE_FLEET + SLICEABLE + IMPORTED), "a new playbook needs a slicing rule here"


@pytest.mark.parametrize("name", WHOLE_FLEET)
def test_whole_fleet_playbooks_refuse_a_slice_first(name: str) -> None:
    first_play = yaml.safe_load((PLAYBOOKS / name).read_text())[0]
    first = first_tasks(first_play)[0].get("ansible.builtin.import_role") or {}
    if first != GUARD:
        # an ftps_fleet entry point (rotate.yml's select, site.yml's preflight) that imports the
        # guard as its first task
        assert first.get("name") == GUARD["name"], f"{name}: the guard must be the first task"
        entry = yaml.safe_load((ROOT / "roles/ftps_fleet/tasks" / f"{first['tasks_from']}.yml").read_text())
        assert entry[0].get("ansible.builtin.import_tasks") == "unsliced.yml", (
            f"{name}: the guard comes first"
        )


@pytest.mark.parametrize("name", SLICEABLE + IMPORTED)
def test_sliceable_playbooks_carry_no_guard(name: str) -> None:
    assert "tasks_from: unsliced" not in (PLAYBOOKS / name).read_text()


def run(tmp_path: pathlib.Path, playbook: pathlib.Path, extra: dict) -> subprocess.CompletedProcess[str]:
    """``playbook`` against two servers, a client and a key manager that nothing can reach (SSH to
    a closed port): the guard is an assert, which runs on the controller without connecting, and
    if it were missing the next task would find every host unreachable, never this machine."""
    inventory = tmp_path / "hosts.yml"
    host = (
        "ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: 9, "
        "ansible_ssh_common_args: '-o ConnectTimeout=2', ansible_python_interpreter: /usr/bin/python3"
    )
    inventory.write_text(
        "all:\n  children:\n"
        f"    ftps_servers:\n      hosts:\n        srv1: {{{host}}}\n        srv2: {{{host}}}\n"
        f"    ftps_clients:\n      hosts:\n        cli1: {{{host}}}\n"
        f"    ftps_ca:\n      hosts:\n        km1: {{{host}}}\n"
    )
    return run_playbook(
        inventory,
        playbook,
        "-e",
        json.dumps({"ftps_pki_store_dir": str(tmp_path / "data"), **extra}),
        cwd=tmp_path,
    )


@pytest.mark.parametrize("name", WHOLE_FLEET)
def test_a_slice_stops_before_anything_else(tmp_path: pathlib.Path, name: str) -> None:
    result = run(tmp_path, PLAYBOOKS / name, SLICE)
    assert result.returncode == 2, result.stdout[-3000:]
    assert MESSAGE in result.stdout
    assert "Set the job template's job_slice_count to 1" in result.stdout
    # The guard was the first task to run and the last: one failure, nothing changed anywhere.
    lines = result.stdout.splitlines()
    tasks = [line.split("[", 1)[1].split("]", 1)[0] for line in lines if line.startswith("TASK [")]
    # the entry point's argument spec check (on the controller, no connection), then the guard
    assert tasks[0].startswith("ftpskit.ftps.ftps_fleet : Validating arguments against arg spec"), tasks
    assert tasks[1:] == ["ftpskit.ftps.ftps_fleet : Refuse to run as one slice of a sliced job"], tasks
    # client_cert.yml runs on the controller (localhost) and delegates to the store
    recap = [line for line in lines if line.startswith(("srv", "cli", "km", "localhost"))]
    assert recap, result.stdout[-3000:]
    assert all("changed=0" in line for line in recap), recap
    assert sum("failed=1" in line for line in recap) == 1, recap
    assert not (tmp_path / "data").exists()


GUARD_PLAY = """
- name: The slicing guard alone
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Refuse a sliced job
      ansible.builtin.import_role:
        name: ftpskit.ftps.ftps_fleet
        tasks_from: unsliced
"""


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        (SLICE, True),
        # no AWX at all: ansible-playbook or ansible-runner by hand
        ({}, False),
        # an AWX job launched from its job template (job_slice_count 1)
        ({**SLICE, "awx_job_launch_type": "manual", "awx_workflow_job_name": ""}, False),
        # a scheduled job
        ({"awx_job_launch_type": "scheduled", "awx_job_template_name": "FTPS rotate"}, False),
        # a node of the operator's own workflow template (another name): one whole-fleet job
        ({**SLICE, "awx_workflow_job_name": "FTPS nightly"}, False),
    ],
    ids=["slice", "no-awx", "awx-job", "awx-scheduled", "awx-workflow-node"],
)
def test_the_guard_tells_a_slice_from_a_whole_job(tmp_path: pathlib.Path, extra: dict, refused: bool) -> None:
    playbook = tmp_path / "guard.yml"
    playbook.write_text(GUARD_PLAY)
    result = run(tmp_path, playbook, extra)
    assert (result.returncode != 0) == refused, result.stdout[-3000:]
    assert (MESSAGE in result.stdout) == refused
