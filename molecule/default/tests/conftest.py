"""Fixtures for the testinfra tests of a Molecule scenario: the scenario's hosts by group.

testinfra's `host` fixture runs a test once per host of the verifier's `--hosts` (every platform,
see .config/molecule/config.yml). These fixtures select hosts by their Molecule group instead:

- `server`: parametrized, one test per host of `ftps_servers`;
- `servers`: all of them, as a list (for tests that compare servers);
- `client`: the (first) host of `ftps_clients`, to drive real clients against the servers;
- `host_name(host)`: the inventory name of a testinfra host (also its DNS name on the network).

Groups come from Molecule's generated inventory ($MOLECULE_INVENTORY_FILE), so a scenario that
declares other platforms gets the right hosts without touching the tests.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pathlib
import re
import shlex
import time
from collections.abc import Iterator

import pytest
import testinfra
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
SERVERS_GROUP = "ftps_servers"
CLIENTS_GROUP = "ftps_clients"


def _groups() -> dict[str, list[str]]:
    inventory_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory_file:
        pytest.exit("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify`", 2)
    inventory = yaml.safe_load(pathlib.Path(inventory_file).read_text()) or {}
    return {
        group: sorted((body or {}).get("hosts") or {})
        for group, body in inventory.items()
        if isinstance(body, dict)
    }


GROUPS = _groups()
SERVERS = GROUPS.get(SERVERS_GROUP, [])
CLIENTS = GROUPS.get(CLIENTS_GROUP, [])


def get_host(name: str) -> testinfra.host.Host:
    """A testinfra host for a container of this scenario (podman exec, no Ansible round trip)."""
    return testinfra.get_host(f"podman://{name}")


def host_name(host: testinfra.host.Host) -> str:
    """The inventory (= container = DNS) name of a testinfra host."""
    return host.backend.get_hostname()


# An empty group must fail loudly, not silently skip every test that uses it.
@pytest.fixture(params=SERVERS or [None])
def server(request: pytest.FixtureRequest) -> testinfra.host.Host:
    if request.param is None:
        pytest.fail(f"no host in group {SERVERS_GROUP}")
    return get_host(request.param)


@pytest.fixture
def servers() -> list[testinfra.host.Host]:
    if not SERVERS:
        pytest.fail(f"no host in group {SERVERS_GROUP}")
    return [get_host(name) for name in SERVERS]


@pytest.fixture
def client() -> testinfra.host.Host:
    if not CLIENTS:
        pytest.fail(f"no host in group {CLIENTS_GROUP}")
    return get_host(CLIENTS[0])


def ansible_env(**extra: str) -> dict[str, str]:
    """Environment for running ansible/ansible-playbook from a test: the collection ftpskit.ftps
    (this checkout, linked by `make collection-link`; Molecule's own ansible.cfg is not the
    project's)."""
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
        FTPS_KIT_LAB_DATA_DIR=str(ROOT / "inventories" / "lab" / ".ftps-kit"),
        **extra,
    )


@contextlib.contextmanager
def transient_listener(
    host: testinfra.host.Host, unit: str, port: int, argv: list[str], max_seconds: int
) -> Iterator[None]:
    """Run ``argv`` as a transient systemd unit on ``host`` (stopped by systemd after
    ``max_seconds`` at the latest), wait until something listens on TCP ``port``, and stop the
    unit afterwards."""
    host.run(f"systemctl stop {unit} 2>/dev/null")
    host.check_output(
        f"systemd-run --unit={unit} --collect --property=RuntimeMaxSec={max_seconds} {shlex.join(argv)}"
    )
    try:
        for _ in range(100):
            if host.run(f"ss -Htln 'sport = :{port}'").stdout.strip():
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"{host_name(host)}: listener on port {port} did not start")
        yield
    finally:
        host.run(f"systemctl stop {unit}")


def served_sans(client: testinfra.host.Host, name: str, port: int, *, starttls: bool) -> list[str]:
    """The SANs of the certificate a listener serves, as ``openssl s_client`` on the client reads
    it (explicit: ``-starttls ftp``), spelled ``DNS:name`` / ``IP:address``."""
    flag = "-starttls ftp" if starttls else ""
    out = client.run(
        f"openssl s_client -connect {name}:{port} {flag} -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -noout -ext subjectAltName"
    )
    assert out.rc == 0, f"{name}:{port}: {out.stderr}"
    lines = [line.strip() for line in out.stdout.splitlines()[1:] if line.strip()]
    sans = []
    for item in ", ".join(lines).split(", "):
        kind, _sep, value = item.partition(":")
        is_ip = kind == "IP Address"
        sans.append(f"IP:{ipaddress.ip_address(value)}" if is_ip else f"{kind}:{value.lower()}")
    return sorted(sans)


def own_names(name: str) -> list[str]:
    """What a certificate for this server must name, exactly, read on the server itself
    independently of the kit: its inventory name, its FQDN and the source addresses of its
    default routes (the lab's settings: ftps_pki_san_* on, no extra SANs)."""
    server = get_host(name)
    fqdn = server.check_output("python3 -c 'import socket; print(socket.getfqdn())'")
    fqdn = fqdn.strip().rstrip(".").lower()
    names = {f"DNS:{name}"}
    if fqdn not in ("", "localhost", "localhost.localdomain"):
        names.add(f"DNS:{fqdn}")
    for flag, target in (("-4", "8.8.8.8"), ("-6", "2001:4860:4860::8888")):
        route = server.run(f"ip {flag} route get {target}")
        found = re.search(r"\bsrc (\S+)", route.stdout)
        if route.rc == 0 and found:
            names.add(f"IP:{ipaddress.ip_address(found.group(1))}")
    return sorted(names)


def check_serves_own_names(client: testinfra.host.Host, name: str) -> None:
    """Both listeners of server ``name`` (explicit 21, implicit 990) serve a certificate whose SANs
    are exactly :func:`own_names`, which hold the address the client resolves the server to."""
    want = own_names(name)
    assert f"IP:{ipaddress.ip_address(client.check_output(f'getent hosts {name}').split()[0])}" in want
    for port, starttls in ((21, True), (990, False)):
        assert served_sans(client, name, port, starttls=starttls) == want, f"{name}:{port}"
