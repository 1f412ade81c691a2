"""ftpsd.limits against chosen addresses (issue 22 row 6), IPv6 prefixes, checks in flight (row 7)
and passive ports per user. White-box where the attacker is assumed strongest: the tests find
colliding addresses with the table's own slot function (which a real attacker cannot compute,
the hash being keyed), and the invariant must hold even then: an address is counted, capped and
banned, or refused; never admitted untracked.

``_window_start`` also knows the pre-fix table's unkeyed hash, so these tests run against the old
``limits.py`` too (they fail there: the target is admitted past its cap, unbanned).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import random
import time

import pytest

from ftpsd import limits as limits_module
from ftpsd.limits import SharedLimits

CAP = 3
THRESHOLD = 2
WINDOW = 600.0


def _key(limits: SharedLimits, ip: str) -> bytes:
    if hasattr(limits, "key"):
        return limits.key(ip)
    return limits_module._key(ip)  # the pre-fix table


def _window_start(limits: SharedLimits, ip: str) -> int:
    key = _key(limits, ip)
    if hasattr(limits, "start"):
        return limits.start(key, 1)
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % limits.slots


def _colliders(limits: SharedLimits, target: str, count: int, rng: random.Random) -> list[str]:
    """``count`` IPv4 addresses whose window starts where the target's does (bounded search)."""
    want = _window_start(limits, target)
    found: list[str] = []
    for _ in range(400_000):
        ip = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        if ip != target and _window_start(limits, ip) == want:
            found.append(ip)
            if len(found) == count:
                return found
    raise AssertionError("bounded search found too few colliding addresses")


def _try_fail(limits: SharedLimits, ip: str) -> bool:
    """One wrong password if the table lets one be checked; True if it was checked."""
    verdict = limits.begin_attempt(ip, THRESHOLD, WINDOW)
    if verdict is True or getattr(verdict, "name", "") == "GO":
        limits.finish_attempt(ip, False, THRESHOLD, WINDOW)
        return True
    return False


def test_colliding_addresses_cannot_untrack_a_target() -> None:
    """Row 6: 64 held connections from addresses in the target's slot window left the target
    untracked: no ban after any number of wrong passwords, sessions past max_connections_per_ip."""
    limits = SharedLimits(slots=256)
    target = "198.51.100.7"
    for ip in _colliders(limits, target, limits_module.PROBE, random.Random(22)):
        assert limits.connect(ip, 0, CAP, WINDOW) is None
    admitted = sum(limits.connect(target, 0, CAP, WINDOW) is None for _ in range(CAP + 5))
    checked = sum(_try_fail(limits, target) for _ in range(THRESHOLD + 5))
    assert admitted <= CAP
    assert checked <= THRESHOLD


def test_randomized_table_never_admits_untracked() -> None:
    """Bounded randomized run (seeded, 3000 operations on a small table): colliding and random
    addresses connect, disconnect and fail logins; at every step each address holds at most CAP
    sessions, a banned address stays banned and gets no check, and a full table refuses.
    (Failed-login counts without a ban are the one thing a full window gives up, oldest first.)"""
    rng = random.Random(2222)
    limits = SharedLimits(slots=128)
    targets = ["198.51.100.7", "203.0.113.9"]
    pool = targets + _colliders(limits, targets[0], 70, rng) + [f"192.0.2.{i}" for i in range(120)]
    held: dict[str, int] = {}
    banned: set[str] = set()
    refused_untracked = 0
    for _ in range(3000):
        ip = rng.choice(pool)
        op = rng.random()
        if op < 0.55:
            result = limits.connect(ip, 0, CAP, WINDOW)
            if result is None:
                held[ip] = held.get(ip, 0) + 1
            refused_untracked += result == "untracked"
        elif op < 0.85 and held.get(ip):
            limits.disconnect(ip, WINDOW)
            held[ip] -= 1
        else:
            checked = _try_fail(limits, ip)
            assert not (checked and ip in banned), ip
        if limits.banned(ip, WINDOW):
            banned.add(ip)
        assert held.get(ip, 0) <= CAP, ip
        assert all(limits.banned(b, WINDOW) for b in banned)
        assert limits.sessions() == sum(held.values())
    assert refused_untracked > 0  # the table did fill up, and refused instead of admitting
    assert banned


