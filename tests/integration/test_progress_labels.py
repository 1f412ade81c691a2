"""The proof (playbooks/site.yml) and the rotation gate (playbooks/tasks/rotate_gate.yml) name the
server and listener of every probe, and never print the probe user's password, also at -vvv.

Issue 25: both tasks had ``no_log: true``, so every line read ``(item=(censored due to no_log))``.
The tasks are taken from the playbooks as they ship and run by ansible-playbook on this host
against ftpsd on 127.0.0.1 (the fixture's CA made the trust store through SSL_CERT_FILE), once with
the right password (a round trip) and once with a wrong one (the login fails and says so).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from tests.integration.conftest import PASSWORDS
from tests.paths import ROOT
from tests.playbook import probe_tasks, proof_tasks

WRONG = "Wr0ng-pr0be-s3cret-7781"


def _gate_tasks() -> list[dict]:
    return probe_tasks(yaml.safe_load((ROOT / "playbooks" / "tasks" / "rotate_gate.yml").read_text()))


def _run(tmp_path: pathlib.Path, tasks: list[dict], variables: dict, cafile: pathlib.Path) -> str:
    playbook = tmp_path / "play.yml"
    play = {"hosts": "localhost", "gather_facts": False, "vars": variables, "tasks": tasks}
    playbook.write_text(yaml.safe_dump([play]))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        SSL_CERT_FILE=str(cafile),
    )
    cmd = [
        str(pathlib.Path(sys.executable).parent / "ansible-playbook"),
        "-vvv",
        "-i",
        "localhost,",
        "-c",
        "local",
        str(playbook),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("password", ["right", "wrong"])
@pytest.mark.parametrize("which", ["site", "rotate_gate"])
def test_probe_lines_name_the_listener_and_hide_the_password(
    server, tmp_path, which: str, password: str
) -> None:
    secret = PASSWORDS["alice"] if password == "right" else WRONG
    targets = [{"port": server.port, "implicit": False}, {"port": server.implicit_port, "implicit": True}]
    if which == "site":
        tasks = proof_tasks()
        labels = {False: f"127.0.0.1:{server.port}", True: f"127.0.0.1:{server.implicit_port} (implicit)"}
        variables = {
            "__site_targets": [
                {"host": "127.0.0.1", **t, "round_trip": not t["implicit"], "label": labels[t["implicit"]]}
                for t in targets
            ],
            "ftps_site_probe_user": "alice",
            "ftps_site_probe_password": secret,
        }
        host = "127.0.0.1"
    else:
        tasks = _gate_tasks()
        variables = {
            "__rotate_targets": targets,
            "__rotate_prober": "localhost",
            "__rotate_probe_user": "alice",
            "__rotate_probe_password": secret,
            "__rotate_gate_fingerprint": server.cert.fingerprint,
            "ftps_rotate_probe_address": "127.0.0.1",
            "ftps_rotate_gate_retries": 0,
        }
        host = "localhost"
    out = _run(tmp_path, tasks, variables, server.cafile)
    assert "censored" not in out
    explicit = f"{host}:{server.port}" + (" (AUTH TLS)" if which == "rotate_gate" else "")
    for label in (explicit, f"{host}:{server.implicit_port} (implicit)"):
        assert re.search(rf"\(item={re.escape(label)}\)", out), out[-4000:]
    assert secret not in out
    if password == "right":
        assert re.search(r"\bmatch\W*: true", out)  # the round trip ran: the password was used
    else:
        assert "login as alice refused" in out


@pytest.mark.parametrize("pinned", ["served", "other"])
def test_the_gate_judges_every_listener_of_its_one_call(server, tmp_path, pinned: str) -> None:
    """rotate_gate.yml as shipped (without the names check, as its rollback runs it): both
    listeners probed in one call; a pin that is not the served certificate is a problem naming
    each listener, the served one passes with its round trips."""
    tasks = yaml.safe_load((ROOT / "playbooks" / "tasks" / "rotate_gate.yml").read_text())
    fingerprint = server.cert.fingerprint if pinned == "served" else "ab" * 32
    variables = {
        "__rotate_targets": [
            {"port": server.port, "implicit": False},
            {"port": server.implicit_port, "implicit": True},
        ],
        "__rotate_prober": "localhost",
        "__rotate_probe_user": "alice",
        "__rotate_probe_password": PASSWORDS["alice"],
        "__rotate_gate_fingerprint": fingerprint,
        "__rotate_gate_sans": False,
        "ftps_rotate_probe_address": "127.0.0.1",
        "ftps_rotate_gate_retries": 0,
    }
    show = {
        "name": "Show",
        "ansible.builtin.debug": {"msg": "GATE {{ __rotate_gate_ok }} {{ __rotate_gate_problems }}"},
    }
    out = _run(tmp_path, [*tasks, show], variables, server.cafile)
    if pinned == "served":
        assert "GATE True []" in out, out[-3000:]
    else:
        assert "GATE False" in out, out[-3000:]
        for where in (f"localhost:{server.port} (AUTH TLS)", f"localhost:{server.implicit_port} (implicit)"):
            assert f"{where}: pin_mismatch" in out, out[-3000:]
