"""Run one of the kit's playbooks from a unit test: ansible-playbook of this venv, the project's
ansible.cfg (the collection is this checkout), no colours, a bounded time, output captured."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from tests.paths import ROOT


def run_playbook(
    inventory: pathlib.Path,
    playbook: str | pathlib.Path,
    *args: str,
    cwd: pathlib.Path = ROOT,
    timeout: int = 180,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook -i inventory playbooks/<playbook> args...`` from the checkout's root
    (``cwd``); a ``pathlib.Path`` playbook (e.g. a test's own play) is run as it is. ``env`` adds
    to (or overrides) the environment, e.g. another stdout callback."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        **(env or {}),
    )
    return subprocess.run(
        [
            str(pathlib.Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(inventory),
            str(playbook if isinstance(playbook, pathlib.Path) else ROOT / "playbooks" / playbook),
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def probe_tasks(tasks: list[dict]) -> list[dict]:
    """Of a task list as shipped, the one task that calls ftps_probe (every listener in one call)
    and the task after it, which prints one line per listener (the tasks around them may change)."""
    (index,) = [i for i, t in enumerate(tasks) if "ftpskit.ftps.ftps_probe" in t]
    assert tasks[index + 1]["loop_control"]["label"] == "{{ item.target.label }}"
    return tasks[index : index + 2]


def proof_tasks() -> list[dict]:
    """site.yml's proof: its probe task and its line per listener (probe_tasks)."""
    import yaml

    plays = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    play = next(p for p in plays if p.get("name") == "Prove every server from the clients")
    return probe_tasks(play["tasks"])