def test_full_table_refuses_and_recovers() -> None:
    limits = SharedLimits(slots=4)
    for i in range(4):
        assert limits.connect(f"192.0.2.{i}", 0, 1, WINDOW) is None
    assert limits.connect("192.0.2.200", 0, 1, WINDOW) == "untracked"
    assert limits.sessions() == 4
    assert not limits.user_login("dave", 0)  # no slot: refused, not counted uncapped
    assert limits.begin_attempt("192.0.2.200", THRESHOLD, WINDOW).name == "REFUSED"
    limits.disconnect("192.0.2.0", WINDOW)
    assert limits.connect("192.0.2.200", 0, 1, WINDOW) is None


def test_failure_only_slots_are_given_up_for_new_addresses() -> None:
    """Failed-login counts alone (no ban, no session) never lock new addresses out."""
    limits = SharedLimits(slots=4)
    for i in range(4):
        assert _try_fail(limits, f"192.0.2.{i}")
    assert limits.connect("192.0.2.200", 0, 1, WINDOW) is None


def test_slot_hash_is_keyed_per_table() -> None:
    """Two tables (two daemon starts) place the same addresses differently."""
    one, two = SharedLimits(slots=8192), SharedLimits(slots=8192)
    ips = [f"10.0.{i // 256}.{i % 256}" for i in range(64)]
    assert [one.start(one.key(ip), 1) for ip in ips] != [two.start(two.key(ip), 1) for ip in ips]


@pytest.mark.parametrize(
    ("prefix", "neighbour", "grouped"),
    [
        (64, "2001:db8:1:2:ffff::9", True),
        (64, "2001:db8:1:3::1", False),
        (48, "2001:db8:1:ffff::9", True),
        (48, "2001:db8:2::1", False),
        (128, "2001:db8:1:2::2", False),
    ],
)
def test_ipv6_grouped_by_prefix_for_caps_and_bans(prefix: int, neighbour: str, grouped: bool) -> None:
    """One /64 (by default) is one client: another address of it shares the cap and the ban."""
    limits = SharedLimits(slots=128, ipv6_prefix=prefix)
    first = "2001:db8:1:2::1"
    for _ in range(CAP):
        assert limits.connect(first, 0, CAP, WINDOW) is None
    assert limits.connect(neighbour, 0, CAP, WINDOW) == ("per_ip" if grouped else None)
    for _ in range(THRESHOLD):
        _try_fail(limits, first)
    assert limits.banned(first, WINDOW)
    assert limits.banned(neighbour, WINDOW) is grouped


def test_ipv4_mapped_is_the_ipv4_address() -> None:
    limits = SharedLimits(slots=128)
    assert limits.connect("::ffff:192.0.2.1", 0, 1, WINDOW) is None
    assert limits.connect("192.0.2.1", 0, 1, WINDOW) == "per_ip"


def test_checks_in_flight_are_not_failures() -> None:
    """Row 7: 10 clients behind one NAT address log in at once, ban_after_failures = 5: the
    checks beyond 5 wait (they were refused with 421 as if failed); all succeed, none is banned."""
    limits = SharedLimits(slots=128)
    nat = "192.0.2.77"
    waiting = list(range(10))
    in_flight: list[int] = []
    done = 0
    for _ in range(100):  # bounded: each round settles what is in flight
        while waiting:
            verdict = limits.begin_attempt(nat, 5, WINDOW)
            if verdict.name != "GO":
                assert verdict.name == "WAIT"
                break
            in_flight.append(waiting.pop())
        if not in_flight:
            break
        in_flight.pop()
        assert not limits.finish_attempt(nat, True, 5, WINDOW)
        done += 1
    assert done == 10
    assert not limits.banned(nat, WINDOW)
    assert limits.counts(0)["pending"] == 0


