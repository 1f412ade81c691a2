"""Fleet scale: site.yml, its re-run and rotate.yml on lab fleets of N servers.

``python -m tests.bench.bench_fleet --sizes 1,5,10,20`` (``make bench-fleet``; ``make bench``
runs it too). A benchmark, not a test: nothing asserts a time. Per size N it boots N server
containers (Debian 12 and 13 alternately) and one client (rotate.yml's health gate probes from
the first of ``ftps_clients``) from the lab images on the benchmark's own podman network
``ftpskit-bench`` (10.213.16.0/24), writes an inventory beside a fresh ``.ftps-kit`` data
directory (a new CA per size: every size is a first deployment) that shares one wheelhouse
built before any clock starts, then times:

1. the first ``playbooks/site.yml``;
2. an immediate re-run (its recap must say changed=0; anything else is reported, task by task);
3. ``playbooks/rotate.yml`` over every server (``ftps_rotate_serial`` 1, the default), and with
   ``--rotate-batched 25%`` once more in batches.

Wall time, per-host cost (time / N servers) and the controller's CPU time (the ansible-playbook
process tree, from ``getrusage(RUSAGE_CHILDREN)``) go into a section of docs/benchmark.md between
markers that ``python -m tests.bench`` keeps. Containers and the network are the benchmark's own
(names ``ftpskit-bench-*``) and are removed at the end, on failure and on SIGTERM/SIGINT too.
Needs root (rootful podman) and the lab images (``make lab-images``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.env import load_average, machine_facts
from tests.bench.report import FLEET_BEGIN, FLEET_END, with_fleet_section
from tests.paths import ROOT as REPO

NETWORK = "ftpskit-bench"
SUBNET = "10.213.16.0/24"
GATEWAY = "10.213.16.1"
PREFIX = "ftpskit-bench-"
CLIENT = f"{PREFIX}client"
CLIENT_ADDRESS = "10.213.16.250"
IMAGES = ("localhost/ftpskit-debian:12", "localhost/ftpskit-debian:13")
WHEEL_TARGETS = ("3.11-x86_64", "3.13-x86_64")
CACHE = REPO / ".cache" / "bench-fleet"
BOOT_TIMEOUT = 120
MAX_SERVERS = 200

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)"
)
TASK = re.compile(r"^TASK \[(?P<name>.*)\] \**")
CHANGED = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")
# profile_tasks' summary: "<role> : <task> ------------- 12.34s"
PROFILE = re.compile(r"^(?P<name>\S.*?) -{3,} (?P<seconds>\d+\.\d+)s$")


class FleetBenchError(RuntimeError):
    """The benchmark cannot go on; the message says why in one line."""


# -- pure helpers (tests/unit/bench/test_bench_fleet.py) --------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    """``"1,5,10,20"`` -> [1, 5, 10, 20]: positive, unique, in the order given."""
    sizes: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_SERVERS:
            raise ValueError(f"fleet size {part!r} is not a number from 1 to {MAX_SERVERS}")
        if int(part) not in sizes:
            sizes.append(int(part))
    if not sizes:
        raise ValueError("no fleet size given")
    return sizes


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP lines of an ansible-playbook run: host -> {ok, changed, failed, ...}."""
    recap: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        m = RECAP.match(line) if in_recap else None
        if m:
            recap[m["host"]] = {k: int(v) for k, v in m.groupdict().items() if k != "host"}
    return recap


def changed_tasks(output: str) -> dict[str, list[str]]:
    """Task name -> hosts that reported ``changed`` in it (the non-idempotent tasks of a re-run)."""
    found: dict[str, list[str]] = {}
    task = "?"
    for line in output.splitlines():
        m = TASK.match(line)
        if m:
            task = m["name"]
            continue
        m = CHANGED.match(line)
        if m:
            hosts = found.setdefault(task, [])
            host = m["host"].split(" -> ")[0]
            if host not in hosts:
                hosts.append(host)
    return found


def profile_top(output: str, count: int = 5) -> list[tuple[str, float]]:
    """The slowest tasks from ansible.posix.profile_tasks' summary (it prints them slowest first)."""
    top: list[tuple[str, float]] = []
    after_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            after_recap = True
            continue
        m = PROFILE.match(line.strip()) if after_recap else None
        if m:
            top.append((m["name"], float(m["seconds"])))
    return sorted(top, key=lambda t: -t[1])[:count]


