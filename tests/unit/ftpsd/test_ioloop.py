"""ftpsd.ioloop: deadlines that no other timer can starve (issue 22 row 2).

pyftpdlib's ``_CallLater.reset()`` moves a deadline inside the heap its scheduler only looks at
the top of, so one session that keeps resetting its idle timer held back every later deadline.
The randomized test drives :class:`DeadlineScheduler` with a simulated clock (so it is exact and
fast): thousands of timers, a random mix of chatty ones (reset more often than their delay),
silent ones, ones that go quiet part way, cancellations and periodic calls; every call must run
at the first poll at or after its current deadline and never before it, and the calls one poll
runs must run in the order of their deadlines.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from pyftpdlib import ioloop as pyftpdlib_ioloop

from ftpsd import ioloop as ftpsd_ioloop
from ftpsd.ioloop import DeadlineScheduler, FtpsdIOLoop

SEEDS = [int(os.environ["FTPSD_SCHED_SEED"])] if "FTPSD_SCHED_SEED" in os.environ else [1, 2, 3, 4, 5]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    # The scheduler and pyftpdlib's _CallLater (deadlines, reset) read the same clock.
    monkeypatch.setattr(ftpsd_ioloop, "timer", fake)
    monkeypatch.setattr(pyftpdlib_ioloop, "timer", fake)
    return fake


class Timer:
    """One session's timer and what the test expects of it."""

    def __init__(
        self, sched: DeadlineScheduler, delay: float, kind: str, quiet_at: float, every: bool
    ) -> None:
        self.delay = delay
        self.kind = kind  # "silent", "chatty", "quiets" (chatty until quiet_at), "cancel"
        self.quiet_at = quiet_at
        self.fired: list[float] = []
        self.log: list[float] | None = None  # the deadlines the current poll ran, in order
        cls = pyftpdlib_ioloop._CallEvery if every else pyftpdlib_ioloop._CallLater
        self.call = cls(delay, self.fire, _scheduler=sched)
        self.every = every
        self.clock: Clock | None = None
        self.cancelled_at: float | None = None  # when the test cancelled it

    def fire(self) -> None:
        assert self.clock is not None
        self.fired.append(self.clock.now)
        # The deadline was honoured: never early (the current deadline, after any reset).
        assert self.clock.now >= self.deadline - 1e-9, (self.kind, self.clock.now, self.deadline)
        if self.log is not None:
            self.log.append(self.deadline)
        self.deadline = self.clock.now + self.delay  # a periodic call's next one

    def chatty_now(self, now: float) -> bool:
        return self.kind == "chatty" or (self.kind == "quiets" and now < self.quiet_at)


def _turn(
    clock: Clock, sched: DeadlineScheduler, timers: list[Timer], rng: random.Random, step_max: float
) -> None:
    """One loop turn: the sessions act, time passes (at most ``step_max``), the scheduler polls."""
    for timer in timers:
        if timer.call.cancelled:
            continue
        if timer.cancel_at is not None and clock.now >= timer.cancel_at:
            timer.call.cancel()
            timer.cancelled_at = clock.now
            continue
        # A chatty session resets its timer at random moments, always before it is due.
        left = timer.deadline - clock.now
        if timer.chatty_now(clock.now) and (
            left <= step_max or (left < timer.delay / 2 and rng.random() < 0.5)
        ):
            timer.call.reset()
            timer.deadline = clock.now + timer.delay
    clock.now += rng.uniform(0.001, step_max * 0.99)
    ran: list[float] = []
    for timer in timers:
        timer.log = ran
    sched.poll()
    assert ran == sorted(ran), f"one poll ran its calls out of deadline order: {ran}"


