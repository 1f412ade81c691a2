"""The supervisor lets go of the library pages only its start needed (issue 23).

The supervisor imports and loads everything before it forks the workers, so it has touched every
page of code that import, configuration checks and TLS loading ran: startup code of
cryptography's ``_rust`` module, pyOpenSSL's binding, libcrypto and libpython that no worker
runs again. Those pages stay mapped in the supervisor, and only there, for the daemon's
lifetime: 3-6 MiB of its PSS, against 2.5 MiB of file pages per worker (docs/benchmark.md,
item 10).

:func:`drop_file_pages` unmaps them with ``madvise(MADV_DONTNEED)`` on every mapping that can only
hold the file's own bytes: private, not writable, backed by a file, and without a single
anonymous (copied-on-write) page. For such a mapping the call only removes the page-table
entries; the next access maps the same bytes again from the page cache (a minor fault, or a read
if the kernel has evicted them meanwhile). Nothing is lost or changed: writable mappings (data,
relocations, the heap) and any mapping with a copied page are never touched, so no state can be
discarded. The pages themselves become unmapped page cache: the first that memory pressure
reclaims, and no longer in the daemon's PSS/RSS (cgroup memory accounting still counts cached
file pages; it is the mapped-and-pinned share that goes).

Only for a process with a single thread (the supervisor): another thread could replace a mapping
(``dlclose``/``dlopen``, ``mmap``) between the read of ``/proc/self/smaps`` and the ``madvise``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import threading

log = logging.getLogger("ftpsd")

MADV_DONTNEED = 4  # <sys/mman.h> (Linux, every architecture)
_MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ +(/.*)?$")


def droppable(smaps: str) -> list[tuple[int, int]]:
    """(start, end) of every mapping in ``smaps`` (the text of ``/proc/PID/smaps``) that holds
    only a file's own bytes: private, not writable, file-backed, no anonymous page."""
    found: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps.splitlines():
        if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
            match = _MAPPING.match(line)
            current = None
            if match and match.group(4):
                perms = match.group(3)
                if "w" not in perms and perms[3] == "p":
                    current = (int(match.group(1), 16), int(match.group(2), 16))
        elif line.startswith("Anonymous:") and current is not None:
            if int(line.split()[1]) == 0:
                found.append(current)
            current = None
    return found


def drop_file_pages() -> int:
    """Unmap the pages of :func:`droppable` mappings of this process; returns the bytes of
    address space advised (0 where it cannot: no /proc, no libc, more than one thread)."""
    if threading.active_count() != 1:
        log.warning("not dropping file pages: %d threads", threading.active_count())
        return 0
    try:
        with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
            smaps = f.read()
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    advised = 0
    for start, end in droppable(smaps):
        if madvise(start, end - start, MADV_DONTNEED) == 0:  # EINVAL (e.g. locked): left alone
            advised += end - start
    return advised
