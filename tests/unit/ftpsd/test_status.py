"""`ftpsd reload` without a daemon to answer, and how it words the workers' answers."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from ftpsd.config import peek_runtime_dir
from ftpsd.status import DaemonStatus, ReloadFailed, _outcome, reload_daemon


def _report(index: int, fingerprint: str = "AA", problems: tuple[str, ...] = ()) -> dict:
    return {
        "instance": "i",
        "index": index,
        "pid": 100 + index,
        "generation": 3,
        "problems": list(problems),
        "warnings": [],
        "fingerprint": fingerprint,
        "directory": "/pki/gen-3",
        "users": 2,
    }


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        (
            [_report(0, problems=("tls.keyfile: bad",)), _report(1, problems=("tls.keyfile: bad",))],
            ["reload refused by workers 0, 1, still serving certificate sha256=AA: tls.keyfile: bad"],
        ),
        (
            [_report(0, "BB"), _report(1, problems=("users.file: gone",))],
            [
                "reload refused by worker 1, still serving certificate sha256=AA: users.file: gone",
                "reload generation 3 applied by worker 0 but refused by the others:"
                " fix the problems above and reload again",
            ],
        ),
        (
            [_report(0, "AA"), _report(1, "BB")],
            [
                "workers serve different certificates (files changed during the reload?):"
                " worker 0 sha256=AA, worker 1 sha256=BB"
            ],
        ),
    ],
)
def test_outcome_refused_or_inconsistent(reports: list[dict], expected: list[str]) -> None:
    with pytest.raises(ReloadFailed) as info:
        _outcome(reports, len(reports))
    assert info.value.lines == expected


def test_outcome_applied() -> None:
    result = _outcome([_report(0)], 1)
    assert (
        result.summary == "reloaded generation 3 on 1 worker: certificate sha256=AA from /pki/gen-3, 2 users"
    )


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def test_no_status_directory() -> None:
    with pytest.raises(
        ReloadFailed, match=r'server.runtime_dir is "": the daemon publishes no reload status'
    ):
        reload_daemon("")


def test_no_daemon_running(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ReloadFailed, match=r"no daemon status in .*/daemon.json: is ftpsd running"):
        reload_daemon(str(tmp_path))
    pid = _dead_pid()
    with pytest.raises(ReloadFailed, match=rf"^no process {pid}: ftpsd is not running$"):
        reload_daemon(str(tmp_path), pid)


def test_stale_status_of_a_dead_daemon(tmp_path: pathlib.Path) -> None:
    status = DaemonStatus.create(str(tmp_path), 1)
    status.publish()
    text = (tmp_path / "daemon.json").read_text().replace(f'"pid": {os.getpid()}', f'"pid": {_dead_pid()}')
    (tmp_path / "daemon.json").write_text(text)
    with pytest.raises(ReloadFailed, match=r"ftpsd is not running \(.*daemon.json is stale\)"):
        reload_daemon(str(tmp_path))


def test_a_restart_clears_the_status_of_the_earlier_run(tmp_path: pathlib.Path) -> None:
    old = DaemonStatus.create(str(tmp_path), 2)
    old.publish()
    old.report(1, 7, problems=[], warnings=[], fingerprint="AA", directory="/d", users=1)
    DaemonStatus.create(str(tmp_path), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[server]\nruntime_dir = "/x/run"\nbogus = 1\n', "/x/run"),  # other problems do not matter
        ("[server]\n", "/run/ftpsd"),
        ("not toml [", "/run/ftpsd"),
        ("server = 1\n", "/run/ftpsd"),
        ('[server]\nruntime_dir = ""\n', ""),
    ],
)
def test_peek_runtime_dir(tmp_path: pathlib.Path, text: str, expected: str) -> None:
    path = tmp_path / "ftpsd.toml"
    path.write_text(text)
    assert peek_runtime_dir(str(path)) == expected


def test_a_directory_in_use_by_another_running_daemon_is_left_alone(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = json.dumps({"instance": "x", "pid": other.pid, "workers": 1, "generation": 5})
        (tmp_path / "daemon.json").write_text(theirs)
        status = DaemonStatus.create(str(tmp_path), 1)
        status.publish()
        assert (tmp_path / "daemon.json").read_text() == theirs
        assert status.directory == ""
        assert f"is in use by ftpsd pid {other.pid}" in caplog.text
    finally:
        other.kill()
        other.wait()


def test_a_malformed_status_is_no_daemon(tmp_path: pathlib.Path) -> None:
    (tmp_path / "daemon.json").write_text('{"pid": "1"}')
    with pytest.raises(ReloadFailed, match=r"no daemon status in"):
        reload_daemon(str(tmp_path))
