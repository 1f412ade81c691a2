"""ftpsd.daemon: workers keep sharing the supervisor's heap through a full collection (issue 23).

A worker is forked from the supervisor with the whole Python heap shared copy-on-write. A full
collection in the worker writes to the GC header of every tracked object it walks, which copies
every page it touches; ``fork_sharing_heap`` freezes the heap first, so none is walked. Each case
runs in a fresh interpreter (the pytest process's own heap would blur the measure).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# The parent holds ~200,000 tracked objects (about 20 MiB of pages); the child runs a full
# collection and reports how much of its memory became private (copied) meanwhile.
_PROBE = """
import gc, os, sys
from ftpsd.daemon import fork_sharing_heap
def private_dirty_kib():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
state = [[i, str(i)] for i in range(200_000)]
fork = fork_sharing_heap if sys.argv[1] == "frozen" else os.fork
read, write = os.pipe()
pid = fork()
if pid == 0:
    before = private_dirty_kib()
    gc.collect()
    os.write(write, str(private_dirty_kib() - before).encode())
    os._exit(0)
os.close(write)
copied = os.read(read, 64).decode()
os.waitpid(pid, 0)
print(copied)
"""


def _copied_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps_rollup")
def test_a_full_collection_in_a_worker_copies_none_of_the_supervisors_heap() -> None:
    frozen = _copied_kib("frozen")
    plain = _copied_kib("plain")
    # The probe measures what it claims: with a plain fork the collection copies the heap.
    assert plain > 12 * 1024, plain
    assert frozen < 4 * 1024, (frozen, plain)


def test_the_serving_daemon_does_not_import_the_metrics_stack() -> None:
    """prometheus_client (and ftpsd.metrics) are for ``ftpsd metrics`` only: a serving process
    never imports them (tests/integration/test_metrics.py shows the textfile still works)."""
    probe = (
        "import sys, ftpsd.__main__, ftpsd.daemon\n"
        "print(sorted(m for m in sys.modules if 'prometheus' in m or m == 'ftpsd.metrics'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_certificate_summary_is_made_once_per_load_not_per_report(monkeypatch) -> None:
    """load_everything() makes the status reports' certificate summary (in the supervisor, before
    the workers fork: its objects stay shared); a worker's report (once a second while sessions
    change) sends that one and never summarizes the certificate again."""
    from types import SimpleNamespace

    from ftpsd import daemon
    from ftpsd.status import certificate_summary
    from tests.certs import TestCA

    issued = TestCA().issue()
    material = SimpleNamespace(cert=issued.cert, chain=[issued.cert], fingerprint="f", directory="d")
    config = SimpleNamespace()
    monkeypatch.setattr(daemon, "FtpsdAuthorizer", lambda users: object())
    monkeypatch.setattr(
        daemon,
        "load_all",
        lambda path: SimpleNamespace(config=config, material=material, users=[], context=object()),
    )
    loaded = daemon.load_everything("/unused")
    assert loaded.certificate == certificate_summary(issued.cert, [issued.cert], loaded.loaded_at)

    def no_summary(*args, **kwargs):
        raise AssertionError("a report summarized the certificate again")

    monkeypatch.setattr(daemon, "certificate_summary", no_summary)
    sent: dict = {}
    worker = daemon.Worker.__new__(daemon.Worker)
    worker.loaded, worker.index, worker.generation, worker.last_reload = loaded, 0, 3, None
    worker.status = SimpleNamespace(report=lambda index, generation, **kw: sent.update(kw))
    worker.runtime = SimpleNamespace(
        sessions=set(),
        counters=SimpleNamespace(changes=0, values={}),
        limits=SimpleNamespace(header=lambda index: (0, 0), counts=lambda index: {"sessions": 0}),
    )
    worker.report([], [])
    assert sent["certificate"] is loaded.certificate
