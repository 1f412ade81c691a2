"""ftps_firewall with ufw or firewalld in charge: rules programmed there, really enforced."""

from __future__ import annotations

import pytest
import testinfra

UFW = "fwb-ufw"
FIREWALLD = "fwb-firewalld"

PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("blocked")
except OSError as exc:
    print("blocked" if exc.errno == 113 else f"error {exc.errno}")
"""


def _host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def reach(src: str, dst: str, port: int) -> str:
    """From ``src``: 'refused' = the firewall let it through to a port nobody listens on.

    By address, not name: the test is about the firewall, not about the network's DNS.
    """
    address = _host(dst).check_output("hostname -I").split()[0]
    return _host(src).check_output(f"python3 -c '{PROBE}' {address} {port}")


def test_ufw_holds_our_rules() -> None:
    status = _host(UFW).check_output("ufw status")
    for line in ("21/tcp", "990/tcp", "50000:50099/tcp", "22/tcp"):
        assert any(row.startswith(line) and "ALLOW" in row for row in status.splitlines()), status
    assert any("2121/tcp" in row and "192.0.2.0/24" in row for row in status.splitlines()), status


def test_firewalld_holds_our_rules() -> None:
    listing = _host(FIREWALLD).check_output("firewall-cmd --zone=public --list-all")
    ports = next(row for row in listing.splitlines() if row.strip().startswith("ports:"))
    for port in ("21/tcp", "990/tcp", "50000-50099/tcp"):
        assert port in ports.split(), listing
    assert 'source address="192.0.2.0/24" port port="2121"' in listing
    # Runtime as well as permanent: the role reloaded firewalld.
    assert "21/tcp" in _host(FIREWALLD).check_output("firewall-cmd --list-ports").split()


@pytest.mark.parametrize("name", [UFW, FIREWALLD])
def test_no_table_of_ours_beside_another_firewall(name: str) -> None:
    assert "ftps_kit" not in _host(name).check_output("nft list tables")


@pytest.mark.parametrize(("src", "dst"), [(FIREWALLD, UFW), (UFW, FIREWALLD)])
@pytest.mark.parametrize("port", [21, 990, 50042])
def test_ftps_ports_pass(src: str, dst: str, port: int) -> None:
    assert reach(src, dst, port) == "refused"


@pytest.mark.parametrize(("src", "dst"), [(FIREWALLD, UFW), (UFW, FIREWALLD)])
@pytest.mark.parametrize("port", [2121, 50100])
def test_other_ports_and_foreign_sources_blocked(src: str, dst: str, port: int) -> None:
    """2121 is open only to 192.0.2.0/24; 50100 is one past the passive range."""
    assert reach(src, dst, port) == "blocked"
