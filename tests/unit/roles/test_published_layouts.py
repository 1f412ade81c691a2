"""What ftps_users and the firewall read of the daemon comes from its one owner, run for real.

ftps_users alone (no ftps_server, no ftps_pki in the run, as in a role-only play): its preflight
publishes ftps_server's layout (the daemon's user, users file, data root) and ftps_pki's through
their `layout` entry points, and the role resolves its homes' owner, its users file and the
homes' root from them; a deprecated ftps_users name still wins, is checked and warned about once;
a bad value of ftps_server's is refused by ftps_server's own check, naming the variable, before
anything changes. ftps_server's passive range (its default: ftpsd's own, through the
``ftpskit.ftps.ftpsd_default`` lookup) is the range the firewall rule it exports opens.
Controller only: the play runs on localhost with a local connection and changes nothing.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from ftpsd.config import ServerConfig
from tests.paths import ROOT
from tests.playbook import run_playbook

SEEN = (
    "{{ {'owner': __ftps_users_home_owner, 'file': __ftps_users_file, 'root': __ftps_users_home_root,"
    " 'group': __ftps_users_home_group, 'layout': ftps_server_layout} | to_json }}"
)


def _run(tmp_path: pathlib.Path, extra: dict) -> tuple[dict, str]:
    play = [
        {
            "name": "ftps_users alone",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Check ftps_users",
                    "ansible.builtin.include_role": {
                        "name": "ftpskit.ftps.ftps_users",
                        "tasks_from": "preflight",
                        "public": True,
                    },
                },
                {"name": "Show what ftps_users resolved", "ansible.builtin.debug": {"msg": SEEN}},
                {
                    "name": "Read ftps_server's exported rules",
                    "ansible.builtin.include_role": {
                        "name": "ftpskit.ftps.ftps_server",
                        "tasks_from": "layout",
                        "public": True,
                    },
                },
                {
                    "name": "Show the passive range and the firewall's",
                    "ansible.builtin.debug": {
                        "msg": "{{ {'passive': ftps_server_passive_ports | map('int') | list,"
                        " 'rules': ftps_server_firewall_rules} | to_json }}"
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {"all": {"hosts": {"localhost": {"ansible_connection": "local", **extra}}}}, sort_keys=False
        )
    )
    result = run_playbook(inventory, playbook, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    report = json.loads(result.stdout)
    shown = {}
    failed = []
    for task in report["plays"][0]["tasks"]:
        outcome = task["hosts"].get("localhost", {})
        if task["task"]["name"].startswith("Show"):
            shown[task["task"]["name"]] = json.loads(outcome["msg"])
        if outcome.get("failed"):
            # a loop's failure: the failed items' messages (an assert's: evaluated_to false)
            items = [
                item
                for item in outcome.get("results", [])
                if item.get("failed") or item.get("evaluated_to") is False
            ]
            failed += [str(item.get("msg", "")) for item in items or [outcome]]
    return {"shown": shown, "failed": failed}, result.stdout + result.stderr


SERVER = {
    "ftps_server_user": "svc-ftp",
    "ftps_server_users_file": "/etc/svc/users.json",
    "ftps_server_data_dir": "/data/ftp",
    "ftps_pki_group": "svc-grp",
}
ALIASES = {
    "ftps_users_home_owner": "bob",
    "ftps_users_file": "/old/users.json",
    "ftps_users_home_root": "/old/homes",
}


def test_ftps_users_reads_the_daemons_user_and_paths_from_ftps_server(tmp_path: pathlib.Path) -> None:
    report, output = _run(tmp_path, SERVER)
    assert report["failed"] == []
    seen = report["shown"]["Show what ftps_users resolved"]
    assert seen == {
        "owner": "svc-ftp",
        "file": "/etc/svc/users.json",
        "root": "/data/ftp",
        "group": "svc-grp",
        "layout": {"user": "svc-ftp", "users_file": "/etc/svc/users.json", "data_dir": "/data/ftp"},
    }
    assert "DEPRECAT" not in output


def test_the_passive_default_is_ftpsds_and_the_firewall_opens_it(tmp_path: pathlib.Path) -> None:
    report, _ = _run(tmp_path, {})
    assert report["failed"] == []
    shown = report["shown"]["Show the passive range and the firewall's"]
    assert shown["passive"] == list(ServerConfig.passive_ports)
    (passive,) = [rule for rule in shown["rules"] if rule["name"] == "ftpsd-passive"]
    assert passive == {"name": "ftpsd-passive", "proto": "tcp", "ranges": [list(ServerConfig.passive_ports)]}
    # without an inventory value, ftps_users follows ftps_server's own defaults
    assert report["shown"]["Show what ftps_users resolved"]["layout"] == {
        "user": "ftpsd",
        "users_file": "/etc/ftpsd/users.json",
        "data_dir": "/srv/ftps",
    }


def test_the_deprecated_names_still_win_and_are_warned_about(tmp_path: pathlib.Path) -> None:
    report, output = _run(tmp_path, {**SERVER, **ALIASES})
    assert report["failed"] == []
    seen = report["shown"]["Show what ftps_users resolved"]
    assert (seen["owner"], seen["file"], seen["root"]) == ("bob", "/old/users.json", "/old/homes")
    # Ansible's own deprecation (the action ftpskit.ftps.ftps_deprecated_vars; the json callback
    # carries it in the task's result), one per old name in use, and nothing else deprecated
    internals = yaml.safe_load((ROOT / "roles/ftps_users/vars/main.yml").read_text())
    for name in ALIASES:
        message = (
            f"The variable {name} is deprecated: use "
            f"{internals['__ftps_users_deprecated_names'][name]} instead (roles/ftps_users/README.md)"
        )
        assert output.count(json.dumps(message)) == 1, (name, output[-3000:])
    assert output.count("is deprecated: use") == len(ALIASES), output[-3000:]
    assert "[DEPRECATED]" not in output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"ftps_users_file": "users.json"},
            "ftps_users_file (\"users.json\") must be an absolute path other than '/';"
            " better, drop it and set ftps_server_users_file",
        ),
        ({"ftps_users_home_owner": ""}, 'ftps_users_home_owner ("") must be a user name'),
        # ftps_users alone: ftps_server's own check refuses its bad value
        (
            {"ftps_server_data_dir": "srv/ftp"},
            "ftps_server_data_dir (\"srv/ftp\") absolute paths other than '/'",
        ),
    ],
    ids=["alias-relative", "alias-empty-owner", "owner-relative"],
)
def test_a_bad_value_stops_the_role_naming_it(tmp_path: pathlib.Path, extra: dict, expected: str) -> None:
    report, _ = _run(tmp_path, extra)
    assert len(report["failed"]) == 1, report["failed"]
    assert expected in " ".join(report["failed"][0].split()), report["failed"]
