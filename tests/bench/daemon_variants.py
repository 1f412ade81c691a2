"""``python -m tests.bench.daemon_variants [REPS] [VARIANT ...]``: one checkout's ftpsd started in
several configurations (interpreter flags, environment, ``workers``), interleaved rep by rep; for
each start the PSS of the fresh daemon and after 50 sessions came and went, per process
(``Pss``, ``Pss_Anon``, ``Pss_File``, ``Private_Dirty``), so the levers of docs/benchmark.md's
item 10 are measured alone and side by side.

A benchmark, not a test (docs/benchmark.md, "Changes measured alone"). Needs root like
``python -m tests.bench``. Variants (default: all): see :data:`VARIANTS`.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import clients as C
from tests.bench.env import BenchEnv
from tests.bench.servers import Ftpsd

# name -> (interpreter flags, environment added, workers (None: the bench's default, one per core))
VARIANTS: dict[str, tuple[list[str], dict[str, str], int | None]] = {
    "unit": ([], {}, None),  # what the ftps_server role's unit runs (with GLIBC_TUNABLES)
    "no-tunable": ([], {"GLIBC_TUNABLES": ""}, None),
    "workers-1": ([], {}, 1),
    "workers-1-no-tunable": ([], {"GLIBC_TUNABLES": ""}, 1),
    "no-debug-ranges": (["-X", "no_debug_ranges"], {}, None),
    "OO": (["-OO"], {}, None),
    "arena-1": ([], {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1"}, None),
    # A stand-in for a supervisor that does not hold the serving stack (one that would exec a
    # small program after forking the workers): the real supervisor is killed once the workers
    # serve, and an interpreter with only what such a supervisor needs joins the cgroup.
    "lean-supervisor": ([], {}, None),
}
LEAN = "import json, logging, os, signal, socket, time; signal.pause()"
FIELDS = ("Pss", "Pss_Anon", "Pss_File", "Private_Dirty")


class Variant(Ftpsd):
    flags: list[str]
    extra_env: dict[str, str]

    def prepare(self) -> list[str]:
        argv = super().prepare()
        return [sys.executable, *self.flags, "-m", "ftpsd", *argv[argv.index("--config") :]]

    def environ(self) -> dict[str, str]:
        env = super().environ()
        env.update(self.extra_env)
        if not env.get("GLIBC_TUNABLES"):
            env.pop("GLIBC_TUNABLES", None)
        return env


def rollup(pid: int) -> dict[str, int]:
    out = dict.fromkeys(FIELDS, 0)
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in out:
                out[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def snapshot(server: Ftpsd) -> list[dict[str, int]]:
    """Per process of the server, sorted by pid (the supervisor first: it is the oldest)."""
    assert server.cgroup is not None
    return [rollup(pid) for pid in sorted(server.cgroup.pids())]


def lean(server: Ftpsd) -> None:
    assert server.cgroup is not None and server.proc is not None
    subprocess.Popen(server.cgroup.wrap([sys.executable, "-c", LEAN]), start_new_session=True)
    os.kill(server.proc.pid, signal.SIGKILL)  # the supervisor (the shell exec'd it)
    server.proc.wait(timeout=10)
    time.sleep(1.0)


def total(procs: list[dict[str, int]], field: str = "Pss") -> int:
    return sum(p[field] for p in procs)


def main(argv: list[str]) -> int:
    reps = int(argv[0]) if argv else 3
    names = argv[1:] or list(VARIANTS)
    env = BenchEnv()
    env.open()
    results: dict[str, list[tuple[int, int, int]]] = {name: [] for name in names}
    try:
        servers = []
        for name in names:
            flags, extra, workers = VARIANTS[name]
            server = Variant(env)  # ftpsd's ports, home and work directory: one runs at a time
            server.name, server.flags, server.extra_env = f"ftpsd-{name}", flags, extra
            if workers is not None:
                server.workers = workers
            server.home.mkdir(parents=True, exist_ok=True)
            servers.append((name, server))
        for rep in range(reps):
            for name, s in servers:
                s.start()
                try:
                    time.sleep(1.5)
                    if name == "lean-supervisor":
                        lean(s)
                    fresh = snapshot(s)
                    target = C.Target(s.name, s.port, s.user, s.password, env.pki["ca"])
                    for _ in range(5):
                        C.close_all(C.open_idle(target, 10)[0])
                    time.sleep(1.0)
                    after = snapshot(s)
                finally:
                    s.stop()
                per = " | ".join(
                    " ".join(f"{f.lower()}={p[f]}" for f in FIELDS) for p in fresh
                )  # fmt: skip
                print(f"{name} rep {rep + 1}: fresh {total(fresh)} KiB (anon {total(fresh, 'Pss_Anon')}), "
                      f"after 50 sessions {total(after)} KiB; per process: {per}", flush=True)  # fmt: skip
                results[name].append((total(fresh), total(fresh, "Pss_Anon"), total(after)))
    finally:
        env.close()
    print("\nvariant: fresh PSS median (min-max) KiB; anonymous; after 50 sessions; fresh / the first's")
    first = statistics.median(r[0] for r in results[names[0]])
    for name in names:
        rows = results[name]
        cols = []
        for i in range(3):
            values = [r[i] for r in rows]
            cols.append(f"{statistics.median(values):.0f} ({min(values)}-{max(values)})")
        ratio = statistics.median(r[0] for r in rows) / first
        print(f"{name}: {cols[0]}; anon {cols[1]}; after {cols[2]}; fresh {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
