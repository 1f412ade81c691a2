"""The proof's probing at 1 to N servers: sequential (one ftps_probe per listener, the proof
before issue 21) against parallel (one ftps_probe call over every listener, bounded), in one run.

``python -m tests.bench.bench_proof --sizes 1,5,10,20`` (``make bench-proof``). A benchmark, not
a test: nothing asserts a time. Per size N it starts N ftpsd daemons on 127.0.0.1 (each with an
explicit and an implicit listener and its own test CA; one trust bundle of all CAs is the
prober's system store through SSL_CERT_FILE), then runs ansible-playbook on localhost with the
two forms of the probe task, each listener verified (chain + hostname) and the explicit one
with a 1 MiB round trip (upload, download, SHA-256, delete), as site.yml's proof does. The
parallel form is the proof's own task, read from playbooks/site.yml. Both forms must report
every listener verified and every round trip matched; otherwise the size is reported as failed.
Every daemon is stopped at the end, on failure and on SIGINT/SIGTERM too.

What it does not measure: the network between a client and 1,000 real servers (loopback here),
nor a container per server (the lab's 2 shared cores cannot hold 20 more containers next to the
other jobs); the per-probe cost here is the probe's own TLS, login and transfer work plus
Ansible's per-task overhead, which is what the parallel form removes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.bench.bench_fleet import parse_sizes
from tests.integration.conftest import PASSWORDS, Server, build_server
from tests.playbook import proof_tasks, run_playbook

SEQUENTIAL_TASK = {
    "name": "Probe each server listener with a verified certificate (before issue 21)",
    "ftpskit.ftps.ftps_probe": {
        "host": "{{ item.host }}",
        "port": "{{ item.port }}",
        "implicit": "{{ item.implicit }}",
        "username": "{{ ftps_site_probe_user }}",
        "password": "{{ ftps_site_probe_password }}",
        "round_trip": "{{ item.round_trip }}",
        "payload_size": 1048576,
    },
    "loop": "{{ __site_targets }}",
    "loop_control": {"label": "{{ item.label }}"},
    "register": "__seq",
}


def _check(form: str) -> dict:
    results = "__seq.results" if form == "sequential" else "__site_probe.results"
    return {
        "name": "Every listener verified, every round trip matched",
        "ansible.builtin.assert": {
            "that": [
                f"{results} | length == __site_targets | length",
                f"{results} | rejectattr('verified') | list | length == 0",
                f"{results} | selectattr('round_trip') | rejectattr('round_trip.match') | list | length == 0",
                f"{results} | selectattr('round_trip') | list | length"
                " == __site_targets | selectattr('round_trip') | list | length",
            ]
        },
    }


def run_form(
    form: str, servers: list[Server], tmp: Path, concurrency: int, bundle: Path
) -> tuple[float, str]:
    targets = []
    for s in servers:
        targets.append({"host": "127.0.0.1", "port": s.port, "implicit": False, "round_trip": True,
                        "label": f"127.0.0.1:{s.port}"})  # fmt: skip
        targets.append({"host": "127.0.0.1", "port": s.implicit_port, "implicit": True, "round_trip": False,
                        "label": f"127.0.0.1:{s.implicit_port} (implicit)"})  # fmt: skip
    tasks = [SEQUENTIAL_TASK] if form == "sequential" else proof_tasks()
    variables = {
        "__site_targets": targets,
        "ftps_site_probe_user": "alice",
        "ftps_site_probe_password": PASSWORDS["alice"],
        "ftps_client_probe_concurrency": concurrency,
    }
    play = [{"hosts": "localhost", "gather_facts": False, "vars": variables, "tasks": [*tasks, _check(form)]}]
    playbook = tmp / f"{form}.yml"
    playbook.write_text(yaml.safe_dump(play))
    inventory = tmp / "hosts"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    os.environ["SSL_CERT_FILE"] = str(bundle)  # the prober's system trust store: every server's CA
    started = time.monotonic()
    proc = run_playbook(inventory, playbook, timeout=1800)
    wall = time.monotonic() - started
    status = "ok" if proc.returncode == 0 else f"FAILED rc={proc.returncode}: {proc.stdout[-1500:]}"
    return wall, status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_proof", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--sizes", default="1,5,10,20", help="servers, comma list (default 1,5,10,20)")
    p.add_argument("--concurrency", type=int, default=16, help="ftps_client_probe_concurrency (default 16)")
    a = p.parse_args(argv)
    sizes = parse_sizes(a.sizes)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-proof-") as tmpdir:
        tmp = Path(tmpdir)
        servers: list[Server] = []
        try:
            for n in sizes:
                while len(servers) < n:
                    s = build_server(tmp / f"s{len(servers)}")
                    s.start()
                    servers.append(s)
                bundle = tmp / "bundle.pem"
                bundle.write_text("".join(s.cafile.read_text() for s in servers[:n]))
                seq, seq_status = run_form("sequential", servers[:n], tmp, a.concurrency, bundle)
                par, par_status = run_form("parallel", servers[:n], tmp, a.concurrency, bundle)
                rows.append((n, seq, seq_status, par, par_status))
                print(
                    f"N={n}: sequential {seq:.1f} s ({seq_status}), parallel {par:.1f} s ({par_status})",
                    flush=True,
                )
        finally:
            for s in servers:
                s.stop()
    print(f"\n| servers (listeners) | sequential s | parallel s (concurrency {a.concurrency}) | ratio |")
    print("|---|---|---|---|")
    for n, seq, seq_status, par, par_status in rows:
        ratio = f"{seq / par:.1f}x" if seq_status == par_status == "ok" else "—"
        print(f"| {n} ({2 * n}) | {seq:.1f} | {par:.1f} | {ratio} |")
    return 0 if all(r[2] == r[4] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
