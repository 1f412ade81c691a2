"""Connection counts, failed-login counters and bans shared by every worker process.

The table lives in an anonymous shared ``mmap`` created before ``fork()``, guarded by a POSIX
record lock, so ``max_connections``, ``max_connections_per_ip`` and bans hold for the whole
daemon, not per worker. A record lock is released by the kernel when its holder dies, so a worker
killed inside a critical section cannot wedge the others (a semaphore would stay taken).

Layout: a header (per worker: control sessions, logged-in sessions) and ``SLOTS`` fixed-size
slots addressed by a hash of the client address (or ``user:<name>``) with a bounded probe window.
Session counts are kept **per worker** (one column each): a worker counts only in its own column
(:meth:`SharedLimits.bind_worker`), so when a worker dies the supervisor zeroes exactly that
column (:meth:`SharedLimits.release_worker`) and nothing else; no recount race with survivors.
Failed-login counters and bans are daemon-wide.

A slot whose key has no session, no failures in the window and no ban is free for reuse. If every
slot in an address's window is busy (an attacker with thousands of addresses), that address is
tracked in no slot: it is still counted in the total, but has no per-IP limit or ban - the limits
fail open rather than lock everyone out.

Login attempts are reserved before the password is checked (:meth:`SharedLimits.begin_attempt`
counts it as a failure up front, :meth:`SharedLimits.finish_attempt` gives it back on success):
however many sessions or workers an address spreads its attempts over, at most
``ban_after_failures`` passwords are tried per ban window.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import mmap
import struct
import tempfile
import time

SLOTS = 8192
PROBE = 64
_HEADER = struct.Struct("=qq")  # per worker: control sessions, logged-in sessions
_SLOT_HEAD = struct.Struct("=16sBxxxidd")  # key, kind, failures, first failure, banned until
_EMPTY = b"\0" * 16
_IP, _USER = 1, 2


def _key(ip: str) -> bytes:
    try:
        return ipaddress.ip_address(ip).packed.rjust(16, b"\0")
    except ValueError:
        return hashlib.sha256(ip.encode()).digest()[:16]


def _user_key(name: str) -> bytes:
    return hashlib.sha256(("user:" + name).encode()).digest()[:16]


class _FileLock:
    """A POSIX record lock on an unlinked temporary file, inherited by fork().

    Record locks belong to a process, so they exclude the other workers; within one worker only
    the IO loop thread touches the limits. The kernel drops the lock of a process that dies.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the daemon

    def __enter__(self) -> None:
        fcntl.lockf(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self._file, fcntl.LOCK_UN)


