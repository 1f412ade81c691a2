"""ftps_firewall on ufw, firewalld and nftables after the settings changed (prepare applied the
earlier ones, converge the current ones): our rules are programmed and really enforced, every
entry the earlier settings opened is closed, and the operator's own rules are untouched."""

from __future__ import annotations

import json
import pathlib
import shlex

import pytest
import testinfra

UFW = "fwb-ufw"
FIREWALLD = "fwb-firewalld"
NFT = "fwb-nft"
HOSTS = (UFW, FIREWALLD, NFT)
PROBE = (pathlib.Path(__file__).parent / "probe.py").read_text()


def _host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


def reach(src: str, dst: str, port: int) -> str:
    """From ``src``: 'refused' = the firewall let it through to a port nobody listens on.

    By address, not name: the test is about the firewall, not about the network's DNS.
    """
    address = _host(dst).check_output("hostname -I").split()[0]
    return _host(src).check_output(f"python3 -c {shlex.quote(PROBE)} {address} {port}")


def _from(dst: str) -> str:
    """Another host to probe ``dst`` from."""
    return HOSTS[(HOSTS.index(dst) + 1) % len(HOSTS)]


def _ufw_rules() -> list[str]:
    return _host(UFW).check_output("ufw show added").splitlines()


def test_ufw_holds_exactly_our_current_rules() -> None:
    ours = sorted(row for row in _ufw_rules() if "ftps-kit:" in row)
    assert ours == sorted(
        [
            "ufw allow 22/tcp comment 'ftps-kit:ssh'",
            "ufw allow 21/tcp comment 'ftps-kit:ftpsd-control'",
            "ufw allow 990/tcp comment 'ftps-kit:ftpsd-control'",
            "ufw allow 50000:50099/tcp comment 'ftps-kit:ftpsd-passive'",
            "ufw allow from 192.0.2.0/24 to any port 2121 proto tcp comment 'ftps-kit:admin-only'",
        ]
    ), ours


def test_ufw_keeps_the_operators_rule() -> None:
    assert "ufw allow 8080/tcp" in _ufw_rules()


@pytest.mark.parametrize("permanent", [False, True], ids=["runtime", "permanent"])
def test_firewalld_holds_exactly_our_current_entries(permanent: bool) -> None:
    flag = " --permanent" if permanent else ""
    host = _host(FIREWALLD)
    services = host.check_output(f"firewall-cmd{flag} --zone=public --list-services").split()
    rich = host.check_output(f"firewall-cmd{flag} --zone=public --list-rich-rules").splitlines()
    assert sorted(s for s in services if s.startswith("ftps-kit-")) == [
        "ftps-kit-ftpsd-control",
        "ftps-kit-ftpsd-passive",
        "ftps-kit-ssh",
    ]
    assert [r for r in rich if "ftps-kit-" in r] == [
        'rule family="ipv4" source address="192.0.2.0/24" service name="ftps-kit-admin-only" accept'
    ]
    # The operator's own port and the distribution's services are still there.
    assert "8080/tcp" in host.check_output(f"firewall-cmd{flag} --zone=public --list-ports").split()
    assert "ssh" in services


def test_firewalld_services_carry_the_current_ports() -> None:
    host = _host(FIREWALLD)
    ports = {}
    for name in ("ftps-kit-ftpsd-control", "ftps-kit-ftpsd-passive", "ftps-kit-admin-only"):
        info = host.check_output(f"firewall-cmd --info-service={name}").splitlines()
        ports[name] = next(row for row in info if row.strip().startswith("ports:")).split()[1:]
    assert ports == {
        "ftps-kit-ftpsd-control": ["21/tcp", "990/tcp"],
        "ftps-kit-ftpsd-passive": ["50000-50099/tcp"],
        "ftps-kit-admin-only": ["2121/tcp"],
    }
    listing = host.check_output("ls /etc/firewalld/services").split()
    assert sorted(f for f in listing if f.startswith("ftps-kit-")) == [
        "ftps-kit-admin-only.xml",
        "ftps-kit-ftpsd-control.xml",
        "ftps-kit-ftpsd-passive.xml",
        "ftps-kit-ssh.xml",
    ]
    assert "ftps-kit-retired" not in host.check_output("firewall-cmd --get-services").split()


def test_nft_table_replaced_and_the_operators_table_kept() -> None:
    host = _host(NFT)
    tables = host.check_output("nft list tables").splitlines()
    assert "table inet ftps_kit" in tables
    assert "table inet operator" in tables
    ruleset = json.loads(host.check_output("nft --json list table inet ftps_kit"))["nftables"]
    comments = sorted(item["rule"].get("comment", "") for item in ruleset if "rule" in item)
    assert [c for c in comments if c] == ["admin-only", "ftpsd-control", "ftpsd-passive", "ssh"]
    text = host.check_output("nft list table inet ftps_kit")
    assert "50000-50099" in text
    assert "50100" not in text
    assert "2222" not in text
    assert "10.213.8.0/24" not in text


@pytest.mark.parametrize("name", [UFW, FIREWALLD])
def test_no_table_of_ours_beside_another_firewall(name: str) -> None:
    assert "ftps_kit" not in _host(name).check_output("nft list tables")


@pytest.mark.parametrize("dst", HOSTS)
@pytest.mark.parametrize("port", [21, 990, 50000, 50042, 50099])
def test_current_ports_pass(dst: str, port: int) -> None:
    assert reach(_from(dst), dst, port) == "refused"


@pytest.mark.parametrize("dst", HOSTS)
@pytest.mark.parametrize(
    "port",
    [
        50100,  # the earlier passive range: closed now
        50150,
        50199,
        2222,  # the retired rule
        2121,  # open to the lab network before, only to 192.0.2.0/24 now
    ],
)
def test_earlier_ports_closed(dst: str, port: int) -> None:
    assert reach(_from(dst), dst, port) == "blocked"


@pytest.mark.parametrize("dst", [UFW, FIREWALLD])
def test_operators_port_still_open(dst: str) -> None:
    assert reach(_from(dst), dst, 8080) == "refused"
