"""ftpsd.heap: a password check's scrypt buffer does not stay in its thread's arena (issue 23).

Each case runs in a fresh interpreter: mallopt changes the whole process's heap, and the
pytest process's own heap history would blur the measure.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Five checks in each of three pool threads, like a worker's password-check pool; then the
# resident set is compared with the one before the first check. Without the fixed threshold
# glibc keeps a 16 MiB buffer in each thread's arena (three threads: about 48 MiB).
_PROBE = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from ftpskit_common.passwd import hash_password, verify_password
from ftpsd.heap import return_large_buffers
if sys.argv[1] == "fixed":
    assert return_large_buffers()
encoded = hash_password("secret")  # the first 16 MiB block: glibc's threshold adapts after it
barrier = threading.Barrier(3)
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4
def check(_):
    barrier.wait()  # three distinct threads, each its own arena
    return verify_password("secret", encoded)
before = rss_kib()
with ThreadPoolExecutor(max_workers=3) as pool:
    for _ in range(5):
        assert all(pool.map(check, range(3)))
    print(rss_kib() - before)
"""


def _retained_kib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True, timeout=120
    )
    return int(out.stdout.strip())


def test_scrypt_buffers_are_unmapped_after_each_check() -> None:
    # 16 MiB = 16,384 KiB per retained buffer; what a check leaves behind must be far below one.
    assert _retained_kib("fixed") < 4096


def test_the_probe_sees_the_retention_it_guards_against() -> None:
    """Without return_large_buffers() the same probe sees at least one retained buffer: the test
    above measures something real on this libc."""
    retained = _retained_kib("default")
    if retained < 16384:
        pytest.skip(f"this libc returned the buffers by itself ({retained} KiB retained)")
    assert retained >= 16384


def test_the_daemon_fixes_the_threshold_before_anything_else(monkeypatch, tmp_path) -> None:
    """ftpsd.daemon.run() calls it first, even for a configuration it then refuses (before any
    pool thread or worker exists, so every arena and every worker follows it)."""
    from ftpsd import daemon

    calls = []
    monkeypatch.setattr(daemon, "return_large_buffers", lambda: calls.append("mallopt") or True)
    monkeypatch.setattr(daemon, "load_everything", lambda path: calls.append("load") or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        daemon.run(str(tmp_path / "ftpsd.toml"))
    assert calls == ["mallopt", "load"]
