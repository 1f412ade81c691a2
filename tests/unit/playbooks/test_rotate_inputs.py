"""rotate.yml's inputs (ftps_fleet's settings) are checked before anything is read or changed, by
their new names and by the deprecated ftps_rotate_* ones, which still work and say so.

rotate.yml runs against servers nothing can reach (SSH to a closed port): the settings' check
runs once on the controller, so a bad value fails there, naming the variable as given, and no
host is contacted; a good value gets past the check to the first task that needs a host.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.playbook import run_playbook

HOST = (
    "ansible_connection: ssh, ansible_host: 127.0.0.1, ansible_port: 9, "
    "ansible_ssh_common_args: '-o ConnectTimeout=2', ansible_python_interpreter: /usr/bin/python3"
)


def rotate(tmp_path: pathlib.Path, extra: dict):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        f"all:\n  children:\n    ftps_servers:\n      hosts:\n        srv1: {{{HOST}}}\n"
        f"    ftps_clients:\n      hosts:\n        cli1: {{{HOST}}}\n"
    )
    extra = {"ftps_pki_store": "controller", "ftps_pki_store_dir": str(tmp_path / "data"), **extra}
    return run_playbook(inventory, "rotate.yml", "-e", json.dumps(extra), cwd=tmp_path)


def tasks_run(stdout: str) -> list[str]:
    return [
        line.split("[", 1)[1].split("]", 1)[0] for line in stdout.splitlines() if line.startswith("TASK [")
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ftps_fleet_rotate_serial": "0"}, "ftps_fleet_rotate_serial a positive number or percentage (0)"),
        (
            {"ftps_fleet_rotate_serial": "25%x"},
            "ftps_fleet_rotate_serial a positive number or percentage (25%x)",
        ),
        ({"ftps_rotate_serial": "ten"}, "ftps_rotate_serial a positive number or percentage (ten)"),
        ({"ftps_fleet_rotate_pki_modes": ["letsencrypt"]}, "ftps_fleet_rotate_pki_modes"),
        (
            {"ftps_rotate_pki_modes": ["internal_ca", "letsencrypt"]},
            "ftps_rotate_pki_modes a list of internal_ca",
        ),
        ({"ftps_fleet_rotate_max_fail_percentage": "ten"}, "ftps_fleet_rotate_max_fail_percentage"),
        ({"ftps_rotate_expiring_within_days": "soon"}, 'must be "" or a number of days (soon)'),
        ({"ftps_fleet_rotate_due_only": "perhaps"}, "ftps_fleet_rotate_due_only"),
    ],
    ids=[
        "serial-0",
        "serial-bad-percent",
        "old-serial",
        "mode",
        "old-mode",
        "fail-pct",
        "old-within",
        "due-only",
    ],
)
def test_bad_input_stops_before_any_host_is_contacted(
    tmp_path: pathlib.Path, extra: dict, message: str
) -> None:
    result = rotate(tmp_path, extra)
    assert result.returncode == 2, result.stdout[-3000:]
    assert message in result.stdout, result.stdout[-3000:]
    # nothing but the guard, the spec checks, the deprecation note and the settings ran
    ran = [t.split(" : ", 1)[1] for t in tasks_run(result.stdout)]
    assert all(
        t.startswith("Validating arguments")
        or t
        in {
            "Refuse to run as one slice of a sliced job",
            "Warn about the deprecated names in use",
            "Check the rotation's variables",
        }
        for t in ran
    ), ran
    assert "UNREACHABLE" not in result.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "extra",
    [{}, {"ftps_fleet_rotate_serial": "25%", "ftps_fleet_rotate_due_only": True}, {"ftps_rotate_serial": 2}],
    ids=["defaults", "new-names", "old-name"],
)
def test_good_input_passes_the_check(tmp_path: pathlib.Path, extra: dict) -> None:
    result = rotate(tmp_path, extra)
    ran = tasks_run(result.stdout)
    assert "ftpskit.ftps.ftps_fleet : Check the rotation's variables" in ran
    assert "Check the rotation's variables" not in "".join(
        line for line in result.stdout.splitlines() if line.startswith("fatal")
    )
    deprecated = "[DEPRECATION WARNING]: The variable ftps_rotate_serial is deprecated" in result.stderr
    assert deprecated == ("ftps_rotate_serial" in extra), result.stderr[-3000:]
