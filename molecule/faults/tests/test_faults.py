"""What side_effect.yml's faulted rotations left behind, read back as an operator would: the four
records (A: a corrupted certificate, B: the daemon killed during its reload, C: the server stopped
mid-rotation, D: the re-run), host by host and step by step, and the servers' state at the end:
nothing half-changed, `ftpsd status` on the PATH.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from conftest import SERVERS, get_host

# name -> address, the lab's plan for this scenario (lab/molecule-all.sh passes it)
LAB_HOSTS = json.loads(os.environ["FTPSKIT_LAB_HOSTS"])
HERE = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "faults"
# side_effect.yml's roles: the first server is corrupted in A, the last faulted in B and C
BROKEN, VICTIM = SERVERS[0], SERVERS[-1]


def record(run: str) -> dict:
    (path,) = (HERE / f"records-{run}").glob("rotation-*.json")
    return json.loads(path.read_text())


def entry(rec: dict, host: str) -> dict:
    return next(h for h in rec["hosts"] if h["host"] == host)


def steps(e: dict) -> list[tuple[str, bool]]:
    return [(s["step"], s["ok"]) for s in e["steps"]]


def test_a_corrupted_certificate_is_left_out_and_the_others_rotate() -> None:
    rec = record("A")
    assert rec["version"] == 2
    assert rec["result"] == "complete"
    assert rec["servers"] == SERVERS
    assert list(rec["unusable"]) == [BROKEN]
    reason = rec["unusable"][BROKEN]
    assert "is damaged: it does not read as a PEM certificate" in reason and "padding" not in reason
    assert BROKEN not in rec["selected"] and rec["not_reached"] == []
    others = [h for h in SERVERS if h != BROKEN]
    assert [(h["host"], h["result"]) for h in rec["hosts"]] == [(h, "rotated") for h in others]
    for e in rec["hosts"]:
        assert steps(e) == [("issue", True), ("reload", True), ("gate", True)]
        assert e["served"] == [e["new"]["fingerprint_sha256"]] and e["problems"] == []


def test_b_a_daemon_killed_during_its_reload_is_started_on_the_previous_certificate() -> None:
    rec = record("B")
    assert rec["result"] == "stopped" and rec["unusable"] == {}
    assert [(h["host"], h["result"]) for h in rec["hosts"]] == [
        *[(h, "rotated") for h in SERVERS[:-1]],
        (VICTIM, "rolled_back"),
    ]
    e = entry(rec, VICTIM)
    names = [s["step"] for s in e["steps"]]
    assert names[0] == "issue" and e["steps"][0]["ok"]
    # the kill lands in the reload (or, a little late, in the gate right after it)
    failed = [s for s in e["steps"] if not s["ok"]]
    assert len(failed) == 1 and failed[0]["step"] in ("reload", "gate"), e["steps"]
    assert names[-3:] == ["rollback_files", "restore_daemon", "gate_previous"]
    back = {s["step"]: s for s in e["steps"][-3:]}
    assert back["rollback_files"]["ok"] and back["rollback_files"]["changed"]
    # systemd's Restart= was off: rotate.yml itself started the daemon
    assert back["restore_daemon"]["ok"] and back["restore_daemon"]["detail"].startswith(
        ("started", "restarted")
    )
    assert back["gate_previous"]["ok"]
    assert e["served"] == [e["old"]["fingerprint_sha256"]]
    assert e["problems"] == [f"{failed[0]['step']}: {failed[0]['error']}"]


def test_c_a_server_stopped_mid_rotation_is_recorded_with_every_error() -> None:
    rec = record("C")
    assert rec["result"] == "stopped"
    assert [(h["host"], h["result"]) for h in rec["hosts"]][:-1] == [(h, "rotated") for h in SERVERS[:-1]]
    e = entry(rec, VICTIM)
    assert e["result"] in ("failed_rollback", "unreachable"), e
    # the forward step that met the stopped server, then every step of the way back, each failed
    assert [s for s, _ in steps(e)][-3:] == ["rollback_files", "restore_daemon", "gate_previous"]
    assert len(e["problems"]) >= 3, e["problems"]
    assert all(not ok for _, ok in steps(e)[-3:]), e["steps"]


def test_d_a_re_run_completes() -> None:
    rec = record("D")
    assert rec["result"] == "complete" and rec["unusable"] == {} and rec["not_reached"] == []
    assert [(h["host"], h["result"]) for h in rec["hosts"]] == [(h, "rotated") for h in SERVERS]


def test_load_failed_only_on_the_victim_while_it_was_down() -> None:
    load = json.loads((HERE / "load-1.json").read_text())
    windows = json.loads((HERE / "windows.json").read_text())
    for event in load["events"]:
        if event["ok"]:
            continue
        assert event["server"] == VICTIM, event
        assert any(
            event["start"] <= float(w["end"]) and event["end"] >= float(w["start"]) for w in windows.values()
        ), event
    # traffic reached every server throughout, including the victim after it came back
    last_window_end = max(float(w["end"]) for w in windows.values())
    for name in SERVERS:
        assert any(
            e["ok"] and e["server"] == name and e["start"] > last_window_end for e in load["events"]
        ), name
    # podman start keeps the stopped container's planned address (lab/lab_addresses.py: podman run
    # --ip) and /etc/hosts entries: after C the load's connections (the name resolved for each)
    # went to that address, which the victim has now, and to no other
    planned = LAB_HOSTS[VICTIM]
    now = set(get_host(VICTIM).interface("eth0").addresses)
    after = {e["address"] for e in load["events"] if e["server"] == VICTIM and e["start"] > last_window_end}
    assert after == {planned} and planned in now, (after, now, load["addresses"][VICTIM])


@pytest.mark.parametrize("name", SERVERS)
def test_nothing_half_changed(name: str) -> None:
    """Key matches certificate, what is served is what is deployed, the daemon is active."""
    host = get_host(name)
    assert host.service("ftpsd").is_running
    status = json.loads(host.check_output("ftpsd status --json"))
    deployed = (
        host.check_output("openssl x509 -in /etc/ftps-kit/pki/current/cert.pem -noout -fingerprint -sha256")
        .split("=", 1)[1]
        .replace(":", "")
        .lower()
    )
    served = {w["certificate"]["fingerprint"] for w in status["workers"]}
    assert served == {deployed}, (served, deployed)
    cert_key = host.check_output("openssl x509 -in /etc/ftps-kit/pki/current/cert.pem -noout -pubkey")
    key_pub = host.check_output("openssl pkey -in /etc/ftps-kit/pki/current/key.pem -pubout")
    assert cert_key == key_pub
    # the record's last word on this server is what it serves
    assert entry(record("D"), name)["new"]["fingerprint_sha256"].replace(":", "").lower() == deployed


@pytest.mark.parametrize("name", SERVERS)
def test_ftpsd_is_on_the_path(name: str) -> None:
    """docs/ftpsd.md says `ftpsd status`: a plain command in a login shell, no venv path."""
    host = get_host(name)
    result = host.run("bash -lc 'command -v ftpsd && ftpsd status'")
    assert result.rc == 0, result.stderr
    assert result.stdout.splitlines()[0] == "/usr/local/bin/ftpsd"
    assert host.file("/usr/local/bin/ftpsd").linked_to == "/opt/ftpsd/venv/bin/ftpsd"
