"""The stock Debian 12 controller deployed both servers (issue 21).

Converge already proved the servers (site.yml's last play: verified certificates, a checksummed
round trip). These tests prove that the controller was the stock one (so the proof means what it
says) and that each server runs ftpsd from wheels resolved for its own Python.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys

import pytest
import testinfra
from conftest import ROOT, ansible_env, host_name

BUILD = ROOT / "roles" / "ftps_server" / "files" / "build_wheelhouse.py"
WHEELHOUSE = (
    pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "ftps-kit" / "wheelhouse"
)


def test_the_controller_has_only_debians_python() -> None:
    """Debian's python3.11 (the venv's base) and nothing newer that a wheelhouse build could use."""
    assert sys.version_info[:2] == (3, 11)
    assert pathlib.Path(sys.base_prefix) == pathlib.Path("/usr"), sys.base_prefix
    found = {name: shutil.which(name) for name in ("python3.12", "python3.13", "pyenv")}
    assert found == dict.fromkeys(found), found
    pyenv_root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv"))
    assert not (pyenv_root / "versions").exists(), f"pyenv's Pythons are visible in {pyenv_root}"


def test_each_target_of_the_wheelhouse_is_complete_for_its_python() -> None:
    """The script's own check (every requirement, markers evaluated for the target) passes, and
    the markers really were the target's: pyasynchat/pyasyncore (python_version >= "3.12") only
    for 3.13, typing_extensions (pyOpenSSL's, python_version < "3.13") only for 3.11."""
    machine = platform.machine()
    targets = [f"3.11-{machine}", f"3.13-{machine}"]
    proc = subprocess.run(
        [
            sys.executable,
            str(BUILD),
            "--check",
            "--src",
            str(ROOT / "src"),
            "--out",
            str(WHEELHOUSE),
            *targets,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    names = {t: {p.name.split("-")[0].lower() for p in (WHEELHOUSE / t).glob("*.whl")} for t in targets}
    assert {"pyasynchat", "pyasyncore"} <= names[targets[1]]
    assert not {"pyasynchat", "pyasyncore"} & names[targets[0]]
    assert "typing_extensions" in names[targets[0]]
    assert "typing_extensions" not in names[targets[1]]


def test_ftpsd_runs_from_wheels_for_its_python(server: testinfra.host.Host) -> None:
    """Each server's venv has ftpsd with pyftpdlib importable (on 3.13 through pyasynchat and
    pyasyncore, gone from the standard library), and the daemon is running."""
    venv_python = "/opt/ftpsd/venv/bin/python"
    version = server.check_output(f"{venv_python} -c 'import sys; print(*sys.version_info[:2], sep=\".\")'")
    expected = {"12": "3.11", "13": "3.13"}[server.system_info.release.split(".")[0]]
    assert version == expected, f"{host_name(server)}: venv Python {version}"
    server.check_output(f"{venv_python} -c 'import pyftpdlib.servers, ftpsd'")
    if version == "3.13":
        server.check_output(f"{venv_python} -c 'import asynchat, asyncore'")
    assert server.service("ftpsd").is_running


def test_an_incomplete_prebuilt_wheelhouse_stops_the_play_before_any_change(
    servers: list[testinfra.host.Host], tmp_path: pathlib.Path
) -> None:
    """A pre-built wheelhouse (ftps_server_wheelhouse_build=false) whose 3.13 target lacks
    pyasynchat (SHA256SUMS rewritten to match, so only the dependency check can see it): the play
    fails on the check task, its message in the play's normal output naming the missing wheel and
    who needs it; no server's copied wheels or daemon changed."""
    machine = platform.machine()
    broken = tmp_path / "wheelhouse"
    shutil.copytree(WHEELHOUSE, broken)
    target = broken / f"3.13-{machine}"
    for wheel in target.glob("pyasynchat-*.whl"):
        wheel.unlink()
    sys.path.insert(0, str(BUILD.parent))
    try:
        import build_wheelhouse

        (target / "SHA256SUMS").write_text(build_wheelhouse.sums(target))
    finally:
        sys.path.remove(str(BUILD.parent))
    before = {host_name(s): state(s) for s in servers}
    inventory = pathlib.Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    extra = {"ftps_server_wheelhouse_build": False, "ftps_server_wheelhouse_dir": str(broken)}
    proc = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / "site.yml"),
            "--limit",
            "ftps_servers",
            "--tags",
            "ftps_server",
            "-e",
            json.dumps(extra),
        ],
        env={**ansible_env(), "FTPS_KIT_LAB_DATA_DIR": str(WHEELHOUSE.parent), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # What the operator's terminal shows: Ansible prints a failed task's result on stdout, or on
    # stderr with display_failed_stderr (Molecule's ansible.cfg sets it); yaml results wrap lines.
    shown = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, shown[-3000:]
    task = "TASK [ftpskit.ftps.ftps_server : Stop unless the wheelhouse is complete for every target]"
    assert task in shown, shown[-3000:]
    assert re.search(r"fatal: \[stock-deb1[23]\]: FAILED!", shown), shown[-3000:]
    problem = f"3.13-{machine}: no wheel of pyasynchat for pyasynchat (needed by pyftpdlib"
    assert problem in shown[shown.index(task) :], shown[-3000:]
    assert "Copy this host's wheels" not in shown
    assert {host_name(s): state(s) for s in servers} == before


def state(server: testinfra.host.Host) -> tuple[str, str]:
    """The manifest of the wheels a server last got, and ftpsd's main PID."""
    return (
        server.check_output("sha256sum /opt/ftpsd/wheelhouse.SHA256SUMS"),
        server.check_output("systemctl show -P MainPID ftpsd"),
    )


@pytest.fixture(autouse=True)
def _stock_only() -> None:
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: run through `molecule verify -s stock`")
