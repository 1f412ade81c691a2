"""playbooks/site.yml stops on bad variables before any role changes anything.

The play's pre_tasks run every role's preflight (argument specs + cross-variable checks). Here
site.yml runs against the controller itself (local connection) with `--tags` that select no
role task, so only the `always`-tagged preflights run: a bad variable must fail with a message
naming it, and nothing may report a change.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.playbook import run_playbook

GOOD_USERS = [
    {"name": "alice", "password": "Pw-A-7731-secret", "perm": "rw"},
    {"name": "bob", "password": "Pw-B-7731-secret", "perm": "ro"},
]


def run_locally(
    tmp_path: pathlib.Path, playbook: str, extra: dict, *args: str
) -> subprocess.CompletedProcess[str]:
    """``playbook`` on the controller itself as the one server (local connection, no become), good
    users and a CA directory under ``tmp_path`` unless ``extra`` says otherwise."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    ftps_servers:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n          ansible_become: false\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
    )
    extra_vars = {"ftps_users_accounts": GOOD_USERS, "ftps_pki_ca_dir": str(tmp_path / "ca"), **extra}
    return run_playbook(inventory, playbook, *args, "-e", json.dumps(extra_vars))


def run_preflight(tmp_path: pathlib.Path, extra: dict) -> subprocess.CompletedProcess[str]:
    return run_locally(tmp_path, "site.yml", extra, "--tags", "preflight-only-no-role-task")


def test_good_variables_pass_and_change_nothing(tmp_path: pathlib.Path) -> None:
    result = run_preflight(tmp_path, {})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "changed=0" in result.stdout
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"ftps_server_passive_ports": [50099, 50000]}, "ftps_server_passive_ports"),
        (
            {"ftps_server_control_port": 50010},
            "ftps_server_control_port (50010) overlaps ftps_server_passive_ports",
        ),
        ({"ftps_server_implicit_port": 21}, "ftps_server_implicit_port"),
        ({"ftps_server_passive_ports": [50000, "x"]}, "ftps_server_passive_ports"),
        (
            {"ftps_users_accounts": [*GOOD_USERS, {"name": "alice", "password": "Pw-C-7731-secret"}]},
            "ftps_users_accounts[2] (name 'alice'): duplicate user name 'alice'",
        ),
        (
            {"ftps_users_accounts": [{"name": "../x", "password": "p"}]},
            "ftps_users_accounts[0] (name '../x'): 'name' must not contain '/'",
        ),
        (
            {"ftps_users_accounts": [{"name": "carol", "password": ""}]},
            "'password' (or a pre-computed 'hash') is empty or missing",
        ),
        ({"ftps_users_accounts": [{"name": "dave", "password": "p", "perm": "admin"}]}, "perm"),
        ({"ftps_firewall_sources": ["not-an-address"]}, "ftps_firewall_sources"),
    ],
)
def test_bad_variable_fails_before_any_change(tmp_path: pathlib.Path, extra: dict, named: str) -> None:
    result = run_preflight(tmp_path, extra)
    assert result.returncode != 0
    assert named in result.stdout, result.stdout[-3000:]
    assert "changed=0" in result.stdout
    for secret in ("Pw-A-7731-secret", "Pw-B-7731-secret", "Pw-C-7731-secret"):
        assert secret not in result.stdout
