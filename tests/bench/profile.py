"""Profile ftpsd with py-spy: ``python -m tests.bench.profile [--what download,upload,small,login]``.

Starts ftpsd with one worker (so one process holds every sample) on a private tmpfs, then
records a download and an upload of the same file, small files, or sessions set up one by
one (``login``) with the Python client, each under
``py-spy record --native``, and prints the functions holding most samples (self and total).
Flame graphs (SVG) are left in --outdir. Not a test.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import clients as C
from tests.bench.env import BenchEnv, make_random_file
from tests.bench.servers import Ftpsd

MIB = 1 << 20


def top(raw: Path, n: int = 18) -> str:
    """Top frames by self and by total samples from py-spy's collapsed ('raw') output."""
    selfc: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    all_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        k = int(count)
        all_samples += k
        selfc[frames[-1]] += k
        for f in set(frames):
            total[f] += k
    out = [f"  samples: {all_samples}", "  self:"]
    out += [f"    {c * 100 / all_samples:5.1f}%  {f[:150]}" for f, c in selfc.most_common(n)]
    out += ["  total (inclusive):"]
    out += [f"    {c * 100 / all_samples:5.1f}%  {f[:150]}" for f, c in total.most_common(n)]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--outdir", default="/tmp/ftpsd-profile")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--what", default="download,upload,small", help="comma list: download,upload,small,login")
    p.add_argument("--logins", type=int, default=100, help="sessions set up one by one for 'login'")
    p.add_argument("--small-count", type=int, default=500)
    p.add_argument("--no-native", action="store_true", help="Python frames only (less overhead)")
    a = p.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    outdir = Path(a.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    env = BenchEnv().open()
    server = Ftpsd(env)
    server.workers = 1
    try:
        env.data.mkdir()
        server.home.mkdir(parents=True)
        make_random_file(server.home / "big.bin", a.size_mib * MIB)
        small = [f"s{i:04d}.bin" for i in range(a.small_count)]
        for name in small:
            make_random_file(server.home / name, 4096)
        (env.mountpoint / "small").mkdir()
        server.start()
        pid = max(server.cgroup.pids())  # the serving process (the exec'd shell is the same pid)
        t = C.Target("ftpsd", server.port, server.user, server.password, env.pki["ca"])
        local = env.mountpoint / "down.bin"
        for what in a.what.split(","):
            session = C.PyTransfer(t)
            raw = outdir / f"{what}.txt"
            spy = subprocess.Popen(
                [pyspy, "record", *([] if a.no_native else ["--native"]), "--pid", str(pid),
                 "--rate", str(a.rate), "--format", "raw", "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=sys.stderr,
            )  # fmt: skip
            time.sleep(1.0)
            cpu0 = server.cpu_seconds()
            if what == "small":
                t0 = time.perf_counter()
                C.py_many(t, small, env.mountpoint / "small")
                seconds = time.perf_counter() - t0
            elif what == "login":
                t0 = time.perf_counter()
                C.close_all(C.open_idle(t, a.logins)[0])
                seconds = time.perf_counter() - t0
            elif what == "download":
                seconds = session.get("big.bin", local)
            else:
                seconds = session.put(local, "up.bin")
            cpu = server.cpu_seconds() - cpu0
            spy.send_signal(2)
            spy.wait(timeout=60)
            session.close()
            gib = a.size_mib / 1024
            if what == "small":
                per_file = cpu / len(small) * 1000
                print(f"{what}: {len(small) / seconds:.0f} files/s, server CPU {per_file:.2f} ms/file")
            elif what == "login":
                per = cpu / a.logins * 1000
                print(f"{what}: {a.logins / seconds:.0f} sessions/s, server CPU {per:.2f} ms/session")
            else:
                print(
                    f"{what}: {a.size_mib * MIB / seconds / 1e6:.0f} MB/s, server CPU {cpu / gib:.2f} s/GiB"
                )
            if raw.exists():
                print(top(raw))
    finally:
        server.stop()
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
