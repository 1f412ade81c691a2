"""Connection counts, failed-login counters, bans and passive ports shared by every worker.

The table lives in an anonymous shared ``mmap`` created before ``fork()``, guarded by a POSIX
record lock, so ``max_connections``, ``max_connections_per_ip``, bans and the per-user caps hold
for the whole daemon, not per worker. A record lock is released by the kernel when its holder
dies, so a worker killed inside a critical section cannot wedge the others (a semaphore would
stay taken).

Layout: a header (per worker: control sessions, logged-in sessions) and ``SLOTS`` fixed-size
slots. A slot holds one key: a client address group (an IPv4 address, or the IPv6 prefix of
``ipv6_prefix`` bits the address belongs to: one /64 is one client for caps and bans), a user's
logged-in sessions, or a user's open passive ports. Counts are kept **per worker** (one column
each): a worker counts only in its own column (:meth:`SharedLimits.bind_worker`), so when a
worker dies the supervisor zeroes exactly that column (:meth:`SharedLimits.release_worker`) and
nothing else; no recount race with survivors. Failed-login counters and bans are daemon-wide.

**The table cannot be steered, and it fails closed.** A key's slot window (``PROBE`` slots from
a start) is chosen by a hash keyed with a secret drawn when the daemon starts (shared by the
workers, which inherit it at fork), so nobody outside can choose addresses that land in another
address's window. A slot with sessions, passive ports, a password check in flight or a running
ban is never reused; one holding only failed-login counts (no ban yet) is the first given up,
the oldest first, when a window is full. A key that still finds no slot is *refused* (a new
session ``"untracked"``, a login, a passive port), never admitted without its caps and bans.

Login attempts: a password check in flight is *pending* (per worker column), not a failure;
only a check that ran and failed counts as a failure (:meth:`SharedLimits.finish_attempt`).
:meth:`SharedLimits.begin_attempt` admits a check only while failures + pending checks stay
below ``ban_after_failures``; otherwise the caller *waits* until pending checks settle (many
clients behind one NAT address logging in at once all get in), and a ban refuses. So an address
still gets at most ``ban_after_failures`` password checks per window, however many sessions or
workers it spreads them over.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import ipaddress
import mmap
import os
import struct
import tempfile
import time

SLOTS = 8192
PROBE = 64
IPV6_PREFIX = 64
_HEADER = struct.Struct("=qq")  # per worker: control sessions, logged-in sessions
_SLOT_HEAD = struct.Struct("=16sBxxxidd")  # key, kind, failures, first failure, banned until
_EMPTY = b"\0" * 16
_IP, _USER, _PASSIVE = 1, 2, 3
_COUNT, _PENDING = 0, 1  # per worker: the key's count, its password checks in flight
_HINTS = 4096  # user slots a process remembers (SharedLimits._user_slot); forgotten all at once


class Attempt(enum.Enum):
    """What :meth:`SharedLimits.begin_attempt` decided about one password check."""

    GO = "go"  # check the password now (reserved as pending: settle with finish_attempt)
    UNCOUNTED = "uncounted"  # check it; no threshold, so nothing is reserved or settled
    WAIT = "wait"  # checks in flight could still reach the threshold: ask again shortly
    REFUSED = "refused"  # banned, or the address cannot be tracked: check nothing


def address_key(ip: str, ipv6_prefix: int = IPV6_PREFIX) -> bytes:
    """The 16-byte key an address is counted under: an IPv4 address (also written IPv4-mapped,
    ``::ffff:a.b.c.d``) as itself, an IPv6 address as its ``/ipv6_prefix`` network."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return hashlib.sha256(ip.encode()).digest()[:16]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if isinstance(addr, ipaddress.IPv4Address):
        return b"\0" * 10 + b"\xff\xff" + addr.packed
    return ipaddress.ip_network((addr, ipv6_prefix), strict=False).network_address.packed


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

    def __init__(self, slots: int = SLOTS, workers: int = 1, ipv6_prefix: int = IPV6_PREFIX) -> None:
        if not 1 <= ipv6_prefix <= 128:
            raise ValueError(f"ipv6_prefix {ipv6_prefix} out of range 1..128")
        self.slots = slots
        self.workers = max(1, workers)
        self.ipv6_prefix = ipv6_prefix
        self.worker = 0  # the column this process counts in (bind_worker after fork)
        self._secret = os.urandom(32)  # keys the slot hash; inherited by the forked workers
        self._cols = struct.Struct(f"={2 * self.workers}i")  # per worker: count, pending
        self._slot_size = _SLOT_HEAD.size + self._cols.size
        self._base = _HEADER.size * self.workers
        self._map = mmap.mmap(-1, self._base + slots * self._slot_size)
        self._lock = _FileLock()
        self._hints: dict[tuple[int, str], tuple[bytes, int]] = {}  # (kind, user) -> (key, slot)

    def bind_worker(self, index: int) -> None:
        """Count this process's sessions in column ``index`` (0 <= index < workers)."""
        if not 0 <= index < self.workers:
            raise ValueError(f"worker index {index} out of range 0..{self.workers - 1}")
        self.worker = index

    def key(self, ip: str) -> bytes:
        """The key ``ip`` is counted and banned under (:func:`address_key`)."""
        return address_key(ip, self.ipv6_prefix)

    def start(self, key: bytes, kind: int) -> int:
        """The first slot of the window of ``key`` (a keyed hash: not predictable outside)."""
        digest = hashlib.blake2b(bytes([kind]) + key, key=self._secret, digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.slots

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
        """The slot of ``key``; with ``create``, a new one if there is none yet. None: not found,
        or (``create``) every slot of the window is held by sessions, checks in flight or bans."""
        start = self.start(key, kind)
        free = spare = None
        spare_first = 0.0
        for step in range(min(PROBE, self.slots)):
            index = (start + step) % self.slots
            (addr, slot_kind, failures, first, until), cols = self._read(index)
            if addr == key and slot_kind == kind:
                return index
            if free is not None or any(cols) or until > now:
                continue  # held: sessions, passive ports, checks in flight or a ban
            if addr == _EMPTY or failures == 0 or first < now - window:
                free = index
            elif spare is None or first < spare_first:
                spare, spare_first = index, first  # only failed-login counts: given up first
        index = free if free is not None else spare
        if create and index is not None:
            self._write(index, [key, kind, 0, 0.0, 0.0], [0] * (2 * self.workers))
            return index
        return None

    def _user_slot(self, name: str, kind: int, create: bool) -> int | None:
        """The slot of user ``name``'s ``kind`` (:meth:`_find`), found without hashing the name
        or scanning its window when this process found it before and the slot still holds that
        key and kind: a key has at most one slot (``_find`` creates one only when its whole
        window has none), so that slot is the one ``_find`` would return. A slot that has
        changed hands since is found again."""
        hint = self._hints.get((kind, name))
        if hint is not None:
            key, index = hint
            addr, slot_kind = _SLOT_HEAD.unpack_from(self._map, self._offset(index))[:2]
            if addr == key and slot_kind == kind:
                return index
        key = _user_key(name)
        index = self._find(key, kind, time.time(), 0.0, create=create)
        if index is not None:
            if len(self._hints) >= _HINTS:
                self._hints.clear()
            self._hints[kind, name] = (key, index)
        return index

    def _header(self, worker: int) -> list:
        return list(_HEADER.unpack_from(self._map, worker * _HEADER.size))

    def _add_header(self, field: int, delta: int) -> None:
        head = self._header(self.worker)
        head[field] = max(0, head[field] + delta)
        _HEADER.pack_into(self._map, self.worker * _HEADER.size, *head)

    def _add_slot(self, index: int, delta: int, what: int = _COUNT) -> None:
        head, cols = self._read(index)
        col = 2 * self.worker + what
        cols[col] = max(0, cols[col] + delta)
        self._write(index, head, cols)

    def _count(self, index: int) -> int:
        return sum(self._read(index)[1][_COUNT::2])

    def _total(self) -> int:
        return sum(self._header(w)[0] for w in range(self.workers))

    # -- sessions ------------------------------------------------------------------------
    def connect(self, ip: str, max_total: int, max_per_ip: int, window: float) -> str | None:
        """Count a new control session; returns None, or why it is refused: ``"total"``,
        ``"per_ip"``, or ``"untracked"`` (no slot for its address: refused, never let in
        without its per-address cap and ban)."""
        key, now = self.key(ip), time.time()
        with self._lock:
            if max_total and self._total() >= max_total:
                return "total"
            index = self._find(key, _IP, now, window, create=True)
            if index is None:
                return "untracked"
            if max_per_ip and self._count(index) >= max_per_ip:
                return "per_ip"
            self._add_slot(index, +1)
            self._add_header(0, +1)
        return None

    def disconnect(self, ip: str, window: float) -> None:
        key, now = self.key(ip), time.time()
        with self._lock:
            self._add_header(0, -1)
            index = self._find(key, _IP, now, window, create=False)
            if index is not None:
                self._add_slot(index, -1)

    def _take(self, name: str, kind: int, cap: int, header: int | None = None) -> bool:
        """Count one of ``name``'s ``kind`` (a login, a passive listener); False (not counted)
        if ``cap`` (0 = none) is reached or ``name`` cannot be tracked (fail closed)."""
        with self._lock:
            index = self._user_slot(name, kind, create=True)
            if index is None or (cap and self._count(index) >= cap):
                return False
            self._add_slot(index, +1)
            if header is not None:
                self._add_header(header, +1)
            return True

    def _give_back(self, name: str, kind: int, header: int | None = None) -> None:
        with self._lock:
            if header is not None:
                self._add_header(header, -1)
            index = self._user_slot(name, kind, create=False)
            if index is not None:
                self._add_slot(index, -1)

    def user_login(self, name: str, cap: int) -> bool:
        """Count a logged-in session of ``name``; False (not counted) if ``cap`` is reached or
        the user cannot be tracked."""
        return self._take(name, _USER, cap, header=1)

    def user_logout(self, name: str) -> None:
        self._give_back(name, _USER, header=1)

    # -- passive ports -------------------------------------------------------------------
    def passive_open(self, name: str, cap: int) -> bool:
        """Count an open passive listener of user ``name``; False (not counted) if ``cap``
        (0 = none) is reached or the user cannot be tracked."""
        return self._take(name, _PASSIVE, cap)

    def passive_close(self, name: str) -> None:
        self._give_back(name, _PASSIVE)

    def passive(self, name: str) -> int:
        """Passive listeners of ``name`` open now, daemon-wide."""
        with self._lock:
            index = self._user_slot(name, _PASSIVE, create=False)
            return self._count(index) if index is not None else 0

    def release_worker(self, worker: int) -> None:
        """Zero every count of ``worker`` (it died: its sessions, passive ports and checks in
        flight are gone). Other columns, failure counters and bans are untouched."""
        with self._lock:
            _HEADER.pack_into(self._map, worker * _HEADER.size, 0, 0)
            for index in range(self.slots):
                head, cols = self._read(index)
                if cols[2 * worker] or cols[2 * worker + 1]:
                    cols[2 * worker] = cols[2 * worker + 1] = 0
                    self._write(index, head, cols)

    def sessions(self, ip: str | None = None) -> int:
        with self._lock:
            if ip is None:
                return self._total()
            index = self._find(self.key(ip), _IP, time.time(), 0.0, create=False)
            return self._count(index) if index is not None else 0

    def header(self, worker: int) -> tuple[int, int]:
        """(control sessions, logged-in sessions) counted by ``worker``; cheap."""
        with self._lock:
            sessions, logins = self._header(worker)
        return sessions, logins

    def counts(self, worker: int) -> dict[str, int]:
        """What ``worker`` holds: its header counts and the sums of its per-address, per-user,
        passive-port and password-check slot counts (all 0 once every session of that worker
        has ended)."""
        sums = {_IP: 0, _USER: 0, _PASSIVE: 0}
        pending = 0
        with self._lock:  # one copy of the table under the lock (~0.1 ms), summed outside it
            sessions, logins = self._header(worker)
            table = self._map[self._base : self._base + self.slots * self._slot_size]
        # The worker's (count, pending) pair and the kind byte of every slot, as strided views
        # (slot and head sizes are multiples of 4): C loops, not 8,192 unpack calls (5-8 ms).
        ints = memoryview(table).cast("i")
        first, stride = (_SLOT_HEAD.size + 8 * worker) // 4, self._slot_size // 4
        counts, checks = ints[first::stride], ints[first + 1 :: stride]
        if any(counts) or any(checks):
            for kind, count, check in zip(table[16 :: self._slot_size], counts, checks, strict=True):
                if count or check:
                    sums[kind] += count
                    pending += check
        return {
            "sessions": sessions,
            "logins": logins,
            "per_ip": sums[_IP],
            "per_user": sums[_USER],
            "passive": sums[_PASSIVE],
            "pending": pending,
        }

    # -- failed logins and bans ----------------------------------------------------------
    def banned(self, ip: str, window: float) -> bool:
        key, now = self.key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=False)
            return index is not None and self._read(index)[0][4] > now

    def begin_attempt(self, ip: str, threshold: int, window: float) -> Attempt:
        """Reserve one password check for ``ip`` (pending until :meth:`finish_attempt`).

        ``REFUSED``: banned, or the address has no slot (fail closed). ``WAIT``: failures plus
        checks in flight already reach ``threshold``; ask again once they settle. ``GO``:
        reserved, settle it with :meth:`finish_attempt`. ``UNCOUNTED``: no ``threshold``
        (bans off): check, nothing to settle."""
        key, now = self.key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=bool(threshold))
            if index is None:
                return Attempt.REFUSED if threshold else Attempt.UNCOUNTED
            head, cols = self._read(index)
            if head[4] > now:
                return Attempt.REFUSED
            if not threshold:
                return Attempt.UNCOUNTED
            if head[2] and head[3] < now - window:
                head[2], head[3] = 0, 0.0  # those failures are out of the window
                self._write(index, head, cols)
            if head[2] >= threshold:
                return Attempt.REFUSED
            if head[2] + sum(cols[_PENDING::2]) >= threshold:
                return Attempt.WAIT
            self._add_slot(index, +1, _PENDING)
            return Attempt.GO

    def finish_attempt(self, ip: str, ok: bool, threshold: int, window: float) -> bool:
        """Settle a check reserved by :meth:`begin_attempt`: a wrong password (``ok`` False) is
        a failure, a right one is nothing. True when the address is banned now (this failure
        reached ``threshold``, or a ban is already running)."""
        key, now = self.key(ip), time.time()
        with self._lock:
            index = self._find(key, _IP, now, window, create=False)
            if index is None:
                return False
            self._add_slot(index, -1, _PENDING)
            head, cols = self._read(index)
            if not ok and threshold and head[4] <= now:
                if head[2] == 0 or head[3] < now - window:
                    head[2], head[3] = 0, now
                head[2] += 1
                if head[2] >= threshold:
                    head[2], head[3], head[4] = 0, 0.0, now + window
            self._write(index, head, cols)
            return head[4] > now
