"""Behaviour of the lab hosts themselves: what every other test relies on.

Real systemd as PID 1, really two Debian releases, distinct machines, name resolution and
traffic over the scenario's podman network, and nftables rules that really take effect
(NET_ADMIN). These run after the kit has converged, so they also catch a converge that leaves
a host degraded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator

import testinfra
from conftest import host_name, transient_listener

# name -> address, the lab's plan for this scenario (lab/lab_addresses.py; lab/molecule-all.sh
# passes it): every container has these in its /etc/hosts.
LAB_HOSTS = json.loads(os.environ["FTPSKIT_LAB_HOSTS"])
# The servers' listener uses the SSH port: no sshd runs in the lab images, so it is free, and
# the kit's firewall keeps it open by default (ftps_firewall_ssh_enabled), so this test proves
# the network, not the kit's rules.
SERVER_PORT = 22
CLIENT_PORT = 18080
EXPECTED = {"12": (3, 11), "13": (3, 13)}


def _python_version(host: testinfra.host.Host) -> tuple[int, int]:
    out = host.check_output("python3 -c 'import sys; print(*sys.version_info[:2])'")
    major, minor = out.split()
    return int(major), int(minor)


@contextlib.contextmanager
def http_listener(host: testinfra.host.Host, port: int) -> Iterator[str]:
    """Serve a fresh random token over HTTP on `port` of `host`; yield the token."""
    token = secrets.token_hex(16)
    unit = f"ftpskit-labtest-{port}"
    root = f"/run/{unit}"
    host.check_output(f"mkdir -p {root} && printf %s {token} > {root}/token")
    # All interfaces of the lab container: the point is that other hosts reach it.
    argv = ["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "0.0.0.0", "--directory", root]  # noqa: S104
    try:
        with transient_listener(host, unit, port, argv, max_seconds=120):
            yield token
    finally:
        host.run(f"rm -rf {root}")


def fetch(host: testinfra.host.Host, target: str, port: int) -> testinfra.backend.base.CommandResult:
    return host.run(f"curl -sS --connect-timeout 2 --max-time 5 http://{target}:{port}/token")


def test_systemd_is_pid1_and_running(host: testinfra.host.Host) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    failed = host.run("systemctl --failed --no-legend --plain").stdout
    assert state == "running", f"{host_name(host)} is {state}; failed units:\n{failed}"


def test_machines_are_distinct(servers: list[testinfra.host.Host], client: testinfra.host.Host) -> None:
    ids = {host_name(h): h.file("/etc/machine-id").content_string.strip() for h in [*servers, client]}
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids), f"machine ids repeat: {ids}"


def test_servers_run_debian_12_and_13(servers: list[testinfra.host.Host]) -> None:
    releases = {}
    for host in servers:
        name = host_name(host)
        version = host.system_info.release.split(".")[0]
        assert host.system_info.distribution == "debian", name
        # Platform names end in the release they run (…-deb12, …-deb13).
        assert name.endswith(f"-deb{version}"), f"{name} runs Debian {host.system_info.release}"
        assert _python_version(host) == EXPECTED[version], name
        releases[name] = version
    assert sorted(releases.values()) == sorted(EXPECTED), releases


def test_server_reachable_from_client(server: testinfra.host.Host, client: testinfra.host.Host) -> None:
    name = host_name(server)
    resolved = client.check_output(f"getent ahostsv4 {name}").split()[0]
    assert resolved == LAB_HOSTS[name], f"{name} resolves to {resolved}"
    with http_listener(server, SERVER_PORT) as token:
        result = fetch(client, name, SERVER_PORT)
    assert result.rc == 0, result.stderr
    assert result.stdout == token


def test_nftables_drop_rule_takes_effect(
    servers: list[testinfra.host.Host], client: testinfra.host.Host
) -> None:
    server, target = servers[0], host_name(client)
    table = "inet ftpskit_labtest"
    with http_listener(client, CLIENT_PORT) as token:
        before = fetch(server, target, CLIENT_PORT)
        assert (before.rc, before.stdout) == (0, token), before.stderr
        try:
            client.check_output(
                f"nft 'add table {table}; "
                f"add chain {table} input {{ type filter hook input priority -10; }}; "
                f"add rule {table} input tcp dport {CLIENT_PORT} drop'"
            )
            blocked = fetch(server, target, CLIENT_PORT)
            assert blocked.rc != 0 and token not in blocked.stdout, "the drop rule did not block"
        finally:
            client.run(f"nft delete table {table}")
        after = fetch(server, target, CLIENT_PORT)
        assert (after.rc, after.stdout) == (0, token), after.stderr


def test_roles_installed_packages_on_hosts_without_package_lists(
    servers: list[testinfra.host.Host], client: testinfra.host.Host
) -> None:
    """prepare.yml purged a package each role installs and left the hosts with no package lists
    and a freshly modified lists directory (a minimal image's state, issue 10): the converge
    must have refreshed the lists and installed the package back, in that order."""
    for host, package in [*((s, "nftables") for s in servers), (client, "lftp")]:
        name = host_name(host)
        # dpkg.log starts empty in the lab images (finalize.sh), so it holds exactly this
        # scenario's history: the purge by prepare.yml, then the install by the role.
        events = [
            line.split()[2]
            for line in host.file("/var/log/dpkg.log").content_string.splitlines()
            if re.search(rf" (purge|install) {re.escape(package)}:", line)
        ]
        assert events[:1] == ["purge"] and events[-1:] == ["install"], f"{name}: dpkg.log {events}"
        assert host.package(package).is_installed, f"{name}: {package} not installed"
        lists = host.run("find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' | wc -l")
        assert int(lists.stdout) > 0, f"{name}: the role installed {package} without package lists?"