def trend(per_host: dict[int, float]) -> str:
    """Say whether per-host cost falls, stays flat (within 15 %) or grows from the smallest
    fleet (of more than one server, when there is one) to the largest."""
    sizes = sorted(per_host)
    if len(sizes) < 2:
        return "one size only"
    small = next((n for n in sizes if n > 1 and n != sizes[-1]), sizes[0])
    a, b = per_host[small], per_host[sizes[-1]]
    ratio = b / a if a else float("inf")
    word = "falling" if ratio < 0.85 else "flat" if ratio <= 1.15 else "GROWING"
    return f"{word}: {a:.1f} s/host at N={small} -> {b:.1f} s/host at N={sizes[-1]} ({ratio:.2f}x)"


def marginal(per_host: dict[int, float]) -> str:
    """Seconds each server beyond the smallest fleet added: (T(max) - T(min)) / (max - min), which
    separates the per-run fixed cost (playbook start, CA, client, probes) from the per-server one."""
    sizes = sorted(per_host)
    if len(sizes) < 2:
        return "no marginal cost from one size"
    lo, hi = sizes[0], sizes[-1]
    extra = (per_host[hi] * hi - per_host[lo] * lo) / (hi - lo)
    return f"marginal {extra:.1f} s per added server (N={lo} to N={hi})"


def inventory(servers: list[tuple[str, str]], client: tuple[str, str], wheelhouse: str) -> dict:
    """The fleet's hosts.yml: podman connection, the servers and the client with their addresses."""
    return {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
                # one wheelhouse for every size, built before the clocks start
                "ftps_server_wheelhouse_dir": wheelhouse,
                "ftps_client_wheelhouse_dir": wheelhouse,
            },
            "children": {
                "ftps_servers": {"hosts": {name: {"ftps_address": ip} for name, ip in servers}},
                "ftps_clients": {"hosts": {client[0]: {"ftps_address": client[1]}}},
            },
        }
    }


def server_names(count: int) -> list[tuple[str, str, str]]:
    """(name, image, address) per server: Debian 12 and 13 alternately, 10.213.16.11 up."""
    width = max(2, len(str(count)))
    return [
        (f"{PREFIX}s{i:0{width}d}", IMAGES[(i - 1) % 2], f"10.213.16.{10 + i}") for i in range(1, count + 1)
    ]


# -- results ----------------------------------------------------------------------------------------
@dataclass
class Run:
    """One timed ansible-playbook run."""

    label: str
    wall: float = 0.0
    cpu: float = 0.0
    rc: int | None = None
    timed_out: bool = False
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    top: list[tuple[str, float]] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    log: str = ""
    rotate_hosts: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    def total(self, key: str) -> int:
        return sum(h.get(key, 0) for h in self.recap.values())


@dataclass
class SizeResult:
    servers: int
    runs: dict[str, Run] = field(default_factory=dict)
    boot_seconds: float = 0.0
    note: str = ""


