"""Large transient buffers go back to the kernel when freed (glibc malloc tuning).

A password check runs scrypt in a pool thread; OpenSSL allocates its 16 MiB work buffer with
malloc. glibc's default mmap threshold is dynamic: once a large mmap'd block is freed, the
threshold rises above its size, so every later 16 MiB buffer is carved from the thread's own
arena and stays there after the check (trimming follows the raised threshold too). Each pool
thread then holds 16 MiB for good, and how many threads did a check decides how much memory
the daemon holds: per-session figures swung from 230 to 559 KiB between runs (issue 23).

Setting ``M_MMAP_THRESHOLD`` fixes the threshold (glibc then stops adjusting it): every block of
at least :data:`MMAP_THRESHOLD` bytes, in any thread, is its own mapping and is unmapped by
``free``. Smaller allocations, and so everything a session holds, are unaffected.

The cost is mapping the buffer again on each check: 4,096 page faults of 4 KiB, about 7 ms of
CPU per scrypt check on the 2-core test VM (30 -> 37 ms). With the glibc tunable
:data:`TUNABLES` (transparent huge pages for malloc's mappings; glibc 2.35+, the kernel's THP mode
``madvise`` or ``always``) the buffer is eight 2 MiB pages and the cost is within the noise (29.9
-> 29.7 ms), for 1-2 MiB more PSS of the whole daemon (its heap grows in huge-page steps). It
must be in the environment when the process starts: the systemd unit of the
ftps_server role sets ``GLIBC_TUNABLES`` to it, and so does the benchmark (docs/benchmark.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("ftpsd")

M_MMAP_THRESHOLD = -3  # <malloc.h>
# Above every buffer the daemon keeps per session or per transfer (at most a few hundred KiB)
# and below scrypt's 128 * r * N (16 MiB at ln=14, r=8; 1 MiB even at ln=10).
MMAP_THRESHOLD = 1 << 20
# GLIBC_TUNABLES for the daemon's environment (roles/ftps_server/templates/ftpsd.service.j2).
TUNABLES = "glibc.malloc.hugetlb=1"


def return_large_buffers(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where there is no glibc mallopt
    (another libc: nothing changes)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        # glibc only: musl and others have no gnu_get_libc_version (and no such heap behaviour).
        libc.gnu_get_libc_version  # noqa: B018 - presence check
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, threshold) != 1:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) failed; large buffers may stay in the heap", threshold)
        return False
    return True
