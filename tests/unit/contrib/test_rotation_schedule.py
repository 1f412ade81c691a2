"""contrib/systemd: the timer and service units are valid, and the command they run passes the
renewal window to rotate.yml and hands its exit status and a result line to the journal."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from tests.paths import ROOT

UNITS = ROOT / "contrib" / "systemd"
SCRIPT = UNITS / "ftps-kit-rotate"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_verify(tmp_path: pathlib.Path) -> None:
    # verify insists that ExecStart exists: point it at the script in the checkout.
    service = (UNITS / "ftps-kit-rotate.service").read_text()
    assert "ExecStart=/usr/local/bin/ftps-kit-rotate\n" in service
    (tmp_path / "ftps-kit-rotate.service").write_text(
        service.replace("/usr/local/bin/ftps-kit-rotate", str(SCRIPT))
    )
    shutil.copy(UNITS / "ftps-kit-rotate.timer", tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(p) for p in sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings (exit 0): any output counts as a failure.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def _fake_playbook(tmp_path: pathlib.Path, rc: int) -> pathlib.Path:
    fake = tmp_path / "ansible-playbook"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/argv"\necho PLAY RECAP\nexit {rc}\n')
    fake.chmod(0o755)
    return fake


def _run(tmp_path: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"]}
    return subprocess.run(
        [str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("rc", [0, 2, 4])
def test_the_command_passes_the_window_and_the_exit_status(tmp_path: pathlib.Path, rc: int) -> None:
    fake = _fake_playbook(tmp_path, rc)
    result = _run(
        tmp_path,
        FTPS_KIT_INVENTORY="/srv/inv",
        FTPS_KIT_RENEW_WITHIN_DAYS="21",
        FTPS_KIT_ANSIBLE_PLAYBOOK=str(fake),
        FTPS_KIT_ROTATE_ARGS="--vault-password-file /srv/vp -e ftps_rotate_serial=2",
    )
    assert result.returncode == rc
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-i",
        "/srv/inv",
        "ftpskit.ftps.rotate",
        "-e",
        "ftps_rotate_expiring_within_days=21",
        "--vault-password-file",
        "/srv/vp",
        "-e",
        "ftps_rotate_serial=2",
    ]
    assert "PLAY RECAP" in result.stdout
    if rc == 0:
        assert "ftps-kit-rotate: result ok" in result.stdout
    else:
        assert f"ftps-kit-rotate: result failed (exit {rc})" in result.stderr


def test_the_window_defaults_to_30_days(tmp_path: pathlib.Path) -> None:
    fake = _fake_playbook(tmp_path, 0)
    assert _run(tmp_path, FTPS_KIT_INVENTORY="inv", FTPS_KIT_ANSIBLE_PLAYBOOK=str(fake)).returncode == 0
    assert "ftps_rotate_expiring_within_days=30" in (tmp_path / "argv").read_text().splitlines()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "FTPS_KIT_INVENTORY is not set"),
        ({"FTPS_KIT_INVENTORY": "inv", "FTPS_KIT_RENEW_WITHIN_DAYS": "soon"}, "must be a number of days"),
    ],
)
def test_bad_settings_fail_before_running_anything(tmp_path: pathlib.Path, env: dict, message: str) -> None:
    fake = _fake_playbook(tmp_path, 0)
    result = _run(tmp_path, FTPS_KIT_ANSIBLE_PLAYBOOK=str(fake), **env)
    assert result.returncode == 64 and message in result.stderr
    assert not (tmp_path / "argv").exists()
