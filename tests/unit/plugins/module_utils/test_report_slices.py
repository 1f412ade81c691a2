"""One fleet report across slices (issue 21 point 5): report.yml's rows in the kit's store
(plugins/module_utils/ftps_report_rows.py) and the fleet report built from them
(ftps_report.merge_stored)."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report import (
    finish,
    merge_stored,
    render_html,
    render_table,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report_rows import (
    RowsError,
    read_rows,
    write_rows,
)

NOW = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def row(host: str, days: int = 60, status: str = "ok", now: dt.datetime = NOW) -> dict:
    return {
        "host": host,
        "status": status,
        "flagged": status != "ok",
        "problems": [] if status == "ok" else ["in memory x differs from deployed (reload pending?)"],
        "days_left": days,
        "not_after": (now + dt.timedelta(days=days, hours=1)).strftime(STAMP),
        "address": "",
        "subject": f"CN={host}",
        "sans": [f"DNS:{host}"],
        "issuer": "CN=ca",
        "key_type": "EC P-256",
        "fingerprint_deployed": "ab" * 32,
        "fingerprint_memory": None,
        "wire": [],
    }


def stored(host: str, hours_ago: float, **kw) -> dict:
    when = NOW - dt.timedelta(hours=hours_ago)
    return {"host": host, "observed": when.strftime(STAMP), "row": row(host, now=when, **kw)}


def test_rows_round_trip_one_file_per_host(tmp_path) -> None:
    write_rows(str(tmp_path), [row("srv1"), row("srv2")], "2026-12-06T19:00:00Z")
    write_rows(str(tmp_path), [row("srv2", days=10)], "2026-12-06T20:00:00Z")  # a later slice
    rows, unreadable = read_rows(str(tmp_path))
    assert unreadable == []
    assert [(r["host"], r["observed"], r["row"]["days_left"]) for r in rows] == [
        ("srv1", "2026-12-06T19:00:00Z", 60),
        ("srv2", "2026-12-06T20:00:00Z", 10),  # newest per host: the file was replaced
    ]
    assert sorted(os.listdir(tmp_path / "rows")) == ["srv1.json", "srv2.json"]  # no temp file left


@pytest.mark.parametrize("host", ["../etc/passwd", ".hidden", "a/b", ""])
def test_a_host_name_that_is_no_file_name_is_refused_before_any_write(tmp_path, host: str) -> None:
    with pytest.raises(RowsError, match="not usable as a file name"):
        write_rows(str(tmp_path), [row("srv1"), row(host)], "2026-12-06T19:00:00Z")
    assert not (tmp_path / "rows").exists()


def test_an_unreadable_row_is_reported_and_skipped(tmp_path) -> None:
    write_rows(str(tmp_path), [row("srv1")], "2026-12-06T19:00:00Z")
    (tmp_path / "rows" / "srv2.json").write_text("{not json")
    (tmp_path / "rows" / "srv3.json").write_text(json.dumps({"host": "other", "row": {}}))
    rows, unreadable = read_rows(str(tmp_path))
    assert [r["host"] for r in rows] == ["srv1"]
    assert len(unreadable) == 2 and "srv2.json" in unreadable[0] and "srv3.json" in unreadable[1]


def test_no_store_yet(tmp_path) -> None:
    assert read_rows(str(tmp_path / "none")) == ([], [])


def test_an_unsliced_run_is_its_own_report() -> None:
    report = finish([row("srv1"), row("srv2")], 30, NOW)
    store = [stored("srv1", 0), stored("srv2", 0)]  # its own rows, just written
    assert merge_stored(report, store, ["srv1", "srv2"], sliced=False, now=NOW) is report


def test_two_slices_make_one_report_with_the_older_row_aged() -> None:
    # slice 1 read srv1 three hours ago; slice 2 (this run) reads srv2
    report = finish([row("srv2", days=50)], 30, NOW)
    store = [stored("srv1", 3, days=31), stored("srv2", 0, days=50)]
    merged = merge_stored(report, store, ["srv2"], sliced=True, now=NOW)
    assert [r["host"] for r in merged["hosts"]] == ["srv1", "srv2"]  # by days left
    srv1, srv2 = merged["hosts"]
    assert srv2 == report["hosts"][0]  # this run's row as it is
    assert srv1["observed"] == (NOW - dt.timedelta(hours=3)).strftime(STAMP)
    assert srv1["age_seconds"] == 3 * 3600
    # counted again: 31 days 1 h after the observation is 30 days 22 h from now
    assert srv1["days_left"] == 30
    assert merged["generated"] == report["generated"]
    assert merged["dropped"] == []
    table = render_table(merged)
    assert "srv1: row of an earlier run, 3 h old (2026-12-06T17:00:00Z)" in table
    assert "2 server(s), 0 flagged" in table
    assert "row of an earlier run, 3 h old" in render_html(merged)


def test_a_stored_row_that_crossed_the_threshold_is_flagged() -> None:
    report = finish([row("srv2")], 30, NOW)
    merged = merge_stored(report, [stored("srv1", 72, days=31)], ["srv1", "srv2"], sliced=False, now=NOW)
    srv1 = next(r for r in merged["hosts"] if r["host"] == "srv1")
    assert (srv1["days_left"], srv1["status"], srv1["flagged"]) == (28, "expiring", True)
    assert srv1["problems"] == ["expires in 28 days (threshold 30 days)"]
    assert merged["flagged"] == ["srv1"]


def test_rows_of_servers_gone_from_the_inventory_are_dropped_unless_sliced() -> None:
    report = finish([row("srv2")], 30, NOW)
    store = [stored("gone", 24), stored("srv2", 0)]
    merged = merge_stored(report, store, ["srv2"], sliced=False, now=NOW)
    assert [r["host"] for r in merged["hosts"]] == ["srv2"]
    assert merged["dropped"] == ["gone"]
    assert "not in the inventory any more, dropped: gone" in render_table(merged)
    # a slice's inventory is only part of the fleet: the row is kept, with its age
    sliced = merge_stored(report, store, ["srv2"], sliced=True, now=NOW)
    assert sorted(r["host"] for r in sliced["hosts"]) == ["gone", "srv2"]
    assert sliced["dropped"] == []
