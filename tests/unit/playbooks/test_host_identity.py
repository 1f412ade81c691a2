"""A host's certificate names come only from that host (issue 20).

On ansible-core 2.21 a ``run_once`` task with ``register`` in an earlier play makes the hosts of
a run share one fact cache entry (ansible/ansible#87415): facts a module reports on one host show
on every other host. ftps_pki used to read the certificate's FQDN and addresses from
``ansible_facts`` (and gathered them only when ``default_ipv4`` was missing), so under rotate.yml's
``serial`` the second server's certificate named the first server's FQDN and address.

Here the real ansible-playbook runs that pattern on three local hosts: an earlier play with a
``run_once`` + ``register`` task, then, one host at a time, a task reporting another machine's
facts (a stand-in for the setup module on a different host, or a stale fact cache) and ftps_pki's
preflight, which works out the SANs issuance uses. Every host must get exactly its own inventory
name plus this machine's own FQDN and default address, read on the host in this run, and nothing
of the facts. The other tests forbid reading ``ansible_facts`` where this can happen.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
import re
import socket
import subprocess
import sys

import pytest
import yaml

from tests.playbook import run_playbook

HOSTS = ("ftp-a", "ftp-b", "ftp-c")

OTHER_FACTS_MODULE = '''#!/usr/bin/python
"""Report another machine's network facts, as setup would on that machine."""
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule(argument_spec={"n": {"type": "int", "required": True}})
n = module.params["n"]
module.exit_json(changed=False, ansible_facts={
    "fqdn": "host%d.elsewhere.test" % n,
    "default_ipv4": {"address": "198.51.100.%d" % n},
    "default_ipv6": {"address": "2001:db8:5e::%d" % n},
})
'''


def _playbook(out_dir: pathlib.Path, *, only_when_missing: bool) -> list:
    other = {
        "name": "Report another machine's facts",
        "other_facts": {"n": "{{ groups['ftps_servers'].index(inventory_hostname) + 1 }}"},
    }
    if only_when_missing:
        # ftps_pki's old pattern: gather only when the facts look missing
        other["when"] = "ansible_facts.default_ipv4 is not defined"
    return [
        {
            "name": "An earlier play with a run_once task that registers (rotate.yml names its run so)",
            "hosts": "ftps_servers",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Name the run",
                    "ansible.builtin.debug": {"msg": "run"},
                    "run_once": True,
                    "register": "named",
                }
            ],
        },
        {
            "name": "One host at a time, as rotate.yml",
            "hosts": "ftps_servers",
            "gather_facts": False,
            "serial": 1,
            "tasks": [
                other,
                {
                    "name": "Work out the certificate's names (ftps_pki preflight)",
                    "ansible.builtin.include_role": {
                        "name": "ftpskit.ftps.ftps_pki",
                        "tasks_from": "preflight",
                    },
                },
                {
                    "name": "Write down the SANs issuance would use",
                    "ansible.builtin.copy": {
                        # main before issue 20 kept them in __ftps_pki_sans
                        "content": "{{ ftps_pki_intended_sans | default(__ftps_pki_sans) | to_json }}",
                        "dest": f"{out_dir}/{{{{ inventory_hostname }}}}.json",
                        "mode": "0644",
                    },
                },
            ],
        },
    ]


def _this_machine() -> list[str]:
    """This machine's FQDN and default addresses, read independently of the kit's code."""
    names = []
    fqdn = socket.getfqdn().rstrip(".").lower()
    if fqdn not in ("", "localhost", "localhost.localdomain"):
        names.append(f"DNS:{fqdn}")
    for flag, target in (("-4", "8.8.8.8"), ("-6", "2001:4860:4860::8888")):
        route = subprocess.run(
            ["ip", flag, "route", "get", target], capture_output=True, text=True, check=False
        )
        found = re.search(r"\bsrc (\S+)", route.stdout)
        if route.returncode == 0 and found:
            names.append(f"IP:{ipaddress.ip_address(found.group(1))}")
    return names


@pytest.mark.parametrize("only_when_missing", [True, False], ids=["gather-when-missing", "gather-always"])
def test_each_host_gets_only_its_own_names(tmp_path: pathlib.Path, only_when_missing: bool) -> None:
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "other_facts.py").write_text(OTHER_FACTS_MODULE)
    out = tmp_path / "sans"
    out.mkdir()
    (tmp_path / "play.yml").write_text(
        yaml.safe_dump(_playbook(out, only_when_missing=only_when_missing), sort_keys=False)
    )
    hosts = {
        h: {
            "ansible_connection": "local",
            "ansible_become": False,
            "ansible_python_interpreter": sys.executable,
        }
        for h in HOSTS
    }
    (tmp_path / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"ftps_servers": {"hosts": hosts}}}})
    )
    result = run_playbook(
        tmp_path / "hosts.yml",
        tmp_path / "play.yml",
        "-e",
        json.dumps({"ftps_pki_ca_dir": str(tmp_path / "ca")}),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    machine = _this_machine()
    got = {
        host: sorted(_spelled(s) for s in json.loads((out / f"{host}.json").read_text())) for host in HOSTS
    }
    assert got == {host: sorted([f"DNS:{host}", *machine]) for host in HOSTS}


def _spelled(san: str) -> str:
    """DNS:/IP: as the kit spells SANs (main before issue 20 kept them bare)."""
    if san.startswith(("DNS:", "IP:")):
        return san
    try:
        return f"IP:{ipaddress.ip_address(san)}"
    except ValueError:
        return f"DNS:{san}"
