"""``python -m tests.bench.daemon_pss REF [REPS [WORKERS [BASE_WORKERS]]]``: ftpsd's PSS fresh and
after 50 sessions came and went, this checkout against the ftpsd of git ref REF (both with the
unit's environment; ``server.workers`` = WORKERS, default 0: one per core; REF's = BASE_WORKERS,
default WORKERS).

A benchmark, not a test (docs/benchmark.md, "Changes measured alone"). Needs root like
``python -m tests.bench`` (tmpfs, cgroups). The PSS is summed over every process of the server.
"""

from __future__ import annotations

import sys
import time

from tests.bench import clients as C
from tests.bench.env import BenchEnv
from tests.bench.servers import Ftpsd, FtpsdBaseline


def main(argv: list[str]) -> int:
    ref, reps = argv[0], int(argv[1]) if len(argv) > 1 else 3
    workers = int(argv[2]) if len(argv) > 2 else 0
    base_workers = int(argv[3]) if len(argv) > 3 else workers
    env = BenchEnv()
    env.open()
    try:
        base = FtpsdBaseline(env)
        base.ref = ref
        servers = [Ftpsd(env), base]
        for s, count in zip(servers, (workers, base_workers), strict=True):
            s.workers = count
            s.home.mkdir(parents=True, exist_ok=True)
        for rep in range(reps):
            for s in servers:
                s.start()
                try:
                    time.sleep(1.0)
                    fresh = s.pss_kib()
                    target = C.Target(s.name, s.port, s.user, s.password, env.pki["ca"])
                    for _ in range(5):
                        C.close_all(C.open_idle(target, 10)[0])
                    time.sleep(1.0)
                    after = s.pss_kib()
                finally:
                    s.stop()
                print(f"{s.name} rep {rep + 1}: fresh {fresh} KiB, after 50 sessions closed {after} KiB "
                      f"(+{after - fresh})", flush=True)  # fmt: skip
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
