"""The rotation's per-host state machine and its record (plugins/module_utils/ftps_rotation.py):
every way a rotation can end, every error kept in order, the run's result, and the filters'
errors for input that is not a rotation."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.filter.ftps_rotation import (
    ftps_rotation_problems,
    ftps_rotation_record,
    ftps_rotation_result,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_rotation import (
    RECORD_VERSION,
    RotationError,
    build_record,
    host_problems,
    host_result,
)


def ok(step: str, **extra) -> dict:
    return {"step": step, "ok": True, **extra}


def bad(step: str, error: str = "boom", **extra) -> dict:
    return {"step": step, "ok": False, "error": error, **extra}


ISSUED = [ok("issue"), ok("reload"), ok("gate")]
BACK_OK = [ok("rollback_files", changed=True), ok("restore_daemon"), ok("gate_previous")]


@pytest.mark.parametrize(
    ("steps", "result"),
    [
        pytest.param(ISSUED, "rotated", id="every forward step passed"),
        pytest.param(
            [ok("issue"), ok("reload"), bad("gate"), *BACK_OK], "rolled_back", id="gate failed, back"
        ),
        # the daemon was killed during its reload: files back, daemon started, gate on the old one
        pytest.param(
            [
                ok("issue"),
                bad("reload", "not active"),
                ok("rollback_files", changed=True),
                ok("restore_daemon", detail="started (it was down)"),
                ok("gate_previous"),
            ],
            "rolled_back",
            id="reload failed, daemon started again",
        ),
        pytest.param(
            [
                bad("issue", "CA refused"),
                ok("rollback_files", changed=False),
                ok("restore_daemon"),
                ok("gate_previous"),
            ],
            "failed",
            id="nothing installed, still serving the previous certificate",
        ),
        # the role failed after installing: the rollback found something to undo
        pytest.param(
            [bad("issue"), ok("rollback_files", changed=True), ok("restore_daemon"), ok("gate_previous")],
            "rolled_back",
            id="issue failed half-way, undone",
        ),
        pytest.param(
            [
                ok("issue"),
                bad("reload"),
                ok("rollback_files", changed=True),
                bad("restore_daemon"),
                ok("gate_previous"),
            ],
            "failed_rollback",
            id="daemon could not be brought back",
        ),
        pytest.param(
            [
                ok("issue"),
                ok("reload"),
                bad("gate"),
                ok("rollback_files", changed=True),
                ok("restore_daemon"),
                bad("gate_previous"),
            ],
            "failed_rollback",
            id="previous certificate not served either",
        ),
        pytest.param(
            [
                ok("issue"),
                ok("reload"),
                bad("gate"),
                bad("rollback_files"),
                ok("restore_daemon"),
                ok("gate_previous"),
            ],
            "failed_rollback",
            id="files could not be rolled back",
        ),
        pytest.param([ok("issue"), bad("reload")], "failed_rollback", id="the way back never ran"),
        pytest.param([ok("issue"), ok("reload")], "failed_rollback", id="forward steps missing"),
        pytest.param([], "failed_rollback", id="nothing happened is not a success"),
        pytest.param(
            [
                ok("issue"),
                bad("reload", unreachable=True),
                bad("rollback_files", unreachable=True),
                bad("restore_daemon", unreachable=True),
                bad("gate_previous"),
            ],
            "unreachable",
            id="server stopped answering",
        ),
    ],
)
def test_host_result(steps: list, result: str) -> None:
    assert host_result(steps) == result
    assert ftps_rotation_result(steps) == result


def test_check_mode_would_rotate() -> None:
    assert host_result([], check_mode=True) == "would_rotate"


def test_every_error_is_kept_in_order() -> None:
    steps = [
        ok("issue"),
        bad("reload", "ftpsd.service is not active, cannot reload"),
        ok("rollback_files", changed=True),
        bad("restore_daemon", "Unable to start service ftpsd"),
        bad("gate_previous", "ftp1:21 (AUTH TLS): connect: refused"),
    ]
    assert host_problems(steps) == [
        "reload: ftpsd.service is not active, cannot reload",
        "restore_daemon: Unable to start service ftpsd",
        "gate_previous: ftp1:21 (AUTH TLS): connect: refused",
    ]
    assert host_problems([bad("reload", "", unreachable=True)]) == ["reload: unreachable"]
    assert ftps_rotation_problems(ISSUED) == []


@pytest.mark.parametrize(
    "steps",
    [None, "issue", [{"step": "reboot", "ok": True}], [{"ok": True}], ["issue"]],
)
def test_steps_that_are_not_a_rotation_are_refused(steps) -> None:
    with pytest.raises(RotationError):
        host_result(steps)
    with pytest.raises(AnsibleFilterError, match="ftps_rotation_result"):
        ftps_rotation_result(steps)


RUN = {
    "id": "20261206T170000Z-1",
    "started_at": "2026-12-06T17:00:00Z",
    "expiring_within_days": "",
    "serial": 1,
    "prober": "client1",
    "record_dir": "/x",
    "servers": ["ftp1", "ftp2", "ftp3", "ftp4"],
}
OLD = {
    "fingerprint_sha256": "AA",
    "spki_sha256": "a=",
    "not_after": "2027-01-01T00:00:00Z",
    "serial": "1",
    "sans": ["DNS:ftp1"],
}
NEW = {"fingerprint_sha256": "BB", "spki_sha256": "b=", "not_after": "2027-03-01T00:00:00Z", "serial": "2"}


def host(name: str, steps: list, served: list | None = None, new: dict | None = None) -> dict:
    return {
        "host": name,
        "started_at": "2026-12-06T17:00:05Z",
        "duration_seconds": "12.5",
        "old": OLD,
        "new": NEW if new is None else new,
        "served": served or [],
        "steps": steps,
    }


def record(hosts: list, selected: list, **kwargs) -> dict:
    args = {
        "servers": RUN["servers"],
        "selected": selected,
        "skipped": [],
        "unusable": {},
        "hosts": hosts,
        "updated_at": "2026-12-06T17:01:00Z",
    }
    args.update(kwargs)
    return build_record(RUN, **args)


def test_record_of_a_complete_run_with_an_unusable_server() -> None:
    rec = record(
        [host("ftp1", ISSUED, ["BB"]), host("ftp2", ISSUED, ["BB"])],
        ["ftp1", "ftp2"],
        skipped=["ftp3"],
        unusable={"ftp4": "the deployed certificate /p/cert.pem is damaged"},
    )
    assert rec["version"] == RECORD_VERSION
    assert rec["result"] == "complete"
    assert rec["unusable"] == {"ftp4": "the deployed certificate /p/cert.pem is damaged"}
    assert rec["skipped"] == ["ftp3"] and rec["not_reached"] == []
    assert rec["servers"] == ["ftp1", "ftp2", "ftp3", "ftp4"]
    first = rec["hosts"][0]
    assert first == {
        "host": "ftp1",
        "result": "rotated",
        "started_at": "2026-12-06T17:00:05Z",
        "duration_seconds": 12.5,
        # only these four facts of each certificate
        "old": {
            "fingerprint_sha256": "AA",
            "spki_sha256": "a=",
            "not_after": "2027-01-01T00:00:00Z",
            "serial": "1",
        },
        "new": {
            "fingerprint_sha256": "BB",
            "spki_sha256": "b=",
            "not_after": "2027-03-01T00:00:00Z",
            "serial": "2",
        },
        "served": ["BB"],
        "steps": ISSUED,
        "problems": [],
    }
    assert rec["id"] == RUN["id"] and rec["prober"] == "client1"
    assert "record_dir" not in rec


def test_record_of_a_stopped_run_names_every_host_and_error() -> None:
    killed = [
        ok("issue"),
        bad("reload", "not active, cannot reload"),
        ok("rollback_files", changed=True),
        ok("restore_daemon", detail="started (it was down)"),
        ok("gate_previous"),
    ]
    rec = record([host("ftp2", killed, ["AA"]), host("ftp1", ISSUED, ["BB"])], ["ftp1", "ftp2", "ftp3"])
    assert rec["result"] == "stopped"
    # in the selection's (inventory) order, whatever order the hosts finished in
    assert [(h["host"], h["result"]) for h in rec["hosts"]] == [("ftp1", "rotated"), ("ftp2", "rolled_back")]
    assert rec["hosts"][1]["problems"] == ["reload: not active, cannot reload"]
    assert rec["not_reached"] == ["ftp3"]


def test_record_between_batches_and_at_the_end() -> None:
    assert record([host("ftp1", ISSUED)], ["ftp1", "ftp2"])["result"] == "running"
    # the rotation play is over but a selected server never got its turn (it vanished)
    assert record([host("ftp1", ISSUED)], ["ftp1", "ftp2"], finished=True)["result"] == "stopped"
    assert record([], [], finished=True)["result"] == "complete"


def test_a_host_that_was_not_selected_is_refused() -> None:
    with pytest.raises(RotationError, match="not selected"):
        record([host("ftp9", ISSUED)], ["ftp1"])
    with pytest.raises(AnsibleFilterError, match="ftps_rotation_record"):
        ftps_rotation_record(
            RUN,
            servers=[],
            selected=[],
            skipped=[],
            unusable={},
            hosts=[host("ftp9", ISSUED)],
            updated_at="x",
        )
