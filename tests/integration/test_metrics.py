"""`ftpsd status` and `ftpsd metrics` against a real ftpsd on loopback: what is served vs what is
deployed, before and after a reload, and a textfile `promtool check metrics` accepts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from cryptography import x509

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
    # The same leaf under the certificate exporters' names, with their labels.
    cert = soon.cert
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    issuer = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    ssl = [k for k in values if k.startswith("ssl_file_cert_not_after{")]
    assert len(ssl) == 1 and values[ssl[0]] == not_after
    ssl_labels = dict(re.findall(r'(\w+)="([^"]*)"', ssl[0]))
    assert ssl_labels["serial_no"] == str(cert.serial_number) and ssl_labels["cn"] == cn
    assert ssl_labels["issuer_cn"] == issuer and ssl_labels["dnsnames"].startswith(",")
    assert set(ssl_labels) == {"file", "serial_no", "issuer_cn", "cn", "dnsnames", "ips", "emails", "ou"}
    (x5,) = [k for k in values if k.startswith("x509_cert_not_after{")]
    assert values[x5] == not_after
    x5_labels = dict(re.findall(r'(\w+)="([^"]*)"', x5))
    assert x5_labels == {
        "filepath": ssl_labels["file"],
        "filename": os.path.basename(ssl_labels["file"]),
        "serial_number": str(cert.serial_number),
        "subject_CN": cn,
        "issuer_CN": issuer,
    }
    assert _one(values, "ssl_file_cert_not_before") == not_before == _one(values, "x509_cert_not_before")


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
            "path": "/etc/ftpsd/a b.pem",
            "names": {
                "serial_decimal": "31",
                "subject_cn": 'a "q"',
                "issuer_cn": "x",
                "ou": [],
                "dns": ["a.example", "b.example"],
                "ips": [],
                "emails": [],
            },
        },
    }
    text = generate_latest(registry_for(info, 30)).decode()
    assert re.search(r'subject="CN=a \\"quoted\\"\\\\name"', text)
    assert 'issuer="CN=x\\nnewline"' in text
    assert 'cn="a \\"q\\""' in text and 'dnsnames=",a.example,b.example,"' in text


# --- operator counters: exact deltas for what a real client did ---------------------------------
_COUNTER_FAMILIES = (
    "ftpsd_transfers_total",
    "ftpsd_transfer_bytes_total",
    "ftpsd_logins_total",
    "ftpsd_bans_total",
    "ftpsd_sessions_refused_total",
    "ftpsd_reloads_total",
)


def _counters(values: dict[str, float], workers: int) -> dict[str, float]:
    """Every operator counter series summed over the workers (key: name{labels without worker});
    each worker must export the whole set."""
    sums: dict[str, float] = {}
    seen: dict[str, set[str]] = {}
    for key, value in values.items():
        name, _, labels = key.partition("{")
        if name not in _COUNTER_FAMILIES:
            continue
        parts = [p for p in labels.rstrip("}").split(",") if p]
        worker = next(p for p in parts if p.startswith("worker="))
        rest = name + "{" + ",".join(p for p in parts if not p.startswith("worker=")) + "}"
        sums[rest] = sums.get(rest, 0) + value
        seen.setdefault(rest, set()).add(worker)
    assert all(len(w) == workers for w in seen.values()), seen
    return sums


def _wait_deltas(server: Server, tmp_path, before: dict[str, float], want: dict[str, float], workers: int):
    """Wait (bounded) until the counters moved by ``want`` (every other series by 0), then check
    that they stay there once every worker's status file had time to catch up."""
    deadline = time.monotonic() + 20
    while True:
        now = _counters(_metrics(server, tmp_path), workers)
        deltas = {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)}
        if deltas == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    time.sleep(1.5)  # a worker refreshes its status file within 1 s of a change
    now = _counters(_metrics(server, tmp_path), workers)
    assert {k: v - before.get(k, 0) for k, v in now.items() if v != before.get(k, 0)} == want
    assert set(now) == set(before)  # the whole vocabulary, from the start


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_for_a_real_client(make_server, tmp_path, workers: int) -> None:
    import ftplib
    import io

    from ftpskit_common.client import FTPSClient

    server = make_server(workers=workers)
    before = _counters(_metrics(server, tmp_path), workers)
    assert before and all(v == 0 for v in before.values())

    ftp = server.client("alice")  # a good login
    ftp.storbinary("STOR up.bin", io.BytesIO(b"u" * 1500))
    got = io.BytesIO()
    ftp.retrbinary("RETR up.bin", got.write)
    assert got.getvalue() == b"u" * 1500
    ftp.quit()
    bad = FTPSClient("127.0.0.1", server.port, context=server.context(), timeout=20)
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        bad.login("alice", "not-the-password")  # a failed login
    bad.close()

    _wait_deltas(
        server,
        tmp_path,
        before,
        {
            'ftpsd_logins_total{result="ok"}': 1,
            'ftpsd_logins_total{result="failed"}': 1,
            'ftpsd_transfers_total{direction="upload",result="ok"}': 1,
            'ftpsd_transfers_total{direction="download",result="ok"}': 1,
            'ftpsd_transfer_bytes_total{direction="upload",result="ok"}': 1500,
            'ftpsd_transfer_bytes_total{direction="download",result="ok"}': 1500,
        },
        workers,
    )
    # No label carries client text: only the fixed vocabularies (and the worker index).
    allowed = {"upload", "download", "ok", "failed", "banned", "refused", "total", "per_ip", "untracked"}
    for line in (tmp_path / "ftpsd.prom").read_text().splitlines():
        if line.startswith(_COUNTER_FAMILIES):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            assert set(labels) <= {"worker", "direction", "result", "reason"}, line
            assert labels.pop("worker") in {str(i) for i in range(workers)}, line
            assert set(labels.values()) <= allowed, line


