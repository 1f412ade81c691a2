"""ftps_client's pin file (templates/known_servers.json.j2), rendered by Ansible for real: a server's
entries are keyed by the ports ftps_server published for it (ftps_server_listening), never by a
number the template restates; a server without facts in the run keeps the entries published
before for its names, whatever their ports. Controller only: one play on localhost, nothing written.
"""

from __future__ import annotations

import json
import pathlib

import yaml

from tests.paths import ROOT
from tests.playbook import run_playbook

TEMPLATE = ROOT / "roles" / "ftps_client" / "templates" / "known_servers.json.j2"
PIN = {"fingerprint_sha256": "AA:BB", "spki_sha256": "c3BraQ==", "not_after": "2027-01-01T00:00:00Z"}
BEFORE = {
    "ftp3:2121": {"fingerprint_sha256": "OLD"},
    "ftp3:990": {"fingerprint_sha256": "OLD"},
    "ftp1:21": {"fingerprint_sha256": "REPLACED"},
    "other:21": {"fingerprint_sha256": "NOT-PINNED-HERE"},
}


def _render(tmp_path: pathlib.Path) -> dict:
    hosts = {
        "localhost": {"ansible_connection": "local"},
        # ports from a role default or group_vars, published by ftps_server: not inventory
        # variables of ftps_server's here, so only the published fact can name them
        "ftp1": {
            "ftps_pki_certificate": PIN,
            "ftps_server_listening": {"control_port": 2121, "implicit_port": 0},
        },
        "ftp2": {
            "ansible_host": "2001:DB8::2",
            "ftps_pki_certificate": PIN,
            "ftps_server_listening": {"control_port": 21, "implicit_port": 9990},
        },
        "ftp3": {},  # no facts in this run: what was published before stays
    }
    play = [
        {
            "name": "Render the pin file",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ftps_client_pin_servers": ["ftp1", "ftp2", "ftp3"],
                "ftps_client_pin_fact": "ftps_pki_certificate",
                "ftps_client_pin_fingerprint_enabled": True,
                "ftps_client_pin_spki_enabled": True,
                "__ftps_client_pin_missing": ["ftp3"],
                "__ftps_client_pin_before": {"version": 1, "servers": BEFORE},
            },
            "tasks": [
                {
                    "name": "Show",
                    "ansible.builtin.debug": {
                        "msg": f"{{{{ lookup('ansible.builtin.template', '{TEMPLATE}') }}}}"
                    },
                }
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False))
    result = run_playbook(inventory, playbook, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = json.loads(result.stdout)["plays"][0]["tasks"]
    msg = task["hosts"]["localhost"]["msg"]
    return msg if isinstance(msg, dict) else json.loads(msg)


def test_the_pins_are_keyed_by_the_ports_ftps_server_published(tmp_path: pathlib.Path) -> None:
    pins = _render(tmp_path)
    entry = {"source": "the pins ftps-kit published for ftp1", **PIN}
    assert pins == {
        "version": 1,
        "servers": {
            # the published control port; the implicit listener is off (0): no entry
            "ftp1:2121": entry,
            # both published ports, for the inventory name and the address (IPv6 in brackets)
            "ftp2:21": {**entry, "source": "the pins ftps-kit published for ftp2"},
            "ftp2:9990": {**entry, "source": "the pins ftps-kit published for ftp2"},
            "[2001:DB8::2]:21": {**entry, "source": "the pins ftps-kit published for ftp2"},
            "[2001:DB8::2]:9990": {**entry, "source": "the pins ftps-kit published for ftp2"},
            # no facts in this run: every entry published before for its name, as it was
            "ftp3:2121": BEFORE["ftp3:2121"],
            "ftp3:990": BEFORE["ftp3:990"],
        },
    }


def test_the_pin_steps_refuse_a_server_without_its_published_ports() -> None:
    """pins_write.yml checks, before it writes anything, that every pinned server with facts in the
    run published ftps_server_listening; the template reads nothing else for the ports."""
    tasks = yaml.safe_load((ROOT / "roles" / "ftps_client" / "tasks" / "pins_write.yml").read_text())
    (block,) = tasks
    names = [task["name"] for task in block["block"]]
    check = names.index("Check that every pinned server in this run published where it listens")
    assert check < names.index("Write the servers' pins")
    assert (
        "ftps_server_listening is not defined"
        in block["block"][check]["vars"]["__ftps_client_pin_unlistened"]
    )
    text = TEMPLATE.read_text()
    assert "ftps_server_listening" in text
    assert "ftps_server_control_port" not in text and "ftps_server_implicit_port" not in text