def test_passive_ports_capped_per_user_across_workers() -> None:
    limits = SharedLimits(slots=128, workers=2)
    assert limits.passive_open("alice", 2)
    limits.bind_worker(1)
    assert limits.passive_open("alice", 2)
    assert not limits.passive_open("alice", 2)
    assert limits.passive_open("bob", 2)
    limits.release_worker(1)  # worker 1 died: its listeners are gone
    assert limits.passive("alice") == 1
    limits.bind_worker(0)
    limits.passive_close("alice")
    assert limits.passive("alice") == 0
    assert limits.counts(0)["passive"] == 0


def _process(limits: SharedLimits, worker: int) -> SharedLimits:
    """Another worker's view of ``limits``' shared table (as after fork): its own slot hints."""
    view = copy.copy(limits)
    view._hints = {}
    view.bind_worker(worker)
    return view


def test_remembered_user_slots_decide_exactly_as_a_fresh_search() -> None:
    """Each process remembers where a user's slot was (``_user_slot``): a seeded run of logins,
    logouts and passive listeners of 12 users over two workers on an 8-slot table (slots change
    hands, some users cannot be tracked) gives the same answers and leaves the same bytes as a
    twin table that searches every time."""
    rng = random.Random(23)
    limits = SharedLimits(slots=8, workers=2)
    twin = SharedLimits(slots=8, workers=2)
    twin._secret = limits._secret  # the same windows
    twin._user_slot = lambda name, kind, create: twin._find(  # type: ignore[method-assign]
        limits_module._user_key(name), kind, time.time(), 0.0, create
    )
    views = [limits, _process(limits, 1)]
    twins = [twin, _process(twin, 1)]
    twins[1]._user_slot = twin._user_slot  # type: ignore[method-assign]
    held: list[tuple[int, str, str]] = []  # (worker, op to undo, user)
    hits = 0
    for _ in range(3_000):
        worker, user = rng.randrange(2), f"u{rng.randrange(12)}"
        if held and rng.random() < 0.5:
            worker, undo, user = held.pop(rng.randrange(len(held)))
            getattr(views[worker], undo)(user)
            getattr(twins[worker], undo)(user)
        else:
            op, undo = rng.choice([("passive_open", "passive_close"), ("user_login", "user_logout")])
            kind = limits_module._PASSIVE if op == "passive_open" else limits_module._USER
            hits += (kind, user) in views[worker]._hints
            got = getattr(views[worker], op)(user, 3)
            assert got == getattr(twins[worker], op)(user, 3)
            if got:
                held.append((worker, undo, user))
        assert bytes(limits._map) == bytes(twin._map)
        assert limits.passive(user) == twin.passive(user)
    assert hits > 100  # the remembered path was taken, not only the search


def test_counts_sums_every_slot_of_its_worker_only() -> None:
    """``counts`` (strided views over one copy of the table) equals a slot-by-slot sum, per worker,
    with addresses, users, passive ports and checks in flight spread over the whole table."""
    rng = random.Random(23)
    limits = SharedLimits(slots=4096, workers=3)
    for worker in range(3):
        limits.bind_worker(worker)
        for n in range(rng.randrange(40, 80)):
            assert limits.connect(f"10.{worker}.{n // 250}.{n % 250}", 0, 0, WINDOW) is None
        for n in range(rng.randrange(10, 30)):
            assert limits.user_login(f"user{worker}-{n}", 0)
            assert limits.passive_open(f"user{worker}-{n}", 0)
        for n in range(rng.randrange(1, 5)):
            limits.begin_attempt(f"192.0.2.{n}", THRESHOLD, WINDOW)
    for worker in range(3):
        sums = {1: 0, 2: 0, 3: 0}
        pending = 0
        for index in range(limits.slots):
            head, cols = limits._read(index)
            count, checks = cols[2 * worker], cols[2 * worker + 1]
            if count or checks:
                sums[head[1]] += count
                pending += checks
        sessions, logins = limits.header(worker)
        assert limits.counts(worker) == {
            "sessions": sessions,
            "logins": logins,
            "per_ip": sums[1],
            "per_user": sums[2],
            "passive": sums[3],
            "pending": pending,
        }
        assert sums[1] > 0 and sums[2] > 0 and sums[3] > 0 and pending > 0