def test_counters_bans_and_reloads(make_server, tmp_path) -> None:
    import ftplib

    from ftpskit_common.client import FTPSClient

    server = make_server(ban_after_failures=2)
    before = _counters(_metrics(server, tmp_path), 1)
    for _ in range(2):
        bad = FTPSClient("127.0.0.1", server.port, context=server.context(), timeout=20)
        with pytest.raises(ftplib.Error, match=r"^(530|421)"):
            bad.login("bob", "wrong")
        bad.close()
    with pytest.raises((ftplib.Error, OSError)):  # banned: refused at the greeting
        FTPSClient("127.0.0.1", server.port, context=server.context(), timeout=20).login("bob", "bob-pw")
    assert server.reload_command().returncode == 0
    (server.pki / "current" / "cert.pem").write_text("not a certificate\n")
    assert server.reload_command().returncode == 1
    _wait_deltas(
        server,
        tmp_path,
        before,
        {
            'ftpsd_logins_total{result="failed"}': 2,
            "ftpsd_bans_total{}": 1,
            'ftpsd_sessions_refused_total{reason="banned"}': 1,
            'ftpsd_reloads_total{result="ok"}': 1,
            'ftpsd_reloads_total{result="failed"}': 1,
        },
        1,
    )


def test_counters_failed_download(server: Server, tmp_path) -> None:
    """A download the client breaks off counts as failed, with the bytes the daemon sent before."""
    import socket
    import struct

    size = 8 * 1024 * 1024
    (server.homes["alice"] / "big.bin").write_bytes(b"d" * size)
    before = _counters(_metrics(server, tmp_path), 1)
    ftp = server.client("alice")
    conn = ftp.transfercmd("RETR big.bin")
    assert conn.recv(1024)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
    conn.close()
    with pytest.raises(Exception, match=r"^4\d\d") as cut:
        ftp.voidresp()
    ftp.close()
    failed = 'ftpsd_transfers_total{direction="download",result="failed"}'
    sent = 'ftpsd_transfer_bytes_total{direction="download",result="failed"}'
    deadline = time.monotonic() + 20
    while True:
        now = _counters(_metrics(server, tmp_path), 1)
        deltas = {k: v - before[k] for k, v in now.items() if v != before[k]}
        if failed in deltas or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    # The bytes are those the daemon counted as sent, the figure its 426 reply states too.
    (told,) = re.findall(r"(\d+) bytes transmitted", str(cut.value))
    assert deltas.pop(sent, 0) == int(told) < size
    assert deltas == {failed: 1, 'ftpsd_logins_total{result="ok"}': 1}
