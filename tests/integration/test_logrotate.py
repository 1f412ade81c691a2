"""The ftps_server role's logrotate policy: logrotate accepts it, and a real rotation against a
running ftpsd (postrotate `ftpsd reload`) loses no xferlog line."""

from __future__ import annotations

import grp
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import time

import jinja2
import pytest

from tests.integration.conftest import Server
from tests.paths import ROOT

LOGROTATE = shutil.which("logrotate") or (
    "/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None
)
TEMPLATE = ROOT / "roles/ftps_server/templates/ftpsd.logrotate.j2"
pytestmark = pytest.mark.skipif(
    LOGROTATE is None, reason="logrotate is not installed (apt-get install logrotate)"
)


def _render(server: Server, tmp_path: pathlib.Path) -> pathlib.Path:
    venv_bin = pathlib.Path(sys.executable).parent
    text = jinja2.Template(TEMPLATE.read_text()).render(
        ansible_managed="test",
        ftps_server_xferlog=str(server.xferlog),
        ftps_server_logrotate_frequency="daily",
        ftps_server_logrotate_keep=3,
        ftps_server_user=pwd.getpwuid(os.getuid()).pw_name,
        __ftps_server_group=grp.getgrgid(os.getgid()).gr_name,
        ftps_server_venv=str(venv_bin.parent),
        ftps_server_config_dir=str(server.config_path.parent),
    )
    # The test config is not called ftpsd.toml: point the postrotate at the real one.
    text = text.replace(f"{server.config_path.parent}/ftpsd.toml", str(server.config_path))
    conf = tmp_path / "ftpsd.logrotate"
    conf.write_text(text)
    return conf


def test_logrotate_accepts_the_policy(server: Server, tmp_path) -> None:
    conf = _render(server, tmp_path)
    done = subprocess.run(
        [LOGROTATE, "-d", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in (done.stdout + done.stderr).lower()


def test_rotation_loses_no_transfer_line(server: Server, tmp_path) -> None:
    if not (pathlib.Path(sys.executable).parent / "ftpsd").exists():
        pytest.skip("no ftpsd script beside the test python (make venv installs it)")
    (server.homes["alice"] / "f.txt").write_text("x")
    ftp = server.client()
    try:
        ftp.retrbinary("RETR f.txt", lambda _: None)
        # the 226 may reach the client before the transfer's xferlog line is written: rotate once
        # it is there (logrotate skips an empty log), or the test races the daemon
        xferlog = pathlib.Path(server.xferlog)
        deadline = time.monotonic() + 30
        while not (xferlog.exists() and "f.txt" in xferlog.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        conf = _render(server, tmp_path)
        done = subprocess.run(
            [LOGROTATE, "-f", "-s", str(tmp_path / "state"), str(conf)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        ftp.retrbinary("RETR f.txt", lambda _: None)
    finally:
        ftp.quit()
    rotated = pathlib.Path(f"{server.xferlog}.1")
    assert rotated.exists() and rotated.read_text().count("f.txt") == 1
    assert server.xferlog.read_text().count("f.txt") == 1  # reopened by the reload