# -- podman -----------------------------------------------------------------------------------------
def podman(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise FleetBenchError(f"podman {' '.join(args[:3])}: {proc.stderr.strip()[:300]}")
    return proc


def our_containers() -> list[str]:
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [n for n in names if n.startswith(PREFIX)]


def remove_containers(names: list[str]) -> None:
    for i in range(0, len(names), 10):
        podman("rm", "-f", "-t", "2", *names[i : i + 10], check=False, timeout=300)


def ensure_network() -> None:
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        subnet = podman(
            "network", "inspect", "--format", "{{range .Subnets}}{{.Subnet}}{{end}}", NETWORK
        ).stdout
        if subnet.strip() == SUBNET:
            return
        remove_containers(our_containers())
        # Without -f: a container that is not ours on this network stops us instead.
        podman("network", "rm", NETWORK)
    podman("network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, NETWORK)


def remove_network() -> None:
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        podman("network", "rm", NETWORK, check=False)


def boot(hosts: list[tuple[str, str, str]], log) -> float:
    """Start the containers (systemd as PID 1) and wait until systemd is up in each."""
    t0 = time.monotonic()
    for name, image, address in hosts:
        podman(
            "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", address,
            "--systemd=always", "--cap-add", "NET_ADMIN,NET_RAW", "--label", "ftpskit.bench=true", image,
        )  # fmt: skip
    for name, _, _ in hosts:
        while True:
            state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    log(f"warning: {name} is degraded")
                break
            if time.monotonic() - t0 > BOOT_TIMEOUT + len(hosts) * 5:
                raise FleetBenchError(f"{name}: systemd not running after boot (state {state or '?'})")
            time.sleep(1)
    return time.monotonic() - t0


# -- the benchmark ----------------------------------------------------------------------------------
class FleetBench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.a = args
        self.work = work
        self.logs = CACHE / "logs"
        self.wheelhouse = CACHE / "wheelhouse"
        self.child: subprocess.Popen | None = None
        self.created: set[str] = set()
        self.python = Path(sys.executable)
        self.env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{self.python.parent}:{os.environ.get('PATH', '')}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if args.forks:
            self.env["ANSIBLE_FORKS"] = str(args.forks)

    def log(self, msg: str) -> None:
        print(f"bench-fleet {time.strftime('%H:%M:%S')} {msg}", flush=True)

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise FleetBenchError("needs root (rootful podman)")
        for image in IMAGES:
            if podman("image", "exists", image, check=False).returncode != 0:
                raise FleetBenchError(f"{image} missing (run: make lab-images)")
        if not (REPO / ".cache/collections/ansible_collections/ftpskit/ftps").exists():
            raise FleetBenchError("the collection link is missing (run: make venv)")

    def build_wheelhouse(self) -> None:
        """Once, before any clock: the same script the ftps_server role runs (it then finds the
        wheelhouse unchanged, which is what a fleet's every run after the first sees)."""
        self.log(f"wheelhouse {self.wheelhouse} ({', '.join(WHEEL_TARGETS)})")
        proc = subprocess.run(
            [str(self.python), str(REPO / "roles/ftps_server/files/build_wheelhouse.py"),
             "--src", str(REPO / "src"), "--out", str(self.wheelhouse), *WHEEL_TARGETS],
            env=self.env,
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise FleetBenchError(f"build_wheelhouse.py failed: {proc.stderr.strip()[-400:]}")

    def effective_forks(self) -> int:
        if self.a.forks:
            return self.a.forks
        proc = subprocess.run(
            [str(self.python.with_name("ansible-config")), "dump"], env=self.env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip
        m = re.search(r"^DEFAULT_FORKS\(.*?\) = (\d+)", proc.stdout, re.MULTILINE)
        return int(m.group(1)) if m else 5

    def playbook(self, label: str, inv: Path, playbook: str, extra: list[str], n: int) -> Run:
        run = Run(label=label, load_before=load_average())
        cmd = [str(self.python.with_name("ansible-playbook")), "-i", str(inv), str(REPO / playbook), *extra]
        log_path = self.logs / f"n{n:02d}-{label}.log"
        run.log = str(log_path.relative_to(REPO))
        self.log(f"N={n} {label}: {shlex.join(cmd[1:])}")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        with log_path.open("w") as out:
            self.child = subprocess.Popen(
                cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                run.rc = self.child.wait(timeout=self.a.timeout)
            except subprocess.TimeoutExpired:
                run.timed_out = True
                self.kill_child()
            finally:
                self.child = None
        run.wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        run.load_after = load_average()
        output = log_path.read_text(errors="replace")
        run.recap = parse_recap(output)
        run.changed_tasks = changed_tasks(output)
        run.top = profile_top(output)
        self.log(
            f"N={n} {label}: rc={run.rc}{' TIMEOUT' if run.timed_out else ''} {run.wall:.1f} s wall, "
            f"{run.cpu:.1f} s controller CPU, changed={run.total('changed')} failed={run.total('failed')}"
        )
        return run

    def kill_child(self) -> None:
        if self.child and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.child.pid, signal.SIGKILL)
                self.child.wait()

    def teardown_hosts(self) -> None:
        names = sorted(self.created)
        if names:
            self.log(f"removing {len(names)} containers")
            remove_containers(names)
        self.created.clear()

    def size(self, n: int, results: list[SizeResult]) -> None:
        """Boot a fleet of n servers, time the playbooks, remove it. The result is in results from
        the start, so an interrupted size still reports the runs it finished."""
        result = SizeResult(servers=n)
        results.append(result)
        servers = server_names(n)
        hosts = [*servers, (CLIENT, IMAGES[1], CLIENT_ADDRESS)]
        leftovers = [h[0] for h in hosts if podman("container", "exists", h[0], check=False).returncode == 0]
        remove_containers(leftovers)
        self.created.update(h[0] for h in hosts)
        self.log(f"N={n}: booting {n} servers + 1 client")
        result.boot_seconds = boot(hosts, self.log)
        inv_dir = self.work / f"fleet-{n:02d}"
        inv_dir.mkdir()
        # The lab's settings (users, ports, firewall allow-list 10.213.0.0/16, probe user, pins),
        # linked as Molecule links them; the data dir defaults to <inventory dir>/.ftps-kit: a new CA.
        (inv_dir / "group_vars").symlink_to(REPO / "inventories/lab/group_vars")
        inv = inv_dir / "hosts.yml"
        inv.write_text(
            json.dumps(
                inventory([(s[0], s[2]) for s in servers], (CLIENT, CLIENT_ADDRESS), str(self.wheelhouse)),
                indent=2,
            )
        )
        steps = [
            ("site-first", "playbooks/site.yml", []),
            ("site-rerun", "playbooks/site.yml", []),
            ("rotate", "playbooks/rotate.yml", []),
        ]
        if self.a.rotate_batched:
            steps.append(
                (
                    "rotate-batched",
                    "playbooks/rotate.yml",
                    ["-e", f"ftps_rotate_serial={self.a.rotate_batched}"],
                )
            )
        for label, playbook, extra in steps:
            result.note = f"interrupted during {label}"
            run = self.playbook(label, inv, playbook, extra, n)
            result.note = ""
            if label.startswith("rotate"):
                run.rotate_hosts = rotation_durations(inv_dir / ".ftps-kit" / "rotations")
                for old in (inv_dir / ".ftps-kit" / "rotations").glob("rotation-*.json"):
                    old.rename(old.with_suffix(f".{label}.done"))
            result.runs[label] = run
            if not run.ok:
                result.note = (
                    f"{label} failed (rc={run.rc}{', timeout' if run.timed_out else ''}); see {run.log}"
                )
                self.log(f"N={n}: {result.note}; later steps of this size skipped")
                break
        self.teardown_hosts()

    def run(self) -> dict:
        a = self.a
        started = time.monotonic()
        facts = {k: v for k, v in machine_facts().items() if k in ("kernel", "cores", "cpu", "memory", "os")}
        facts["controller python"] = sys.version.split()[0]
        facts["podman"] = podman("--version", check=False).stdout.strip()
        facts["ansible-core"] = subprocess.run(
            [str(self.python.with_name("ansible")), "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0]
        facts["load average at start"] = load_average()
        self.preflight()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.build_wheelhouse()
        forks = self.effective_forks()
        results: list[SizeResult] = []
        skipped: list[tuple[int, str]] = []
        interrupted = ""
        ensure_network()
        try:
            for n in a.sizes:
                if (time.monotonic() - started) / 60 > a.max_minutes:
                    self.log(f"time budget of {a.max_minutes} min spent: N={n} not measured")
                    skipped.append((n, f"time budget (--max-minutes {a.max_minutes:g}) spent"))
                    continue
                self.size(n, results)
        except SystemExit as exc:  # SIGTERM/SIGINT (_terminate): report what was measured
            where = results[-1].servers if results else "?"
            interrupted = f"interrupted by a signal (exit {exc.code}) during N={where}"
            self.log(interrupted)
            reached = {r.servers for r in results} | {n for n, _ in skipped}
            skipped += [(n, "interrupted") for n in a.sizes if n not in reached]
        finally:
            self.kill_child()
            self.teardown_hosts()
            remove_network()
        facts["load average at end"] = load_average()
        return {
            "results": results,
            "skipped": skipped,
            "interrupted": interrupted,
            "facts": facts,
            "forks": forks,
            "elapsed": time.monotonic() - started,
            "args": a,
        }


def rotation_durations(record_dir: Path) -> list[float]:
    """Per-host seconds from rotate.yml's own record (issue + reload + gate, per server)."""
    durations: list[float] = []
    for path in sorted(record_dir.glob("rotation-*.json")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            durations += [float(h["duration_seconds"]) for h in record.get("hosts", [])]
    return durations


# -- Markdown ---------------------------------------------------------------------------------------
def _cell(run: Run | None, n: int, changed: bool = False) -> list[str]:
    if run is None:
        return ["—", "—"] + (["—"] if changed else [])
    if not run.ok:
        status = "timeout" if run.timed_out else f"FAILED rc={run.rc}"
        cells = [f"{run.wall:.0f} ({status})", "—"]
    else:
        cells = [f"{run.wall:.1f}", f"{run.wall / n:.1f}"]
    if changed:
        cells.append(str(run.total("changed")) if run.recap else "?")
    return cells


def render_section(result: dict, command: str) -> str:  # noqa: PLR0912 - one report, top to bottom
    a = result["args"]
    results: list[SizeResult] = result["results"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    batched = a.rotate_batched
    lines = [
        FLEET_BEGIN,
        "## Fleet scale: site.yml and rotate.yml on 1 to N servers",
        "",
        "Generated by `tests/bench/bench_fleet.py`; do not edit by hand (the rest of this file is",
        "`python -m tests.bench`'s, which keeps this section). Reproduce from a git checkout (contributors:",
        "CONTRIBUTING.md) with:",
        "",
        "```sh",
        f"sudo .venv/bin/{command}   # or: make bench-fleet",
        "```",
        "",
        f"Run: {now}, {result['elapsed'] / 60:.1f} min in all. {result['facts'].get('ansible-core', '')}, "
        f"forks {result['forks']}, strategy linear, connection `containers.podman.podman` (one `podman exec` "
        "per task and host), pipelining on (ansible.cfg).",
    ]
    if a.note:
        lines += ["", f"Note: {a.note}"]
    if result.get("interrupted"):
        lines += ["", f"**Incomplete**: the run was {result['interrupted']}."]
    head = ["N servers", "site.yml first run s", "s/host", "re-run s", "s/host", "re-run changed",
            "rotate.yml serial=1 s", "s/host"]  # fmt: skip
    if batched:
        head += [f"rotate.yml serial={batched} s", "s/host"]
    cpu_runs = "first / re-run / rotate" + (f" / rotate {batched}" if batched else "")
    head += [f"controller CPU s ({cpu_runs})", "load 1-min before → after each run"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        runs = r.runs
        row = [str(r.servers)]
        row += _cell(runs.get("site-first"), r.servers)
        row += _cell(runs.get("site-rerun"), r.servers, changed=True)
        row += _cell(runs.get("rotate"), r.servers)
        if batched:
            row += _cell(runs.get("rotate-batched"), r.servers)
        order = ["site-first", "site-rerun", "rotate"] + (["rotate-batched"] if batched else [])
        row.append(" / ".join(f"{runs[k].cpu:.0f}" if k in runs else "—" for k in order))
        row.append(
            "; ".join(
                f"{runs[k].load_before.split()[0]} → {runs[k].load_after.split()[0]}"
                for k in order
                if k in runs
            )
        )
        lines.append("| " + " | ".join(row) + " |")
    boots = ", ".join(f"N={r.servers}: {r.boot_seconds:.0f} s" for r in results)
    for n, why in result["skipped"]:
        lines.append(f"| {n} | not measured: {why} | " + "|" * (len(head) - 2))
    lines += [
        "",
        "s/host = wall time / N servers (each fleet also has one client, which site.yml configures and",
        "from which every probe and health gate runs). Controller CPU = user + system time of the",
        "ansible-playbook process tree (its forks and every `podman exec` client), not the containers'.",
        f"Booting the containers (not counted): {boots}.",
        "",
        "### Per-host cost as the fleet grows (computed from the table)",
        "",
    ]
    measured = [("site.yml first run", "site-first"), ("site.yml re-run", "site-rerun")]
    measured += [("rotate.yml serial=1", "rotate")]
    if batched:
        measured += [(f"rotate.yml serial={batched}", "rotate-batched")]
    for label, key in measured:
        per_host = {
            r.servers: r.runs[key].wall / r.servers for r in results if key in r.runs and r.runs[key].ok
        }
        lines.append(f"- {label}: {trend(per_host)}; {marginal(per_host)}")
    lines += ["", "### Where the time goes (ansible.posix.profile_tasks, slowest tasks per run)", ""]
    for r in results:
        for key, run in r.runs.items():
            if run.top:
                tops = "; ".join(f"{name} {sec:.1f} s" for name, sec in run.top[:3])
                lines.append(f"- N={r.servers} {key}: {tops}")
    lines += ["", "### rotate.yml per server (its own record: issue + reload + health gate)", ""]
    for r in results:
        for key in ("rotate", "rotate-batched"):
            run = r.runs.get(key)
            if run and run.rotate_hosts:
                d = run.rotate_hosts
                lines.append(
                    f"- N={r.servers} {key}: {len(d)} servers, {min(d):.1f}-{max(d):.1f} s each "
                    f"(mean {sum(d) / len(d):.1f} s); their sum {sum(d):.0f} s, "
                    f"the run's wall time {run.wall:.0f} s"
                )
    lines += ["", "### Idempotence at scale (the re-run's changed tasks)", ""]
    for r in results:
        run = r.runs.get("site-rerun")
        if run is None:
            lines.append(f"- N={r.servers}: no re-run ({r.note or 'not reached'})")
        elif run.total("changed") == 0 and run.ok:
            lines.append(f"- N={r.servers}: changed=0 on all {len(run.recap)} hosts")
        else:
            tasks = "; ".join(f"{t} ({len(h)} hosts)" for t, h in run.changed_tasks.items()) or "?"
            lines.append(f"- N={r.servers}: **changed={run.total('changed')}**: {tasks}")
    notes = [r for r in results if r.note]
    if notes:
        lines += ["", "### Failures", ""]
        lines += [f"- N={r.servers}: {r.note}" for r in notes]
    lines += ["", "### Machine", ""]
    lines += [f"- {k}: {v}" for k, v in result["facts"].items()]
    lines += ["", "### Method", ""]
    lines += [
        f"- Per size: N servers (`{IMAGES[0]}` and `:13` alternately) and one client (`:13`), booted",
        f"  with systemd on the benchmark's own network `{NETWORK}` ({SUBNET}), fresh for each size;",
        "  boot time is not counted. The lab's group_vars (inventories/lab/group_vars: three users,",
        "  ports 21/990, a 100-port passive range, the nftables allow-list, client pins).",
        "- Each size has its own controller store (`ftps_pki_store_dir`), so its first site.yml creates",
        "  a new CA: every size is a first deployment. All sizes share one wheelhouse, built before",
        "  any clock starts (site.yml's build step runs and finds it unchanged).",
        "- The re-run follows the first run at once; rotate.yml follows the re-run: every server gets",
        "  a new key and certificate, a reload, and a health gate from the client (explicit and",
        "  implicit listener verified and pinned, a 256 KiB round trip).",
        f"- Every run has a timeout of {a.timeout} s; logs in `.cache/bench-fleet/logs/` (git-ignored).",
        "- The machine is shared (2 vCPUs, other jobs running): the load averages are in the table.",
        "  The controller, the N+1 containers and podman share those 2 cores.",
        "",
        "Interpretation and the settings the kit recommends for 1,000 hosts: docs/fleet.md,",
        'section 11, "Scale: measured, and settings for 1,000 servers".',
        FLEET_END,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_fleet", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--sizes", default="1,5,10,20", help="fleet sizes, comma list (default 1,5,10,20)")
    p.add_argument("--forks", type=int, default=0, help="ansible forks (default: ansible.cfg's, i.e. 5)")
    p.add_argument(
        "--rotate-batched", default="", help="also time rotate.yml with this ftps_rotate_serial (e.g. 25%%)"
    )
    p.add_argument(
        "--timeout", type=int, default=1500, help="seconds per ansible-playbook run (default 1500)"
    )
    p.add_argument(
        "--max-minutes", type=float, default=60.0, help="start no new size after this long (default 60)"
    )
    p.add_argument(
        "--output", default=str(REPO / "docs" / "benchmark.md"), help="Markdown file (its fleet section)"
    )
    p.add_argument("--no-write", action="store_true", help="print the section, write nothing")
    p.add_argument("--note", default="", help="free text recorded with the results")
    a = p.parse_args(argv)
    try:
        a.sizes = parse_sizes(a.sizes)
    except ValueError as exc:
        p.error(str(exc))
    if a.rotate_batched and not re.fullmatch(r"[1-9][0-9]*%?", a.rotate_batched):
        p.error("--rotate-batched must be a number or a percentage, e.g. 25%")
    return a


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: child, containers, network


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    command = "python -m tests.bench.bench_fleet " + shlex.join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        bench = FleetBench(args, Path(tmp))
        try:
            result = bench.run()
        except FleetBenchError as exc:
            print(f"bench-fleet: {exc}", file=sys.stderr)
            return 2
    section = render_section(result, command.strip())
    print(section)
    if not args.no_write:
        out = Path(args.output)
        out.write_text(with_fleet_section(out.read_text() if out.exists() else "", section))
        print(f"bench-fleet: wrote the fleet section of {out}")
    failed = any(not run.ok for r in result["results"] for run in r.runs.values())
    return 1 if failed or result["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
