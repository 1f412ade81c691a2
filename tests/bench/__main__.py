"""``python -m tests.bench`` (``make bench``): ftpsd vs vsftpd vs ProFTPD vs stock pyftpdlib (FTPS).

A benchmark, not a test: nothing asserts a time. One run measures the floors on this machine
(``tests/bench/floor.py``), starts all four servers on loopback (each in its own cpuacct cgroup,
data on a private tmpfs), interleaves them rep by rep so background noise hits each alike, takes
medians, and writes a Markdown table with the exact command to docs/benchmark.md. ``--quick`` is
a smoke run (small sizes, one rep, prints only). Needs root (tmpfs, cgroups, a local user for
vsftpd's PAM login and ProFTPD). ProFTPD is fetched with apt-get on first use; when it cannot be
(offline), its column is skipped and the reason printed and recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from tests.bench import clients as C
from tests.bench import floor
from tests.bench.env import BenchEnv, BenchError, load_average, machine_facts, make_random_file
from tests.bench.env import sha256_file as sha
from tests.bench.report import keep_sections, render
from tests.bench.servers import SERVERS, Ftpsd, FtpsdBaseline, Server
from tests.paths import ROOT as REPO

GIB = 1 << 30
MIB = 1 << 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 64 MiB, 50 small files, 10 sessions, 1 rep"
    )
    p.add_argument("--reps", type=int, help="repetitions (default 5; medians are reported)")
    p.add_argument("--size-mib", type=int, help="large transfer size in MiB (default 1024)")
    p.add_argument("--small-count", type=int, help="number of small files (default 500)")
    p.add_argument("--small-size", type=int, default=4096, help="small file size in bytes (default 4096)")
    p.add_argument("--sessions", type=int, help="concurrent sessions (default 50)")
    p.add_argument("--session-mib", type=int, help="MiB each concurrent session downloads (default 32)")
    p.add_argument("--idle", type=int, help="idle sessions for the memory measure (default 50)")
    p.add_argument(
        "--servers", default="ftpsd,vsftpd,proftpd,pyftpdlib", help="comma list (default all four)"
    )
    p.add_argument("--clients", default="py,curl", help="comma list of py,curl (default both)")
    p.add_argument("--only", default="", help="comma list of measures: dl,ul,small,conc,idle (default all)")
    p.add_argument("--output", help="Markdown file to write (default docs/benchmark.md; none with --quick)")
    p.add_argument(
        "--max-minutes", type=float, default=12.0, help="start no new repetition after this long (default 12)"
    )
    p.add_argument(
        "--curl-small",
        action="store_true",
        help="also time small files with curl (off: curl 7.88 idles 0.2-1 s on many data connects)",
    )
    p.add_argument(
        "--ftpsd-scrypt-ln",
        type=int,
        default=0,
        help="give ftpsd's user an scrypt hash with this ln instead of ftpsd's default (what-if runs)",
    )
    p.add_argument(
        "--baseline",
        default="",
        help="git ref of an earlier ftpsd, run beside the current one as server 'ftpsd-base' "
        "(before/after ratios from one run)",
    )
    p.add_argument(
        "--baseline-workers",
        type=int,
        default=None,
        help="run ftpsd-base with this server.workers (e.g. --baseline HEAD --baseline-workers 1: "
        "the worker count measured alone)",
    )
    p.add_argument(
        "--baseline-tunables",
        default=None,
        help="GLIBC_TUNABLES for ftpsd-base instead of the unit's ('' = unset; e.g. "
        "--baseline HEAD --baseline-tunables '': the hugetlb tunable measured alone)",
    )
    p.add_argument("--note", default="", help="free text recorded with the results (e.g. machine load)")
    a = p.parse_args(argv)
    quick = a.quick
    a.reps = a.reps or (1 if quick else 5)
    a.size_mib = a.size_mib or (64 if quick else 1024)
    a.small_count = a.small_count or (50 if quick else 500)
    a.sessions = a.sessions or (10 if quick else 50)
    a.session_mib = a.session_mib or (4 if quick else 32)
    a.idle = a.idle or (10 if quick else 50)
    a.servers = [s for s in a.servers.split(",") if s]
    a.clients = [c for c in a.clients.split(",") if c]
    a.only = set(a.only.split(",")) - {""} or {"dl", "ul", "small", "conc", "idle"}
    if a.output is None and not quick:
        a.output = str(REPO / "docs" / "benchmark.md")
    if a.baseline and "ftpsd-base" not in a.servers:
        a.servers.insert(1, "ftpsd-base")
    for s in a.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}; choose from {', '.join(SERVERS)}")
    for c in a.clients:
        if c not in ("py", "curl"):
            p.error(f"unknown client {c!r}; choose py or curl")
    return a


class Bench:
    def __init__(self, args: argparse.Namespace, env: BenchEnv) -> None:
        self.a = args
        self.env = env
        self.values: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (measure, client, server)
        self.errors: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        self.small = [f"s{i:04d}.bin" for i in range(args.small_count)]

    def log(self, msg: str) -> None:
        print(f"bench {time.strftime('%H:%M:%S')} {msg}", flush=True)

    # -- data -------------------------------------------------------------------------------------
    def make_data(self) -> None:
        data = self.env.data
        data.mkdir()
        (data / "small").mkdir()
        self.log(f"data: {self.a.size_mib} MiB, {self.a.small_count} x {self.a.small_size} B, "
                 f"{self.a.session_mib} MiB for sessions")  # fmt: skip
        self.sum_big = make_random_file(data / "big.bin", self.a.size_mib * MIB)
        self.sum_conc = make_random_file(data / "conc.bin", self.a.session_mib * MIB)
        self.sum_small = {n: make_random_file(data / "small" / n, self.a.small_size) for n in self.small}
        self.out = self.env.mountpoint / "client"
        self.out.mkdir()

    def populate(self, server: Server) -> None:
        """Hard links: every server serves the same bytes without copying them on tmpfs."""
        home = server.home
        home.mkdir(parents=True, exist_ok=True)
        for name in ("big.bin", "conc.bin"):
            os.link(self.env.data / name, home / name)
        for n in self.small:
            os.link(self.env.data / "small" / n, home / n)

    # -- recording --------------------------------------------------------------------------------
    def measured(self, key: tuple[str, str, str], server: Server, fn, nbytes_hint: int = 0):
        """Run fn with the server's cgroup CPU counter read around it; errors are recorded."""
        cpu0 = server.cpu_seconds()
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:
            self.errors[key].append(f"{type(exc).__name__}: {exc}"[:300])
            self.log(f"  {key}: FAILED {exc!s:.200}")
            return None
        wall = time.perf_counter() - t0
        return result, wall, server.cpu_seconds() - cpu0

    def verify(self, key, path: Path, expect: str) -> bool:
        ok = path.exists() and sha(path) == expect
        if not ok:
            self.errors[key].append(f"checksum mismatch: {path.name}")
            self.log(f"  {key}: CHECKSUM MISMATCH {path}")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return ok

    # -- measures ---------------------------------------------------------------------------------
    def large(self, server: Server, t: C.Target, client: str) -> None:
        """Throughput = bytes / transfer time (data connection to 226); CPU over the same span for
        the Python client, over the whole curl run (one login included) for curl."""
        size = self.a.size_mib * MIB
        session = None
        if client == "py":
            try:
                session = C.PyTransfer(t)
            except Exception as exc:
                self.errors[("dl", client, server.name)].append(f"login: {type(exc).__name__}: {exc}"[:300])
                return
        try:
            for measure in ("dl", "ul"):
                if measure not in self.a.only:
                    continue
                key = (measure, client, server.name)
                if measure == "dl":
                    local, expect = self.out / "big.bin", self.out / "big.bin"
                    fn = session.get if session else lambda r, lo: C.curl_download(t, r, lo)
                    r = self.measured(key, server, lambda fn=fn, local=local: fn("big.bin", local))
                else:
                    remote = f"up-{client}.bin"
                    expect = server.home / remote
                    fn = session.put if session else lambda lo, r: C.curl_upload(t, lo, r)
                    r = self.measured(
                        key, server, lambda fn=fn, remote=remote: fn(self.env.data / "big.bin", remote)
                    )
                if r and self.verify(key, expect, self.sum_big):
                    seconds, _, cpu = r
                    self.values[key].append(size / seconds / 1e6)
                    self.values[(f"{measure}_cpu", client, server.name)].append(cpu / (size / GIB))
        finally:
            if session:
                session.close()

    def many(self, server: Server, t: C.Target, client: str) -> None:
        key = ("small", client, server.name)
        if client == "curl" and not self.a.curl_small:
            return  # see --curl-small
        outdir = self.out / "small"
        outdir.mkdir(exist_ok=True)
        steps: C.Steps = {}
        fn = (
            (lambda: C.py_many(t, self.small, outdir, steps))
            if client == "py"
            else (lambda: C.curl_many(t, self.small, outdir))
        )
        r = self.measured(key, server, fn)
        if r:
            bad = [n for n in self.small if not (outdir / n).exists() or sha(outdir / n) != self.sum_small[n]]
            if bad:
                self.errors[key].append(f"{len(bad)} small files missing or corrupt")
            else:
                self.values[key].append(len(self.small) / r[1])
                self.values[("small_cpu", client, server.name)].append(r[2] / len(self.small) * 1000)
                for step, seconds in steps.items():
                    key_step = (f"small_{step}", client, server.name)
                    self.values[key_step].append(statistics.median(seconds) * 1e6)
        for n in self.small:
            with contextlib.suppress(FileNotFoundError):
                (outdir / n).unlink()

    def conc(self, server: Server, t: C.Target, client: str) -> None:
        key = ("conc", client, server.name)
        outdir = self.out / "conc"
        outdir.mkdir(exist_ok=True)
        r = self.measured(
            key,
            server,
            lambda: C.concurrent(
                t, client, "conc.bin", outdir, sessions=self.a.sessions, expect=self.sum_conc
            ),
        )
        if r:
            res, _, cpu = r
            moved = res["good"] * self.a.session_mib * MIB
            self.values[key].append(moved / res["wall"] / 1e6)
            self.values[("conc_fail", client, server.name)].append(len(res["failures"]))
            self.values[("conc_client_cpu", client, server.name)].append(res["client_cpu"])
            if moved:
                self.values[("conc_cpu", client, server.name)].append(cpu / (moved / GIB))
            for f in res["failures"][:3]:
                self.errors[key].append(f)

    def idle(self, server: Server, t: C.Target) -> None:
        key = ("idle", "py", server.name)
        # A fresh server: a heap grown by earlier measures would hide what sessions cost.
        server.stop()
        server.start()
        # Warm-up: as many sessions as measured, kept open. Every worker has then paid its
        # first-use costs (lazy imports and caches, the first copies of pages it shares with
        # the supervisor) and the measured sessions need new memory instead of reusing what
        # closed sessions freed: the figure is what one more live session costs (issue 23: with
        # 4 closed warm-up sessions it swung between 20 and 80 KiB for the same ftpsd).
        warm: list = []
        try:
            warm = C.open_idle(t, self.a.idle)[0]
            time.sleep(0.5)
            before, before_anon = server.pss_kib(), server.pss_kib("Pss_Anon")
            cpu0 = server.cpu_seconds()
            sessions, setup = C.open_idle(t, self.a.idle)
            setup_cpu = (server.cpu_seconds() - cpu0) / self.a.idle
        except Exception as exc:
            C.close_all(warm)
            self.errors[key].append(f"{type(exc).__name__}: {exc}"[:300])
            return
        try:
            time.sleep(1.0)
            after, after_anon = server.pss_kib(), server.pss_kib("Pss_Anon")
        finally:
            C.close_all(sessions)
            C.close_all(warm)
        self.values[key].append((after - before) / self.a.idle)
        self.values[("idle_anon", "py", server.name)].append((after_anon - before_anon) / self.a.idle)
        self.values[("setup", "py", server.name)].append(statistics.median(setup) * 1000)
        # Server CPU per session set up (all its processes, the sessions opened one after the
        # other), and the same less the password hash's cost measured in this process (the
        # server runs the same algorithm at the same cost): what a session costs besides the hash.
        self.values[("setup_cpu", "py", server.name)].append(setup_cpu * 1000)
        self.values[("setup_cpu_nohash", "py", server.name)].append((setup_cpu - server.login_cost) * 1000)

    # -- driver -----------------------------------------------------------------------------------
    def run(self) -> dict:  # noqa: PLR0912 - the driver loop, top to bottom
        a = self.a
        started = time.monotonic()
        facts = machine_facts()
        facts["load average at start"] = load_average()
        self.make_data()
        self.log("floors: resumed TLS 1.3 handshakes against openssl s_server; openssl speed (one core)")
        floors = floor.measure(self.env.pki)
        self.log(
            f"floors: {floors.handshake_ms:.3f} ms s_server CPU per resumed connection "
            f"({floors.resumed}/{floors.connections} resumed); "
            + ", ".join(f"{c} {v:.0f} MB/s" for c, v in floors.ceilings.items())
        )
        servers: list[Server] = []
        skipped: dict[str, str] = {}
        for name in a.servers:
            server = SERVERS[name](self.env)
            try:
                server.obtain()
            except Server.Unavailable as exc:
                self.log(f"skip {name}: {exc}")
                skipped[name] = str(exc)
                continue
            servers.append(server)
        a.servers = [s.name for s in servers]
        for s in servers:
            if isinstance(s, Ftpsd) and a.ftpsd_scrypt_ln:
                s.scrypt_ln = a.ftpsd_scrypt_ln
            if isinstance(s, FtpsdBaseline):
                s.ref = a.baseline
                if a.baseline_workers is not None:
                    s.workers = a.baseline_workers
                s.tunables = a.baseline_tunables
        for s in servers:
            self.populate(s)
        try:
            for s in servers:
                self.log(f"start {s.name} on 127.0.0.1:{s.port}")
                s.start()
            targets = {
                s.name: C.Target(s.name, s.port, s.user, s.password, self.env.pki["ca"]) for s in servers
            }
            reps_done = 0
            for rep in range(a.reps):
                if (time.monotonic() - started) / 60 > a.max_minutes:
                    self.log(f"time budget of {a.max_minutes} min spent; stopping after {reps_done} reps")
                    break
                order = servers[rep % len(servers) :] + servers[: rep % len(servers)]
                for s in order:
                    t = targets[s.name]
                    self.log(f"rep {rep + 1}/{a.reps} {s.name}")
                    for client in a.clients:
                        if a.only & {"dl", "ul"}:
                            self.large(s, t, client)
                        if "small" in a.only:
                            self.many(s, t, client)
                        if "conc" in a.only:
                            self.conc(s, t, client)
                    if "idle" in a.only:
                        self.idle(s, t)
                reps_done += 1
        finally:
            for s in servers:
                s.stop()
        facts["load average at end"] = load_average()
        return {
            "values": self.values,
            "errors": self.errors,
            "facts": facts,
            "floors": floors,
            "skipped": skipped,
            "servers": {
                s.name: {"hash": s.hash_scheme, "login_cost": s.login_cost, "version": s.version}
                for s in servers
            },
            "reps": reps_done,
            "elapsed": time.monotonic() - started,
            "args": a,
            "logs": {s.name: s.log_tail() for s in servers if self.errors},
        }


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: servers, tmpfs, user


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = "python -m tests.bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    env = BenchEnv()
    try:
        env.open()
        result = Bench(args, env).run()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        env.close()
    text = render(result, command.strip())
    print(text)
    if args.output:
        out = Path(args.output)
        out.write_text(keep_sections(text, out.read_text() if out.exists() else ""))
        print(f"bench: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
