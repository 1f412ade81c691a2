"""ftpsd.pages: the supervisor unmaps the pages of mappings that hold only a file's bytes, and
nothing else (issue 23)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ftpsd.pages import droppable

_SMAPS = """\
55d0c0000000-55d0c0001000 r--p 00000000 fd:01 11 /usr/bin/python3.13
Size:                  4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
55d0c0001000-55d0c0003000 r-xp 00001000 fd:01 11 /usr/bin/python3.13
Anonymous:             0 kB
55d0c0003000-55d0c0004000 r--p 00003000 fd:01 11 /usr/bin/python3.13
Anonymous:             4 kB
55d0c0004000-55d0c0005000 rw-p 00004000 fd:01 11 /usr/bin/python3.13
Anonymous:             0 kB
55d0c1000000-55d0c2000000 rw-p 00000000 00:00 0                          [heap]
Anonymous:             0 kB
7f0000000000-7f0000001000 r--s 00000000 00:05 22 /dev/shm/x
Anonymous:             0 kB
7f0000001000-7f0000002000 r--p 00000000 00:00 0
Anonymous:             0 kB
7f0000002000-7f0000004000 r-xp 00000000 fd:01 33 /opt/lib/with space.so (deleted)
Anonymous:             0 kB
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Anonymous:             0 kB
"""


def test_only_private_read_only_file_mappings_without_a_copied_page() -> None:
    assert droppable(_SMAPS) == [
        (0x55D0C0000000, 0x55D0C0001000),  # r--p, no anonymous page
        (0x55D0C0001000, 0x55D0C0003000),  # r-xp
        (0x7F0000002000, 0x7F0000004000),  # a file's path with a space, even deleted
    ]  # not: r--p with a copied page (relocations), rw-p, the heap, shared, anonymous, vsyscall


# A private file mapping made read-only after a write (what the loader does to relocations), a
# plain read-only one, and a writable one: only the plain one loses its resident pages, and every
# byte reads the same afterwards.
_PROBE = r"""
import ctypes, mmap, os, sys
from ftpsd.pages import drop_file_pages
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(bytes(range(256)) * 64)  # 16 KiB
fd = os.open(path, os.O_RDONLY)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
c = ctypes
libc.mmap.argtypes = (c.c_void_p, c.c_size_t, c.c_int, c.c_int, c.c_int, c.c_long)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
PR, PRW = mmap.PROT_READ, mmap.PROT_READ | mmap.PROT_WRITE
def mapping(prot):
    return libc.mmap(None, 16384, prot, mmap.MAP_PRIVATE, fd, 0)
plain = mapping(PR)
copied = mapping(PRW)
writable = mapping(PRW)
for addr in (plain, copied, writable):
    ctypes.string_at(addr, 16384)  # resident
ctypes.memmove(copied, b"relocated", 9)
libc.mprotect(copied, 16384, PR)
ctypes.memmove(writable, b"state", 5)
def rss(addr):
    lines = open("/proc/self/smaps").read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(format(addr, "x") + "-"):
            return next(int(l.split()[1]) for l in lines[i + 1:] if l.startswith("Rss:"))
before = [rss(a) for a in (plain, copied, writable)]
advised = drop_file_pages()
after = [rss(a) for a in (plain, copied, writable)]
data = bytes(range(256)) * 64
same = [
    ctypes.string_at(plain, 16384) == data,
    ctypes.string_at(copied, 16384) == b"relocated" + data[9:],
    ctypes.string_at(writable, 16384) == b"state" + data[5:],
]
print(advised > 0, before, after, same)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_only_the_plain_file_mapping_is_unmapped_and_every_byte_stays(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "file")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True [16, 16, 16] [0, 16, 16] [True, True, True]", out.stderr


def test_nothing_is_dropped_while_another_thread_runs() -> None:
    import threading

    from ftpsd.pages import drop_file_pages

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert drop_file_pages() == 0
    finally:
        stop.set()
        thread.join()
