"""What ftpsd tells about itself on the real hosts (issue 13): readiness, status, metrics, logs.

- `Type=notify`: `systemctl restart ftpsd` returns once the daemon serves, so a session opened
  right after it gets the banner at once (no retry loop here on purpose).
- `ftpsd status` and the textfile metrics report the certificate in memory and whether it is
  the one on disk: a certificate replaced on disk without a reload shows "no" / 0 until the
  reload, then "yes" / 1. The textfile parses with promtool (run on the controller).
- journald priorities: `journalctl -u ftpsd -p warning` holds a failed login's warning and not a
  successful login's info line.
- logrotate: a forced rotation renames the xferlog, ftpsd reopens it, the next transfer's line
  lands in the new file and none is lost.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest
import testinfra
from conftest import host_name
from test_server import CONTROL_PORT, PKI_CURRENT, curl, password, q, served_fingerprint

STATUS = "/opt/ftpsd/venv/bin/ftpsd status --config /etc/ftpsd/ftpsd.toml"
PROM = "/var/lib/prometheus/node-exporter/ftpsd.prom"
XFERLOG = "/var/log/ftpsd/xferlog"


def metric(text: str, name: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]


def refresh_metrics(server: testinfra.host.Host) -> str:
    server.check_output("systemctl start ftpsd-metrics.service")
    return server.file(PROM).content_string


def test_unit_is_type_notify_and_serves_when_start_returns(
    server: testinfra.host.Host, client: testinfra.host.Host
) -> None:
    assert server.check_output("systemctl show -P Type ftpsd") == "notify"
    server.check_output("systemctl restart ftpsd")
    name = host_name(server)
    # One attempt, right after systemctl returned: READY=1 came only once every worker served.
    probe = (
        f"import socket; print(socket.create_connection(({name!r}, {CONTROL_PORT}), 5).recv(200).decode())"
    )
    out = client.run(f"python3 -c {q(probe)}")
    assert out.rc == 0 and out.stdout.startswith("220"), out.stdout + out.stderr
    assert server.check_output("systemctl show -P ActiveState ftpsd") == "active"


def test_metrics_timer_writes_a_valid_textfile(server: testinfra.host.Host) -> None:
    assert server.service("ftpsd-metrics.timer").is_running
    text = refresh_metrics(server)
    assert metric(text, "ftpsd_up") == [1.0]
    assert metric(text, "ftpsd_cert_served_matches_deployed") == [1.0]
    assert metric(text, "ftpsd_cert_not_after_timestamp_seconds")
    assert server.file(PROM).mode & 0o004, "node_exporter must be able to read the textfile"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed on the controller (lab/host-packages.txt has prometheus)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_certificate_replaced_without_reload_is_reported_until_the_reload(
    server: testinfra.host.Host, client: testinfra.host.Host
) -> None:
    """A new certificate for the same key written over the deployed one, no reload: what is
    served is not what is deployed, in `ftpsd status`, its JSON and the metrics; after
    `systemctl reload` all three agree again. The deployed certificate is put back at the end."""
    name = host_name(server)
    cert = f"{PKI_CURRENT}/cert.pem"
    saved = "/etc/ftps-kit/observability-test-cert.pem"
    server.check_output(f"cp -a {cert} {saved}")
    before = served_fingerprint(client, name)
    try:
        server.check_output(
            f"openssl req -x509 -new -key {PKI_CURRENT}/key.pem -subj /CN={q(name)} -days 2"
            f" -addext subjectAltName=DNS:{q(name)} -out {cert}.new"
        )
        server.check_output(f"cat {cert}.new > {cert} && rm {cert}.new")
        status = server.run(STATUS)
        assert status.rc != 0, status.stdout
        assert "served matches deployed: no" in status.stdout, status.stdout
        assert '"served_matches_deployed": false' in server.run(f"{STATUS} --json").stdout
        assert metric(refresh_metrics(server), "ftpsd_cert_served_matches_deployed") == [0.0]
        assert served_fingerprint(client, name) == before

        server.check_output("systemctl reload ftpsd")
        status = server.run(STATUS)
        assert status.rc == 0 and "served matches deployed: yes" in status.stdout, status.stdout
        assert metric(refresh_metrics(server), "ftpsd_cert_served_matches_deployed") == [1.0]
        assert served_fingerprint(client, name) != before
    finally:
        server.run(f"cat {saved} > {cert} && rm -f {saved} && systemctl reload ftpsd")
    assert served_fingerprint(client, name) == before
    assert "served matches deployed: yes" in server.check_output(STATUS)


def test_journal_priorities_filter_warnings(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    name, marker = host_name(server), f"obs{secrets.token_hex(4)}"
    since = server.check_output("date +%s")
    assert curl(client, f"--user {marker}:wrong ftp://{name}:{CONTROL_PORT}/").rc != 0
    ok = curl(client, f"--user alice:{q(password('alice'))} ftp://{name}:{CONTROL_PORT}/")
    assert ok.rc == 0, ok.stderr
    everything = server.check_output(f"journalctl -u ftpsd --since @{since} -o cat --no-pager")
    warnings = server.check_output(f"journalctl -u ftpsd --since @{since} -p warning -o cat --no-pager")
    assert f"login failed user={marker}" in everything and "login ok user=alice" in everything
    assert f"login failed user={marker}" in warnings
    assert "login ok user=alice" not in warnings, warnings


def test_xferlog_rotation_loses_no_line(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    name, marker = host_name(server), f"rot-{secrets.token_hex(4)}.txt"
    assert server.file("/etc/logrotate.d/ftpsd").exists
    server.check_output("logrotate -f /etc/logrotate.d/ftpsd")
    assert server.file(f"{XFERLOG}.1").exists
    up = curl(
        client, f"--user alice:{q(password('alice'))} -T /etc/hostname ftp://{name}:{CONTROL_PORT}/{marker}"
    )
    assert up.rc == 0, up.stderr
    assert marker in server.file(XFERLOG).content_string
    curl(client, f"--user alice:{q(password('alice'))} ftp://{name}:{CONTROL_PORT}/ -Q 'DELE {marker}'")
