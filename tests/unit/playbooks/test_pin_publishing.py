"""playbooks/publish_pins.yml (rotate.yml's pin steps) when a server has no pins in the run.

A server outside --limit, unreachable, or with a damaged certificate has no ``ftps_fleet_pins``
fact. The pinning client keeps that server's entries as they were published before (none when
there were none) and pins the others from their facts; only with
``ftps_client_pin_keep_missing: false`` (the role's default) is a missing fact an error. Runs the
real playbook against the controller as the client (local connection; the servers are never
contacted: publish_pins.yml only runs on ftps_clients).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.playbook import run_playbook

PINS = {
    "fingerprint_sha256": "AB" * 32,
    "spki_sha256": "c3BraS1uZXc=",
    "next_spki_sha256": "bmV4dC1rZXk=",
    "not_after": "2027-03-01T00:00:00Z",
}
OLD_FTP2 = {
    "fingerprint_sha256": "CD" * 32,
    "spki_sha256": "b2xkLWZ0cDI=",
    "source": "ftps_pki_certificate of ftp2",
}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the pin file is written owned by root")


# what rotate.yml's select publishes for each server it read (ftps_server's `listening`)
LISTENING = {
    "listen": ["192.0.2.1"],
    "control_port": 21,
    "implicit_port": 990,
    "passive_ports": [50000, 50009],
}


def publish(
    tmp_path: pathlib.Path, *extra: str, pins_enabled: bool = True, listening: dict | None = LISTENING
) -> subprocess.CompletedProcess[str]:
    """publish_pins.yml with the controller as the one client; ``pins_enabled=False``: a client
    that does not pin (ftps_client_pins_enabled not set: ftps_client's default); ``listening``:
    ftp1's ftps_server_listening (None: not published)."""
    ftp1 = {"ftps_fleet_pins": PINS} | ({"ftps_server_listening": listening} if listening else {})
    client = {"ftps_client_pins_enabled": True} if pins_enabled else {}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "ftps_servers": {
                            # ftp1 has the fact rotate.yml sets; ftp2 has none in this run
                            "hosts": {"ftp1": ftp1, "ftp2": {}},
                        },
                        "ftps_clients": {
                            "hosts": {
                                "localhost": {
                                    "ansible_connection": "local",
                                    "ansible_become": False,
                                    "ansible_python_interpreter": sys.executable,
                                    **client,
                                    "ftps_client_pin_file": str(tmp_path / "known_servers.json"),
                                }
                            }
                        },
                    }
                }
            }
        )
    )
    return run_playbook(inventory, "publish_pins.yml", *extra)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The run's output with every run of whitespace as one space (messages wrap)."""
    return " ".join(result.stdout.split())


def pins(tmp_path: pathlib.Path) -> dict:
    return json.loads((tmp_path / "known_servers.json").read_text())["servers"]


def test_a_server_without_pins_keeps_the_entries_published_before(tmp_path: pathlib.Path) -> None:
    stale = {"fingerprint_sha256": "EF" * 32, "spki_sha256": "c3RhbGU="}
    (tmp_path / "known_servers.json").write_text(
        json.dumps({"version": 1, "servers": {"ftp1:21": stale, "ftp2:21": OLD_FTP2, "ftp2:990": OLD_FTP2}})
    )
    result = publish(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    got = pins(tmp_path)
    assert got["ftp2:21"] == OLD_FTP2 and got["ftp2:990"] == OLD_FTP2
    assert got["ftp1:21"]["fingerprint_sha256"] == PINS["fingerprint_sha256"]
    assert got["ftp1:21"]["next_spki_sha256"] == [PINS["next_spki_sha256"]]
    assert sorted(got) == ["ftp1:21", "ftp1:990", "ftp2:21", "ftp2:990"]
    assert "no new pins for ftp2 in this run; their entries published before are kept" in said(result)


def test_a_server_never_pinned_stays_unpinned(tmp_path: pathlib.Path) -> None:
    result = publish(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(pins(tmp_path)) == ["ftp1:21", "ftp1:990"]
    assert "there is no pin file yet, so they stay unpinned" in said(result)


def test_without_keep_missing_a_missing_fact_fails_naming_the_server(tmp_path: pathlib.Path) -> None:
    result = publish(tmp_path, "-e", "ftps_client_pin_keep_missing=false")
    assert result.returncode == 2
    assert "ftp2 has no ftps_fleet_pins fact with fingerprint_sha256 and spki_sha256" in said(result)
    assert not (tmp_path / "known_servers.json").exists()


def test_a_client_that_does_not_pin_is_left_untouched(tmp_path: pathlib.Path) -> None:
    """ftps_client's own converge removes the pin file of a client without pins; the rotation's
    pin steps must not: that client's file (e.g. written by hand or by another tool) stays as it
    was, byte for byte, and nothing is reported changed."""
    mine = json.dumps({"version": 1, "servers": {"ftp1:21": OLD_FTP2}})
    (tmp_path / "known_servers.json").write_text(mine)
    result = publish(tmp_path, pins_enabled=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "known_servers.json").read_text() == mine
    recap = re.search(r"localhost\s*: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", result.stdout)
    assert recap, result.stdout[-3000:]


def test_the_pins_are_keyed_by_the_ports_the_server_published(tmp_path: pathlib.Path) -> None:
    result = publish(tmp_path, listening={**LISTENING, "control_port": 2121, "implicit_port": 0})
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted(pins(tmp_path)) == ["ftp1:2121"]


def test_a_server_without_its_published_ports_fails_naming_it(tmp_path: pathlib.Path) -> None:
    result = publish(tmp_path, listening=None)
    assert result.returncode == 2
    assert "ftp1 has ftps_fleet_pins but no ftps_server_listening fact" in said(result)
    assert not (tmp_path / "known_servers.json").exists()
