"""`ftpsd status` and `ftpsd metrics` against a real ftpsd on loopback: what is served vs what is
deployed, before and after a reload, and a textfile `promtool check metrics` accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import Server

PROMTOOL = shutil.which("promtool")


def _ftpsd(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftpsd", *args, "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _status(server: Server) -> dict:
    return json.loads(_ftpsd(server, "status", "--json").stdout)


def _metrics(server: Server, tmp_path) -> dict[str, float]:
    out = tmp_path / "ftpsd.prom"
    done = _ftpsd(server, "metrics", "--out", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    if PROMTOOL:
        check = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _one(values: dict[str, float], name: str) -> float:
    (value,) = [v for k, v in values.items() if k == name or k.startswith(name + "{")]
    return value


@pytest.mark.parametrize("workers", [1, 2])
def test_served_vs_deployed_before_and_after_reload(make_server, tmp_path, workers: int) -> None:
    server = make_server(workers=workers)
    first = _status(server)
    assert first["running"] and first["served_matches_deployed"] is True
    assert [w["certificate"]["fingerprint"] for w in first["workers"]] == [server.cert.fingerprint] * workers
    assert "served matches deployed: yes" in _ftpsd(server, "status").stdout
    values = _metrics(server, tmp_path)
    assert _one(values, "ftpsd_up") == 1
    assert _one(values, "ftpsd_cert_served_matches_deployed") == 1

    new = server.rotate()  # on disk only: the daemon still serves the old one
    human = _ftpsd(server, "status")
    assert "served matches deployed: no" in human.stdout and human.returncode == 1
    values = _metrics(server, tmp_path)
    assert _one(values, "ftpsd_cert_served_matches_deployed") == 0
    info = [k for k in values if k.startswith("ftpsd_cert_info{")]
    assert len(info) == 1 and f'fingerprint_sha256="{new.fingerprint}"' in info[0]
    served = [k for k in values if k.startswith("ftpsd_served_cert_info{")]
    assert len(served) == workers and all(server.cert.fingerprint in k for k in served)

    done = server.reload_command()
    assert done.returncode == 0, done.stderr
    after = _status(server)
    assert after["served_matches_deployed"] is True
    assert all(w["last_reload"]["result"] == "ok" for w in after["workers"])
    values = _metrics(server, tmp_path)
    assert _one(values, "ftpsd_cert_served_matches_deployed") == 1
    assert all(v == 1 for k, v in values.items() if k.startswith("ftpsd_last_reload_success"))
    assert "served matches deployed: yes" in _ftpsd(server, "status").stdout


def test_refused_reload_is_reported(server: Server, tmp_path) -> None:
    (server.pki / "current" / "cert.pem").write_text("not a certificate\n")
    done = server.reload_command()
    assert done.returncode == 1
    (worker,) = _status(server)["workers"]
    assert worker["last_reload"]["result"] == "refused" and "cert" in worker["last_reload"]["message"]
    assert _one(_metrics(server, tmp_path), "ftpsd_last_reload_success") == 0


def test_soon_expiring_certificate_values(make_server, tmp_path) -> None:
    server = make_server()
    soon = server.rotate(server.ca.issue(days=3))
    assert server.reload_command().returncode == 0
    values = _metrics(server, tmp_path)
    not_after = soon.cert.not_valid_after_utc.timestamp()
    assert _one(values, "ftpsd_cert_not_after_timestamp_seconds") == not_after
    assert 2.9 * 86400 < not_after - time.time() < 3.1 * 86400
    assert _one(values, "ftpsd_cert_renewal_due_timestamp_seconds") == not_after - 30 * 86400
    not_before = soon.cert.not_valid_before_utc.timestamp()
    assert _one(values, "ftpsd_cert_not_before_timestamp_seconds") == not_before
    ca_not_after = server.ca.intermediate.not_valid_after_utc.timestamp()
    assert _one(values, "ftpsd_chain_not_after_timestamp_seconds") == ca_not_after


def test_sessions_are_counted(server: Server, tmp_path) -> None:
    ftp = server.client()
    try:
        deadline = time.monotonic() + 15
        while _status(server)["sessions"] != 1:
            assert time.monotonic() < deadline, "the session count was not refreshed"
            time.sleep(0.5)
        assert _one(_metrics(server, tmp_path), "ftpsd_sessions") == 1
    finally:
        ftp.quit()


def test_not_running(server: Server, tmp_path) -> None:
    server.stop()
    assert _ftpsd(server, "status").returncode == 1
    assert not _status(server)["running"]
    values = _metrics(server, tmp_path)
    assert _one(values, "ftpsd_up") == 0
    assert not any(k.startswith("ftpsd_cert_served_matches_deployed") for k in values)


def test_metrics_label_escaping(tmp_path) -> None:
    from prometheus_client import generate_latest

    from ftpsd.metrics import registry_for

    info = {
        "running": False,
        "workers": [],
        "served_matches_deployed": None,
        "deployed": {
            "fingerprint": "AA:BB",
            "serial": "1F",
            "subject": 'CN=a "quoted"\\name',
            "issuer": "CN=x\nnewline",
            "not_before": 1.0,
            "not_after": 2.0,
            "chain_not_after": None,
        },
    }
    text = generate_latest(registry_for(info, 30)).decode()
    assert re.search(r'subject="CN=a \\"quoted\\"\\\\name"', text)
    assert 'issuer="CN=x\\nnewline"' in text