@pytest.mark.parametrize("seed", SEEDS)
def test_no_deadline_is_starved_by_other_timers(clock: Clock, seed: int) -> None:
    rng = random.Random(seed)
    sched = DeadlineScheduler()
    timers: list[Timer] = []
    horizon = 60.0
    step_max = 0.25  # the loop's wake-ups come at most this far apart: the allowed lateness
    for _ in range(2000):
        kind = rng.choice(["silent", "chatty", "quiets", "cancel"])
        delay = rng.uniform(1.0, 20.0)
        timer = Timer(
            sched, delay, kind, quiet_at=clock.now + rng.uniform(0, horizon / 2), every=rng.random() < 0.2
        )
        timer.clock = clock
        timer.deadline = clock.now + delay
        timer.cancel_at = clock.now + rng.uniform(0, delay) if kind == "cancel" else None
        timers.append(timer)
        if rng.random() < 0.05:  # sessions open over time, not all at once
            _turn(clock, sched, timers, rng, step_max)
    end = clock.now + horizon
    late: list[tuple[str, float]] = []
    while clock.now < end:
        _turn(clock, sched, timers, rng, step_max)
        for timer in timers:
            if (
                not timer.call.cancelled
                and not timer.chatty_now(clock.now)
                and clock.now - timer.deadline > step_max
            ):
                late.append((timer.kind, clock.now - timer.deadline))
    assert not late, f"{len(late)} deadlines overdue by more than one loop turn, e.g. {late[:5]}"
    for timer in timers:
        if timer.kind == "chatty" and not timer.every:
            assert timer.fired == [], "a timer reset before its deadline ran anyway"
        if timer.kind in ("silent", "quiets") and not timer.every:
            assert len(timer.fired) == 1, (timer.kind, timer.fired)
        if timer.cancelled_at is not None:
            assert all(t <= timer.cancelled_at for t in timer.fired)  # nothing after cancel()


def test_a_reset_timer_runs_once_at_its_new_deadline(clock: Clock) -> None:
    sched = DeadlineScheduler()
    runs: list[float] = []
    call = pyftpdlib_ioloop._CallLater(10, lambda: runs.append(clock.now), _scheduler=sched)
    clock.now += 8
    call.reset()  # due at +18 now
    clock.now += 3
    assert sched.poll() == pytest.approx(7)  # the entry came due and was filed again, not run
    assert runs == []
    clock.now += 7
    sched.poll()
    assert runs == [clock.now]
    clock.now += 100
    sched.poll()
    assert len(runs) == 1


def test_calls_due_in_one_poll_run_earliest_deadline_first(clock: Clock) -> None:
    """A session's idle timer, filed long ago and reset by its last command, comes due in the
    same poll as the passive listener's deadline that fell before it: the listener's runs first
    (its 425 before the idle 421; the cause of test_row12's rare failure), whatever the keys."""
    sched = DeadlineScheduler()
    ran: list[str] = []
    idle = pyftpdlib_ioloop._CallLater(3, lambda: ran.append("idle"), _scheduler=sched)
    clock.now += 0.5
    listener = pyftpdlib_ioloop._CallLater(3, lambda: ran.append("listener"), _scheduler=sched)
    clock.now += 0.6
    idle.reset()  # the LIST after PASV: idle due at +4.1 now, still filed under +3
    assert idle.timeout > listener.timeout
    clock.now += 3.5  # one late wake-up, after both deadlines
    sched.poll()
    assert ran == ["listener", "idle"]
    # Equal deadlines keep the order they were filed in.
    ran.clear()
    first = pyftpdlib_ioloop._CallLater(2, lambda: ran.append("first"), _scheduler=sched)
    second = pyftpdlib_ioloop._CallLater(2, lambda: ran.append("second"), _scheduler=sched)
    assert first.timeout == second.timeout
    clock.now += 5
    sched.poll()
    assert ran == ["first", "second"]


def test_real_loop_fires_silent_timers_while_another_keeps_resetting() -> None:
    """The same on a real FtpsdIOLoop and the real clock (bounded: about a second)."""
    loop = FtpsdIOLoop()
    try:
        chatty = loop.call_later(0.3, lambda: pytest.fail("chatty timer fired"))
        fired: dict[int, float] = {}
        start = time.monotonic()
        for index in range(50):
            loop.call_later(0.1 + index * 0.01, lambda i=index: fired.__setitem__(i, time.monotonic()))
        while len(fired) < 50 and time.monotonic() - start < 5:
            chatty.reset()
            loop.sched.poll()
            time.sleep(0.005)
        chatty.cancel()
        assert len(fired) == 50
        for index, when in fired.items():
            assert when - start >= 0.1 + index * 0.01
    finally:
        loop.close()
