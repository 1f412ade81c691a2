"""probe_many (plugins/module_utils/ftps_probe_parallel.py): the proof's and the gate's parallel probing.

Bounded (never more than ``concurrency`` probes in flight, and that many really run together),
every target keeps its own result whatever the others do, results in the targets' order. The
probe is replaced by functions that synchronise on barriers and events (no timing assumptions).
"""

from __future__ import annotations

import threading

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_probe_parallel import (
    MAX_CONCURRENCY,
    probe_many,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.client import ProbeError

WAIT = 20  # seconds a synchronised fake waits before it gives up (a failure, never a pass)


def _targets(count: int) -> list[dict]:
    return [{"host": f"srv{i}", "port": 21, "implicit": False, "label": f"srv{i}:21"} for i in range(count)]


class InFlight:
    """Counts the probes running at once; each waits at a barrier of ``parties`` probes."""

    def __init__(self, parties: int) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.barrier = threading.Barrier(parties, timeout=WAIT)

    def __call__(self, **kwargs) -> dict:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            self.barrier.wait()  # breaks (an error result) unless `parties` probes run together
        finally:
            with self.lock:
                self.now -= 1
        return {"certificate": {"host": kwargs["host"]}}


@pytest.mark.parametrize(("concurrency", "count"), [(1, 3), (4, 12), (8, 8), (5, 20)])
def test_concurrency_is_reached_and_never_exceeded(concurrency: int, count: int) -> None:
    fake = InFlight(concurrency)
    results = probe_many(_targets(count), concurrency, probe_fn=fake)
    assert [r["ok"] for r in results] == [True] * count, results
    assert fake.most == concurrency


def test_fewer_targets_than_workers() -> None:
    fake = InFlight(3)
    results = probe_many(_targets(3), 50, probe_fn=fake)
    assert [r["certificate"]["host"] for r in results] == ["srv0", "srv1", "srv2"]


def test_results_keep_the_targets_order_when_they_finish_in_reverse() -> None:
    count = 6
    done = [threading.Event() for _ in range(count)]

    def reverse(**kwargs) -> dict:
        i = int(kwargs["host"][3:])
        if i + 1 < count:
            assert done[i + 1].wait(WAIT)  # finish only after the next target has finished
        done[i].set()
        return {"certificate": {"host": kwargs["host"]}}

    results = probe_many(_targets(count), count, probe_fn=reverse)
    assert [r["target"]["label"] for r in results] == [f"srv{i}:21" for i in range(count)]
    assert [r["certificate"]["host"] for r in results] == [f"srv{i}" for i in range(count)]


def test_a_failing_or_slow_target_hides_no_other_result() -> None:
    others_done = threading.Event()
    finished: list[str] = []
    lock = threading.Lock()

    def fake(**kwargs) -> dict:
        host = kwargs["host"]
        if host == "srv0":  # slow: still running when every other target has its result
            assert others_done.wait(WAIT)
            return {"certificate": {"host": host}}
        if host == "srv1":
            raise ProbeError(
                "pin_mismatch", "srv1:21 serves another certificate", {"certificate": {"host": host}}
            )
        if host == "srv2":
            raise RuntimeError("a bug in one probe")
        with lock:
            finished.append(host)
            if len(finished) == 3:
                others_done.set()
        return {"certificate": {"host": host}}

    results = probe_many(_targets(6), 6, probe_fn=fake)
    assert [r["ok"] for r in results] == [True, False, False, True, True, True]
    assert results[0]["certificate"] == {"host": "srv0"}
    # the ProbeError keeps what the probe learned before it failed, its kind and its sentence
    assert results[1] == {
        "target": _targets(6)[1],
        "ok": False,
        "certificate": {"host": "srv1"},
        "error_kind": "pin_mismatch",
        "msg": "srv1:21 serves another certificate",
    }
    assert results[2]["error_kind"] == "error"
    assert results[2]["msg"] == "RuntimeError: a bug in one probe"
    assert all("error_kind" not in r for i, r in enumerate(results) if i not in (1, 2))


def test_common_options_and_a_targets_own_round_trip() -> None:
    seen: dict[str, dict] = {}

    def fake(**kwargs) -> dict:
        seen[kwargs["host"]] = kwargs
        return {}

    targets = [
        {"host": "a", "port": 21, "implicit": False, "round_trip": True, "label": "a:21", "pin": {"x": 1}},
        {"host": "a", "port": 990, "implicit": True, "round_trip": None, "label": "a:990 (implicit)"},
    ]
    targets[1]["host"] = "b"
    probe_many(targets, 2, probe_fn=fake, round_trip=False, username="u", password="p", timeout=3)
    # label is not a probe argument; None means "the common value"
    assert seen["a"] == {"host": "a", "port": 21, "implicit": False, "round_trip": True, "pin": {"x": 1},
                         "username": "u", "password": "p", "timeout": 3}  # fmt: skip
    assert seen["b"] == {"host": "b", "port": 990, "implicit": True, "round_trip": False,
                         "username": "u", "password": "p", "timeout": 3}  # fmt: skip


@pytest.mark.parametrize("concurrency", [0, -1, MAX_CONCURRENCY + 1])
def test_concurrency_out_of_range_is_refused(concurrency: int) -> None:
    with pytest.raises(ValueError, match="concurrency must be from 1 to"):
        probe_many(_targets(1), concurrency, probe_fn=lambda **kw: {})


def test_no_targets() -> None:
    assert probe_many([], 4, probe_fn=lambda **kw: {}) == []
