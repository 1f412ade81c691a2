"""The Molecule lab's address plan: the one place that says which address each lab host has.

Every container of a Molecule scenario (and of lab/ee-jobs.sh) gets a static address on the
shared podman network and an /etc/hosts entry for every host of its scenario (podman run
--ip/--add-host, through the platforms' ``ip:`` and ``etc_hosts:``). Hosts so find each other
without asking aardvark-dns, the network's DNS server, which reloads on every container start and
stop on the machine and answered too slowly under CI's load ('Temporary failure in name
resolution'). Names outside the lab (Debian's archive, PyPI) still go to the resolvers of the
container's resolv.conf.

The network (default ``ftpskit-molecule``, 10.213.8.0/24) is split in three:
  offsets 1-7      the gateway (.1) and nothing else
  offsets 8-191    static: block N (BLOCKS) is offsets 8N .. 8N+7, one per scenario, its hosts
                   in the order of its platforms (scenarios run side by side, so never shared)
  offsets 192-254  podman's own dynamic addresses (``--ip-range``): containers without a
                   planned address (an EE job's container) never take a planned one
FTPSKIT_LAB_NETWORK and FTPSKIT_LAB_SUBNET (a /24) put the same plan on another network, e.g. a
second lab on a machine whose shared network is in use.

    python3 lab/lab_addresses.py network          NAME SUBNET GATEWAY IP-RANGE
    python3 lab/lab_addresses.py hosts SCENARIO   "NAME ADDRESS" per host
    python3 lab/lab_addresses.py env SCENARIO     the variables a scenario's molecule.yml uses
                                                  (KEY=VALUE lines, for `env`)
    python3 lab/lab_addresses.py check-network    podman's `network inspect` JSON on stdin:
                                                  exit 0 if it is the planned network, else 1
                                                  and what differs
    python3 lab/lab_addresses.py check            the plan against the scenarios on disk
Only the standard library and PyYAML (both in every venv that runs Molecule).
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MOLECULE = ROOT / "molecule"
BASE_CONFIG = ROOT / ".config" / "molecule" / "config.yml"

NETWORK = "ftpskit-molecule"
SUBNET = "10.213.8.0/24"
BLOCK_SIZE = 8
FIRST_STATIC = 8  # offsets below: the gateway
FIRST_DYNAMIC = 192  # offsets from here: podman's --ip-range
# Scenario (or lab job) -> its block. A number is never reused: a new scenario takes the next free
# one (the last usable block is 23; tests/unit/lab/test_lab_addresses.py checks the plan).
BLOCKS = {
    "default": 1,
    "acme": 2,
    "ca-rollover": 3,
    "clientcert": 4,
    "external_ca": 5,
    "faults": 6,
    "firewall_backends": 7,
    "keymanager": 8,
    "pki": 9,
    "report": 10,
    "rotation": 11,
    "stock": 12,
    "ee": 13,
}
# Lab jobs that are not Molecule scenarios: their hosts, in address order.
JOB_HOSTS = {
    "ee": ["ee-km", "ee-deb13", "ee-client"],
}
# What every platform of a scenario must say (the variables `env` gives).
IP_VAR = "FTPSKIT_LAB_IP_{}"
HOSTS_VAR = "FTPSKIT_LAB_HOSTS"
NETWORK_VAR = "FTPSKIT_LAB_NETWORK"


class PlanError(Exception):
    """The plan or a scenario does not fit (the message says what)."""


def network() -> dict[str, str]:
    """The planned network: name, subnet, gateway and podman's dynamic range."""
    name = os.environ.get("FTPSKIT_LAB_NETWORK") or NETWORK
    try:
        net = ipaddress.IPv4Network(os.environ.get("FTPSKIT_LAB_SUBNET") or SUBNET)
    except ValueError as e:
        raise PlanError(f"FTPSKIT_LAB_SUBNET: {e}") from e
    if net.prefixlen != 24:
        raise PlanError(f"the lab's subnet must be a /24, got {net}")
    return {
        "name": name,
        "subnet": str(net),
        "gateway": str(net[1]),
        "ip_range": str(ipaddress.IPv4Network(f"{net[FIRST_DYNAMIC]}/26")),
    }


def suffix(name: str) -> str:
    """A host's variable suffix: its name after the last '-', upper case (pki-deb12 -> DEB12)."""
    return re.sub(r"[^A-Za-z0-9]", "_", name.rsplit("-", 1)[-1]).upper()


def _platforms(scenario: str) -> list[dict]:
    own = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text()) or {}
    platforms = own.get("platforms")
    if platforms is None:
        platforms = yaml.safe_load(BASE_CONFIG.read_text())["platforms"]
    return platforms


def host_names(scenario: str) -> list[str]:
    """The scenario's hosts (container names), in the order of its platforms."""
    if scenario in JOB_HOSTS:
        return list(JOB_HOSTS[scenario])
    if not (MOLECULE / scenario / "molecule.yml").is_file():
        raise PlanError(f"no scenario '{scenario}' (molecule/{scenario}/molecule.yml) nor lab job")
    return [p["name"].replace("${MOLECULE_SCENARIO_NAME}", scenario) for p in _platforms(scenario)]


