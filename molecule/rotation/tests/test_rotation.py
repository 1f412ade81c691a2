"""What side_effect.yml's rotations left behind: the rotation records and the load's counts.

side_effect.yml already failed the scenario on the spot if a transfer failed or a server was in
the wrong state; these tests read the records back as a later run (or the report) would, and
check that the load really overlapped each server's own rotation window.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib

import pytest
from conftest import SERVERS, check_serves_own_names

HERE = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "rotation"


def _records() -> list[dict]:
    files = sorted((HERE / "records").glob("rotation-*.json"))
    return sorted((json.loads(f.read_text()) for f in files), key=lambda r: r["started_at"])


def _epoch(stamp: str) -> float:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def test_one_record_per_run_that_rotated() -> None:
    records = _records()
    assert len(records) == 2, [r["id"] for r in records]
    complete, stopped = records
    assert complete["result"] == "complete" and complete["not_reached"] == []
    assert [h["host"] for h in complete["hosts"]] == SERVERS
    for entry in complete["hosts"]:
        assert entry["result"] == "rotated", entry
        assert entry["old"]["fingerprint_sha256"] != entry["new"]["fingerprint_sha256"]
        assert entry["old"]["spki_sha256"] != entry["new"]["spki_sha256"]
        assert entry["served"] == [entry["new"]["fingerprint_sha256"]]
        assert entry["new"]["not_after"] and entry["duration_seconds"] > 0
    assert stopped["result"] == "stopped"
    assert [(h["host"], h["result"]) for h in stopped["hosts"]] == [
        (SERVERS[0], "rotated"),
        (SERVERS[1], "rolled_back"),
    ]
    assert stopped["not_reached"] == [SERVERS[2]]
    bad = stopped["hosts"][1]
    assert any("hostname_mismatch" in p for p in bad["problems"]), bad["problems"]
    # after the rollback the gate saw the old certificate served again
    assert bad["served"] == [bad["old"]["fingerprint_sha256"]]


@pytest.mark.parametrize("name", SERVERS)
def test_transfers_never_failed_and_ran_during_each_rotation(name: str) -> None:
    load = json.loads((HERE / "load-1.json").read_text())
    assert load["failed"] == 0, load["errors"]
    entry = next(h for h in _records()[0]["hosts"] if h["host"] == name)
    start = _epoch(entry["started_at"])
    end = start + entry["duration_seconds"] + 1
    during = [e for e in load["events"] if e["server"] == name and e["start"] < end and e["end"] > start]
    kinds = {e["kind"] for e in during}
    assert kinds == {"session", "long"}, f"{name}: transfers during its rotation: {len(during)} ({kinds})"
    modes = {e["mode"] for e in during if e["kind"] == "session"}
    assert modes == {"explicit", "implicit"}, modes


def test_every_session_was_pinned_and_no_pin_failed() -> None:
    """The load checked each session's certificate against the client's pin file (current + next)."""
    load = json.loads((HERE / "load-1.json").read_text())
    assert load["pin_failures"] == 0, load["errors"]
    sessions = sum(1 for e in load["events"] if e["kind"] == "session")
    # every new session is checked; the long sessions once per (re)connection
    assert load["pins_checked"] >= sessions > 0, (load["pins_checked"], sessions)


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_serves_exactly_its_own_names(client, name: str) -> None:
    """Issue 20: a rotated certificate carried another server's name and address. Read with
    openssl s_client from the client, on both listeners, against the server's own reading."""
    check_serves_own_names(client, name)


def test_site_after_rotate_changed_nothing() -> None:
    log = (HERE / "site-after-rotate.log").read_text()
    recap = log[log.index("PLAY RECAP") :]
    assert recap.count("changed=0") == len(SERVERS) + 1 and "failed=0" in recap, recap
