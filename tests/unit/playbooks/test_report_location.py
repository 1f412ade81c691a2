"""report.yml's default output directory is never read as inventory, and git ignores it.

The report used to go to ``<inventory dir>/reports``: every later ``-i inventories/lab`` run
parsed its HTML and JSON as inventory sources (warnings; with ``any_unparsed_is_failed`` every
run failed). The default is evaluated here exactly as report.yml writes it, for a copy of the lab
inventory; the report files are put there and ``ansible-inventory`` must load the inventory
cleanly, while the same files in the old place make it fail (so this test can fail).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.paths import ROOT

BIN = pathlib.Path(sys.executable).parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTPS_KIT_")}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
    )
    return env


def _default_report_dir(inventory: pathlib.Path) -> pathlib.Path:
    """report.yml's __report_dir, rendered by Ansible for a server of ``inventory`` (controller store)."""
    plays = yaml.safe_load((ROOT / "playbooks" / "report.yml").read_text())
    (expression,) = [p["vars"]["__report_dir"] for p in plays if "__report_dir" in p.get("vars", {})]
    done = subprocess.run(
        [
            str(BIN / "ansible"),
            "ftps_servers[0]",
            "-i",
            str(inventory),
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={expression}",
            # what ftps_pki's store.yml publishes (report.yml runs it first): the store's directory
            "-e",
            '{"ftps_pki_store_facts": {"dir": "{{ ftps_pki_store_dir }}"}}',
            "-o",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return pathlib.Path(done.stdout.split('"msg": "', 1)[1].split('"', 1)[0])


def _write_report(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ftps-report.json").write_text('{"generated": "x", "hosts": [{"host": "ftp1"}]}\n')
    (directory / "ftps-report.html").write_text("<!doctype html><html><body><table></table></body></html>\n")
    (directory / "ftps-report.txt").write_text("HOST  DAYS\nftp1  80\n")


def _load(inventory: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def lab(tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", copy, ignore=shutil.ignore_patterns(".ftps-kit"))
    return copy


def test_the_default_report_dir_is_not_read_as_inventory(lab: pathlib.Path) -> None:
    where = _default_report_dir(lab)
    assert where == lab / ".ftps-kit" / "reports"
    _write_report(where)
    done = _load(lab)
    assert done.returncode == 0, done.stderr
    assert "ftps-report" not in done.stderr


def test_the_old_place_was_read_as_inventory(lab: pathlib.Path) -> None:
    _write_report(lab / "reports")
    done = _load(lab)
    assert done.returncode != 0
    assert "reports" in done.stderr


def test_git_ignores_the_lab_s_reports() -> None:
    path = "inventories/lab/.ftps-kit/reports/ftps-report.html"
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    assert done.returncode == 0, f"{path} is not git-ignored"