class SharedLimits:
    """Process-shared counters; create before forking ``workers`` workers."""

    def __init__(self, slots: int = SLOTS, workers: int = 1) -> None:
        self.slots = slots
        self.workers = max(1, workers)
        self.worker = 0  # the column this process counts in (bind_worker after fork)
        self._cols = struct.Struct(f"={self.workers}i")
        self._slot_size = _SLOT_HEAD.size + self._cols.size
        self._base = _HEADER.size * self.workers
        self._map = mmap.mmap(-1, self._base + slots * self._slot_size)
        self._lock = _FileLock()

    def bind_worker(self, index: int) -> None:
        """Count this process's sessions in column ``index`` (0 <= index < workers)."""
        if not 0 <= index < self.workers:
            raise ValueError(f"worker index {index} out of range 0..{self.workers - 1}")
        self.worker = index

    # -- slot access (call with the lock held) -------------------------------------------
    def _offset(self, index: int) -> int:
        return self._base + index * self._slot_size

    def _read(self, index: int) -> tuple[list, list]:
        off = self._offset(index)
        return list(_SLOT_HEAD.unpack_from(self._map, off)), list(
            self._cols.unpack_from(self._map, off + _SLOT_HEAD.size)
        )

    def _write(self, index: int, head: list, cols: list | None = None) -> None:
        off = self._offset(index)
        _SLOT_HEAD.pack_into(self._map, off, *head)
        if cols is not None:
            self._cols.pack_into(self._map, off + _SLOT_HEAD.size, *cols)

    def _find(self, key: bytes, kind: int, now: float, window: float, create: bool) -> int | None:
        start = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % self.slots
        free = None
        for step in range(min(PROBE, self.slots)):
            index = (start + step) % self.slots
            (addr, slot_kind, failures, first, until), cols = self._read(index)
            if addr == key and slot_kind == kind:
                return index
            idle = not any(cols) and until <= now and (failures == 0 or first < now - window)
            if free is None and (addr == _EMPTY or idle):
                free = index
        if create and free is not None:
            self._write(free, [key, kind, 0, 0.0, 0.0], [0] * self.workers)
            return free
        return None

    def _header(self, worker: int) -> list:
        return list(_HEADER.unpack_from(self._map, worker * _HEADER.size))

    def _add_header(self, field: int, delta: int) -> None:
        head = self._header(self.worker)
        head[field] = max(0, head[field] + delta)
        _HEADER.pack_into(self._map, self.worker * _HEADER.size, *head)

    def _add_slot(self, index: int, delta: int) -> None:
        head, cols = self._read(index)
        cols[self.worker] = max(0, cols[self.worker] + delta)
        self._write(index, head, cols)

    def _total(self) -> int:
        return sum(self._header(w)[0] for w in range(self.workers))

    # -- sessions ------------------------------------------------------------------------
    def connect(self, ip: str, max_total: int, max_per_ip: int, window: float) -> str | None:
        """Count a new control session; returns None, or why it is refused ("total"/"per_ip")."""
        key, now = _key(ip), time.time()
        with self._lock:
            if max_total and self._total() >= max_total:
                return "total"
            index = self._find(key, _IP, now, window, create=True)
            if index is not None:
                if max_per_ip and sum(self._read(index)[1]) >= max_per_ip:
                    return "per_ip"
                self._add_slot(index, +1)
            self._add_header(0, +1)
        return None

    def disconnect(self, ip: str, window: float) -> None:
        key, now = _key(ip), time.time()
        with self._lock:
            self._add_header(0, -1)
            index = self._find(key, _IP, now, window, create=False)
            if index is not None:
                self._add_slot(index, -1)

    def user_login(self, name: str, cap: int) -> bool:
        """Count a logged-in session of ``name``; False (not counted) if ``cap`` is reached."""
        key = _user_key(name)
        with self._lock:
            index = self._find(key, _USER, time.time(), 0.0, create=True)
            if index is not None:
                if cap and sum(self._read(index)[1]) >= cap:
                    return False
                self._add_slot(index, +1)
            self._add_header(1, +1)
            return True

    def user_logout(self, name: str) -> None:
        key = _user_key(name)
        with self._lock:
            self._add_header(1, -1)
            index = self._find(key, _USER, time.time(), 0.0, create=False)
            if index is not None:
                self._add_slot(index, -1)

    def release_worker(self, worker: int) -> None:
        """Zero every count of ``worker`` (it died: its sessions are gone). Other columns,
        failure counters and bans are untouched."""
        with self._lock:
            _HEADER.pack_into(self._map, worker * _HEADER.size, 0, 0)
            for index in range(self.slots):
                head, cols = self._read(index)
                if cols[worker]:
                    cols[worker] = 0
                    self._write(index, head, cols)

    def sessions(self, ip: str | None = None) -> int:
        with self._lock:
            if ip is None:
                return self._total()
            index = self._find(_key(ip), _IP, time.time(), 0.0, create=False)
            return sum(self._read(index)[1]) if index is not None else 0

    def header(self, worker: int) -> tuple[int, int]:
        """(control sessions, logged-in sessions) counted by ``worker``; cheap."""
        with self._lock:
            sessions, logins = self._header(worker)
        return sessions, logins

    def counts(self, worker: int) -> dict[str, int]:
        """What ``worker`` holds: its header counts and the sums of its per-address and per-user
        slot counts (all four are 0 once every session of that worker has ended)."""
        per_ip = per_user = 0
        with self._lock:
            sessions, logins = self._header(worker)
            for index in range(self.slots):
                off = self._offset(index) + _SLOT_HEAD.size + 4 * worker
                count = struct.unpack_from("=i", self._map, off)[0]
                if count:
                    kind = self._map[self._offset(index) + 16]
                    if kind == _IP:
                        per_ip += count
                    else:
                        per_user += count
        return {"sessions": sessions, "logins": logins, "per_ip": per_ip, "per_user": per_user}

    # -- failed logins and bans ----------------------------------------------------------
    def banned(self, ip: str, window: float) -> bool:
        key, now = _key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=False)
            return index is not None and self._read(index)[0][4] > now

    def begin_attempt(self, ip: str, threshold: int, window: float) -> bool:
        """Reserve one password attempt for ``ip``, counted as a failure until
        :meth:`finish_attempt` says otherwise. False: banned, or ``threshold`` attempts already
        failed or in flight within ``window`` (check no password then)."""
        key, now = _key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=bool(threshold))
            if index is None:
                return True  # untracked (table full) or no threshold: fail open
            head, cols = self._read(index)
            if head[4] > now:
                return False
            if not threshold:
                return True
            if head[2] == 0 or head[3] < now - window:
                head[2], head[3] = 0, now
            if head[2] >= threshold:
                return False
            head[2] += 1
            self._write(index, head, cols)
            return True

    def finish_attempt(self, ip: str, ok: bool, threshold: int, window: float) -> bool:
        """Settle an attempt reserved by :meth:`begin_attempt`; True when the address is banned
        now (this failure reached ``threshold``, or a ban is already running)."""
        key, now = _key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=False)
            if index is None:
                return False
            head, cols = self._read(index)
            if ok:
                head[2] = max(0, head[2] - 1)
            elif threshold and head[2] >= threshold and head[4] <= now:
                head[2], head[3], head[4] = 0, 0.0, now + window
            self._write(index, head, cols)
            return head[4] > now
