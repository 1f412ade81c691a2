"""rotate.yml's last play (ftps_fleet's entry point ``finish``, on ``localhost:ftps_rotate_unusable``):
every server left out as unusable fails with its reason, and the controller writes the run's final
record and one line per server. The failures come first: the record is written once for the play
(run_once), so a record that cannot be written fails the play, and must not hide them.

The play runs as rotate.yml runs it, after a stand-in for ``select`` (the run's name and each
server's decision as host facts, the groups by group_by), on the controller only.
"""

from __future__ import annotations

import json
import pathlib
import sys

import yaml

from tests.paths import ROOT
from tests.playbook import run_playbook

DAMAGED = "the deployed certificate is damaged"


def _finish_play() -> dict:
    (play,) = [
        p for p in yaml.safe_load((ROOT / "playbooks" / "rotate.yml").read_text()) if "finish" in str(p)
    ]
    return play


def _run(tmp_path: pathlib.Path, record_dir: pathlib.Path):
    host = f"{{ansible_connection: local, ansible_python_interpreter: {sys.executable}}}"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        f"all:\n  children:\n    ftps_servers:\n      hosts:\n        s1: {host}\n        s2: {host}\n"
    )
    run = {
        "id": "r1",
        "servers": ["s1", "s2"],
        "record_dir": str(record_dir),
        "store_host": "localhost",
        "store_become": False,
        "started_at": "2026-12-07T11:00:00Z",
        "within": "",
    }
    select = {
        "name": "Stand in for select",
        "hosts": "ftps_servers",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Decide",
                "ansible.builtin.set_fact": {
                    "__ftps_fleet_run": run,
                    "__ftps_fleet_unusable": f"{{{{ '{DAMAGED}' if inventory_hostname == 's2' else '' }}}}",
                },
            },
            {
                "name": "Group",
                "ansible.builtin.group_by": {
                    "key": "{{ 'ftps_rotate_unusable' if __ftps_fleet_unusable else 'ftps_rotate_skipped' }}"
                },
            },
        ],
    }
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([select, _finish_play()], sort_keys=False))
    return run_playbook(
        inventory, play, "-e", json.dumps({"ansible_python_interpreter": sys.executable}), cwd=tmp_path
    )


def test_unusable_servers_fail_and_the_record_is_written(tmp_path: pathlib.Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    result = _run(tmp_path, records)
    out = result.stdout
    assert result.returncode == 2, out[-3000:]
    assert "s2 was not rotated: the deployed certificate is damaged" in out, out[-3000:]
    assert "'s2: left out, the deployed certificate is damaged'" in out, out[-3000:]
    record = json.loads((records / "rotation-r1.json").read_text())
    # (the stand-in read no certificate: the record calls both unreachable at the start)
    assert record["id"] == "r1" and "s2" in record["unusable"], record
    recap = {line.split()[0]: line for line in out.splitlines() if " : ok=" in line}
    assert "failed=1" in recap["s2"] and "failed=0" in recap["localhost"], recap


def test_a_record_that_cannot_be_written_hides_no_unusable_server(tmp_path: pathlib.Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    result = _run(tmp_path, blocked / "records")
    out = result.stdout
    assert result.returncode == 2, out[-3000:]
    recap = {line.split()[0]: line for line in out.splitlines() if " : ok=" in line}
    assert "failed=1" in recap["s2"] and "failed=1" in recap["localhost"], recap
    assert "s2 was not rotated: the deployed certificate is damaged" in out, out[-3000:]
