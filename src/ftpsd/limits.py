"""Connection counts, failed-login counters and bans shared by every worker process.

The table lives in an anonymous shared ``mmap`` created before ``fork()``, guarded by one
``multiprocessing.Lock`` (a POSIX semaphore), so ``max_connections``, ``max_connections_per_ip``
and bans hold for the whole daemon, not per worker.

Layout: a header (total sessions) and ``SLOTS`` fixed-size slots addressed by a hash of the
client address with a bounded probe window. A slot whose address has no session, no failures in
the window and no ban is free for reuse. If every slot in an address's window is busy (an
attacker with thousands of addresses), that address is tracked in no slot: it is still counted
in the total, but has no per-IP limit or ban - the limits fail open rather than lock everyone out.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import mmap
import multiprocessing
import struct
import tempfile
import time

SLOTS = 8192
PROBE = 64
_HEADER = struct.Struct("=q")  # total control sessions
_SLOT = struct.Struct("=16siidd")  # address, sessions, failures, first failure, banned until
_EMPTY = b"\0" * 16


def _key(ip: str) -> bytes:
    try:
        return ipaddress.ip_address(ip).packed.rjust(16, b"\0")
    except ValueError:
        return hashlib.sha256(ip.encode()).digest()[:16]


class _FileLock:
    """Fallback lock: a POSIX record lock on an unlinked temporary file, inherited by fork().

    Record locks belong to a process, so they exclude the other workers; within one worker only
    the IO loop thread touches the limits.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the daemon

    def __enter__(self) -> None:
        fcntl.lockf(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self._file, fcntl.LOCK_UN)


class SharedLimits:
    """Process-shared counters; create before forking workers."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, _HEADER.size + slots * _SLOT.size)
        try:
            self._lock = multiprocessing.Lock()
        except OSError:  # no POSIX semaphores (e.g. /dev/shm unavailable in a sandbox)
            self._lock = _FileLock()

    # -- slot access (call with the lock held) -------------------------------------------
    def _offset(self, index: int) -> int:
        return _HEADER.size + index * _SLOT.size

    def _read(self, index: int) -> list:
        return list(_SLOT.unpack_from(self._map, self._offset(index)))

    def _write(self, index: int, slot: list) -> None:
        _SLOT.pack_into(self._map, self._offset(index), *slot)

    def _find(self, key: bytes, now: float, window: float, create: bool) -> int | None:
        start = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % self.slots
        free = None
        for step in range(min(PROBE, self.slots)):
            index = (start + step) % self.slots
            addr, sessions, failures, first, until = self._read(index)
            if addr == key:
                return index
            idle = sessions <= 0 and until <= now and (failures == 0 or first < now - window)
            if free is None and (addr == _EMPTY or idle):
                free = index
        if create and free is not None:
            self._write(free, [key, 0, 0, 0.0, 0.0])
            return free
        return None

    def _total(self) -> int:
        return _HEADER.unpack_from(self._map, 0)[0]

    # -- public API ----------------------------------------------------------------------
    def connect(self, ip: str, max_total: int, max_per_ip: int, window: float) -> str | None:
        """Count a new control session; returns None, or why it is refused ("total"/"per_ip")."""
        key, now = _key(ip), time.time()
        with self._lock:
            total = self._total()
            if max_total and total >= max_total:
                return "total"
            index = self._find(key, now, window, create=True)
            if index is not None:
                slot = self._read(index)
                if max_per_ip and slot[1] >= max_per_ip:
                    return "per_ip"
                slot[1] += 1
                self._write(index, slot)
            _HEADER.pack_into(self._map, 0, total + 1)
        return None

    def disconnect(self, ip: str, window: float) -> None:
        key, now = _key(ip), time.time()
        with self._lock:
            _HEADER.pack_into(self._map, 0, max(0, self._total() - 1))
            index = self._find(key, now, window, create=False)
            if index is not None:
                slot = self._read(index)
                slot[1] = max(0, slot[1] - 1)
                self._write(index, slot)

    def banned(self, ip: str, window: float) -> bool:
        key, now = _key(ip), time.time()
        with self._lock:
            index = self._find(key, now, window, create=False)
            return index is not None and self._read(index)[4] > now

    def record_failure(self, ip: str, threshold: int, window: float) -> bool:
        """Count a failed login; True when this failure bans the address for ``window`` seconds."""
        if not threshold:
            return False
        key, now = _key(ip), time.time()
        with self._lock:
            index = self._find(key, now, window, create=True)
            if index is None:
                return False
            slot = self._read(index)
            if slot[2] == 0 or slot[3] < now - window:
                slot[2], slot[3] = 0, now
            slot[2] += 1
            banned = slot[2] >= threshold
            if banned:
                slot[2], slot[3], slot[4] = 0, 0.0, now + window
            self._write(index, slot)
            return banned

    def user_login(self, name: str, cap: int) -> bool:
        """Count a logged-in session of ``name``; False (not counted) if ``cap`` is reached."""
        key = _key("user:" + name)
        with self._lock:
            index = self._find(key, time.time(), 0.0, create=True)
            if index is None:
                return True
            slot = self._read(index)
            if cap and slot[1] >= cap:
                return False
            slot[1] += 1
            self._write(index, slot)
            return True

    def user_logout(self, name: str) -> None:
        key = _key("user:" + name)
        with self._lock:
            index = self._find(key, time.time(), 0.0, create=False)
            if index is not None:
                slot = self._read(index)
                slot[1] = max(0, slot[1] - 1)
                self._write(index, slot)

    def reset_sessions(self) -> None:
        """Zero every session count (after a worker died; survivors then re-register theirs)."""
        with self._lock:
            _HEADER.pack_into(self._map, 0, 0)
            for index in range(self.slots):
                slot = self._read(index)
                if slot[1]:
                    slot[1] = 0
                    self._write(index, slot)

    def register(self, ip: str, user: str | None) -> None:
        """Re-count a session that already exists (no limit checks)."""
        key, now = _key(ip), time.time()
        with self._lock:
            _HEADER.pack_into(self._map, 0, self._total() + 1)
            for k in (key, _key("user:" + user) if user else None):
                if k is None:
                    continue
                index = self._find(k, now, 0.0, create=True)
                if index is not None:
                    slot = self._read(index)
                    slot[1] += 1
                    self._write(index, slot)

    def sessions(self, ip: str | None = None) -> int:
        with self._lock:
            if ip is None:
                return self._total()
            index = self._find(_key(ip), time.time(), 0.0, create=False)
            return self._read(index)[1] if index is not None else 0
