"""PKI signing at fleet scale: how long the controller's signing step takes for N hosts.

``python -m tests.bench.bench_pki [--hosts 1000]`` (or ``main()`` from ``python -m tests.bench``).
A benchmark, not a test: nothing asserts a time. It measures, for N hosts with ECDSA P-256 keys
and an ECDSA P-384 CA (the defaults):

1. ``sign_batch`` in-process: the module's work (load the CA once, verify N CSRs, issue N
   certificates);
2. the role's real signing step end to end: ``ansible-playbook`` over an inventory of N hosts,
   each holding its queued CSR, running ``roles/ftps_pki/tasks/sign.yml`` as the role does (one
   ``ftps_pki_sign`` call, ``run_once`` + ``delegate_to: localhost``). Hosts use
   ``ansible_connection: local`` and are never contacted: everything runs on the controller.

The CSRs (made on the hosts in real life) are generated beforehand and not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from tests.paths import ROOT as REPO

# The collection's module_utils under the name the modules use (the link `make collection-link`
# makes, as in tests/conftest.py).
sys.path.insert(0, str(REPO / ".cache" / "collections"))
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.ca import CertificateAuthority, sign_batch
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.certs import build_csr, csr_to_pem
from ansible_collections.ftpskit.ftps.plugins.module_utils.pki.keys import CA_KEY_TYPES, generate_private_key

PLAYBOOK = """\
- name: Sign every host's CSR in one call (the role's sign step)
  hosts: all
  gather_facts: false
  tasks:
    - name: Run ftps_pki's signing tasks
      ansible.builtin.import_tasks: {sign}
    - name: Count the certificates
      ansible.builtin.copy:
        content: "{{{{ __ftps_pki_sign.certificates | length }}}}"
        dest: {out}
        mode: "0644"
      run_once: true
      delegate_to: localhost
"""


def make_requests(count: int) -> list[dict]:
    requests = []
    for i in range(count):
        name = f"srv{i:04d}.bench.test"
        key = generate_private_key("ecdsa-p256")
        sans = [name, f"10.213.{i // 250}.{i % 250 + 1}"]
        requests.append({"host": name, "csr": csr_to_pem(build_csr(key, name, sans)), "sans": sans})
    return requests


def bench_in_process(ca: CertificateAuthority, requests: list[dict]) -> float:
    start = time.perf_counter()
    result = sign_batch(ca, requests, 90)
    elapsed = time.perf_counter() - start
    if len(result["certificates"]) != len(requests) or result["errors"]:
        raise SystemExit(f"bench_pki: signing failed: {list(result['errors'].items())[:3]}")
    return elapsed


def bench_playbook(ca_dir: str, requests: list[dict], work: pathlib.Path) -> float:
    hosts = {
        r["host"]: {
            "ansible_connection": "local",
            "__ftps_pki_sign_request": {**r, "common_name": r["host"], "validity_days": 90},
        }
        for r in requests
    }
    inventory = {"all": {"hosts": hosts, "vars": {"ftps_pki_ca_dir": ca_dir, "ftps_pki_ca_passphrase": ""}}}
    (work / "inventory.json").write_text(json.dumps(inventory))
    out = work / "count.txt"
    (work / "bench.yml").write_text(PLAYBOOK.format(sign=REPO / "roles/ftps_pki/tasks/sign.yml", out=out))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".cache" / "collections"),
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_FORKS": str(os.cpu_count() or 2),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_VARS_ENABLED": "host_group_vars",
    }
    cmd = [str(pathlib.Path(sys.executable).with_name("ansible-playbook"))]
    cmd += ["-i", str(work / "inventory.json"), "-e", f"ftps_pki_validity_days=90 ftps_pki_ca_dir={ca_dir}"]
    cmd += [str(work / "bench.yml")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not out.exists() or int(out.read_text()) != len(requests):
        raise SystemExit(
            f"bench_pki: playbook failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_pki", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=1000, help="inventory size (default 1000)")
    parser.add_argument("--ca-key-type", default="ecdsa-p384", choices=CA_KEY_TYPES)
    parser.add_argument("--no-playbook", action="store_true", help="only the in-process measure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pki-") as tmp:
        work = pathlib.Path(tmp)
        ca = CertificateAuthority(str(work / "ca"))
        ca.create(args.ca_key_type, "bench CA", 365)
        start = time.perf_counter()
        requests = make_requests(args.hosts)
        prep = time.perf_counter() - start
        print(f"bench_pki: {args.hosts} keys + CSRs made (host-side work, not timed): {prep:.1f} s")
        inproc = bench_in_process(ca, requests)
        print(
            f"bench_pki: sign_batch, {args.hosts} CSRs, CA {args.ca_key_type}: {inproc:.2f} s "
            f"({inproc / args.hosts * 1000:.2f} ms per host)"
        )
        if not args.no_playbook:
            total = bench_playbook(ca.directory, requests, work)
            print(
                f"bench_pki: ansible-playbook signing step over {args.hosts} hosts "
                f"(ansible-playbook start, inventory load, one ftps_pki_sign call): {total:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
