"""Every lab container asks only the lab network's DNS, and asks it again when it gets no answer.

aardvark-dns (the network's DNS, on its gateway) reloads on every container start and stop on the
machine, and slowly under load; podman lists the host's resolvers after it, so a query it left
unanswered went on to them and came back "Name or service not known" for a scenario's own hosts
(ca-rollover's proof and an ee job failed so). Each platform on the shared network therefore has
``dns_servers`` = the gateway and the resolver options that retry; so do the ee job's containers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.paths import ROOT

CONFIGS = sorted([*ROOT.glob("molecule/*/molecule.yml"), ROOT / ".config" / "molecule" / "config.yml"])
OPTIONS = ["--dns-option=timeout:2", "--dns-option=attempts:5"]


def _shell_value(path: Path, name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", path.read_text(), re.M)
    assert match, f"{path.name} sets no {name}="
    return match.group(1)


GATEWAY = _shell_value(ROOT / "lab" / "molecule-all.sh", "gateway")
NETWORK = _shell_value(ROOT / "lab" / "molecule-all.sh", "network")


def _platforms():
    for path in CONFIGS:
        for platform in yaml.safe_load(path.read_text()).get("platforms") or []:
            yield path.relative_to(ROOT).as_posix(), platform


def test_the_configs_have_platforms_on_the_shared_network():
    on_network = [(path, p["name"]) for path, p in _platforms() if p.get("network") == NETWORK]
    assert len(on_network) >= 10, on_network


@pytest.mark.parametrize(
    ("path", "platform"),
    [
        pytest.param(path, p, id=f"{path}:{p['name']}")
        for path, p in _platforms()
        if p.get("network") == NETWORK
    ],
)
def test_a_lab_container_asks_only_the_networks_dns_and_retries(path, platform):
    assert platform.get("dns_servers") == [GATEWAY], f"{path} {platform['name']}: dns_servers"
    assert [o for o in platform.get("extra_opts") or [] if o.startswith("--dns-option")] == OPTIONS


def test_the_ee_jobs_containers_ask_only_the_networks_dns_and_retry():
    script = ROOT / "lab" / "ee-jobs.sh"
    assert _shell_value(script, "dns") == GATEWAY
    text = script.read_text()
    runs = re.findall(r"podman run (?:[^\n]*\\\n)*[^\n]*", text)
    assert len(runs) == 2, runs
    for run in runs:
        assert '--dns "$dns" --dns-option timeout:2 --dns-option attempts:5' in run, run
