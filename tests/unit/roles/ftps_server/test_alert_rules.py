"""The shipped alert rules: promtool accepts them and their unit tests pass."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.paths import ROOT

PROMTOOL = shutil.which("promtool")
RULES = ROOT / "roles/ftps_server/files/prometheus"
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus; lab/host-packages.txt)"
)


@pytest.mark.parametrize(
    "args", [["check", "rules", "ftpsd-alerts.yml"], ["test", "rules", "ftpsd-alerts.test.yml"]]
)
def test_promtool(args: list[str]) -> None:
    done = subprocess.run([PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