def hosts(scenario: str) -> dict[str, str]:
    """name -> address for the scenario's hosts."""
    if scenario not in BLOCKS:
        raise PlanError(f"'{scenario}' has no block in lab/lab_addresses.py BLOCKS: give it a free one")
    names = host_names(scenario)
    if len(names) > BLOCK_SIZE:
        raise PlanError(f"'{scenario}' has {len(names)} hosts, a block holds {BLOCK_SIZE}")
    net = ipaddress.IPv4Network(network()["subnet"])
    first = BLOCKS[scenario] * BLOCK_SIZE
    return {name: str(net[first + i]) for i, name in enumerate(names)}


def env(scenario: str) -> dict[str, str]:
    """The variables a scenario's molecule.yml reads: its network, each host's address, the
    /etc/hosts entries (a YAML flow mapping: Molecule substitutes the text before parsing)."""
    planned = hosts(scenario)
    out = {NETWORK_VAR: network()["name"], HOSTS_VAR: json.dumps(planned, separators=(", ", ": "))}
    for name, address in planned.items():
        key = IP_VAR.format(suffix(name))
        if key in out:
            raise PlanError(f"'{scenario}': two hosts end in '-{name.rsplit('-', 1)[-1]}' ({key})")
        out[key] = address
    return out


def network_problems(inspect: list | dict) -> list[str]:
    """What differs between `podman network inspect NAME`'s JSON and the planned network."""
    want = network()
    got = inspect[0] if isinstance(inspect, list) else inspect
    subnets = got.get("subnets") or []
    if len(subnets) != 1:
        return [f"{len(subnets)} subnets, want one ({want['subnet']})"]
    s = subnets[0]
    problems = []
    if s.get("subnet") != want["subnet"]:
        problems.append(f"subnet {s.get('subnet')}, want {want['subnet']}")
    if s.get("gateway") != want["gateway"]:
        problems.append(f"gateway {s.get('gateway')}, want {want['gateway']}")
    rng = ipaddress.IPv4Network(want["ip_range"])
    lease = s.get("lease_range") or {}
    have = (lease.get("start_ip"), lease.get("end_ip"))
    # podman stores --ip-range 10.213.8.192/26 as 10.213.8.193-10.213.8.255
    if have != (str(rng[1]), str(rng[-1])):
        shown = f"{have[0]}-{have[1]}" if lease else "none"
        problems.append(f"dynamic range {shown}, want {want['ip_range']} ({rng[1]}-{rng[-1]})")
    return problems


def scenario_problems(scenario: str) -> list[str]:
    """How the scenario's platforms fail to use the plan (each must take its address, the
    scenario's /etc/hosts entries and the plan's network from the variables `env` gives)."""
    problems = []
    for p in _platforms(scenario):
        name = p["name"]
        host = name.replace("${MOLECULE_SCENARIO_NAME}", scenario)
        want = {
            "ip": "${" + IP_VAR.format(suffix(host)) + ":-unplanned}",
            "etc_hosts": "${" + HOSTS_VAR + "}",
            "network": "${" + NETWORK_VAR + "}",
        }
        for key, value in want.items():
            if p.get(key) != value:
                problems.append(f"{scenario}: platform {name}: {key} is {p.get(key)!r}, want {value!r}")
    return problems


def _block_problems() -> list[str]:
    """Blocks outside the static area, or shared."""
    problems = []
    last = (FIRST_DYNAMIC - FIRST_STATIC) // BLOCK_SIZE
    numbers: dict[int, str] = {}
    for name, n in BLOCKS.items():
        if not 1 <= n <= last:
            problems.append(f"'{name}': block {n} is outside 1-{last}")
        if n in numbers:
            problems.append(f"'{name}' and '{numbers[n]}' share block {n}")
        numbers[n] = name
    return problems


def plan_problems() -> list[str]:
    """Everything wrong with the plan: every scenario on disk and every lab job has a block of
    its own inside the static area, its hosts fit and use the plan, no address is planned twice."""
    problems = []
    scenarios = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))
    for s in scenarios:
        if s not in BLOCKS:
            problems.append(f"scenario '{s}' has no block")
    for name in BLOCKS:
        if name not in scenarios and name not in JOB_HOSTS:
            problems.append(f"block of '{name}': no such scenario or lab job")
    problems.extend(_block_problems())
    seen: dict[str, str] = {}
    net = network()
    reserved = {net["gateway"]} | {str(a) for a in ipaddress.IPv4Network(net["ip_range"])}
    for name in BLOCKS:
        if name not in scenarios and name not in JOB_HOSTS:
            continue
        try:
            planned = hosts(name)
            env(name)
        except PlanError as e:
            problems.append(str(e))
            continue
        for host, address in planned.items():
            if host in seen or address in seen.values():
                problems.append(f"{host} {address}: planned twice")
            if address in reserved:
                problems.append(f"{host} {address}: the gateway's or podman's dynamic range")
            seen[host] = address
        if name in scenarios:
            problems.extend(scenario_problems(name))
    return problems


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["network"]:
                n = network()
                print(n["name"], n["subnet"], n["gateway"], n["ip_range"])
            case ["hosts", scenario]:
                for name, address in hosts(scenario).items():
                    print(name, address)
            case ["env", scenario]:
                for key, value in env(scenario).items():
                    print(f"{key}={value}")
            case ["check-network"]:
                problems = network_problems(json.load(sys.stdin))
                if problems:
                    print("; ".join(problems))
                    return 1
            case ["check"]:
                problems = plan_problems()
                for p in problems:
                    print(p, file=sys.stderr)
                return 1 if problems else 0
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except PlanError as e:
        print(f"lab_addresses: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
