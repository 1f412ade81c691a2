# Copyright: ftps-kit contributors
# MIT License
"""What a rotation did, per server and for the run (playbooks/rotate.yml, docs/rotation.md).

playbooks/rotate.yml appends one *step* per thing it did on a server, in order::

    {"step": "issue" | "reload" | "gate" | "rollback_files" | "restore_daemon" | "gate_previous",
     "ok": bool, "error": "...", "detail": "...", "unreachable": bool, "changed": bool}

:func:`host_result` turns a server's steps into its one result (the state machine below) and
:func:`host_problems` into every error, in order; :func:`build_record` makes the run's record,
the JSON file the playbook writes after every batch. Pure Python (standard library only): tested
without Ansible in tests/unit/plugins/module_utils/test_rotation_record.py.

Results, from the steps:

* ``rotated``: issue, reload and gate passed; nothing was rolled back.
* ``rolled_back``: a forward step failed; the files went back to the previous generation, the
  daemon was brought back (reloaded, or started when it was down) and the gate passed for the
  previous certificate.
* ``failed``: the issue step failed before anything was installed (the rollback found nothing to
  undo) and the gate passed for the previous certificate: the server is as it was.
* ``failed_rollback``: a forward step failed and the way back did not end in a passed gate for
  the previous certificate (a rollback step failed, or never ran): look at the server now.
* ``unreachable``: the server stopped answering during the rotation; what it serves is unknown
  until it answers again (a re-run, or report.yml, tells).
* ``would_rotate``: check mode.
"""

from __future__ import annotations

from typing import Any

FORWARD = ("issue", "reload", "gate")
BACK = ("rollback_files", "restore_daemon", "gate_previous")
STEPS = FORWARD + BACK

ROTATED, ROLLED_BACK, FAILED, FAILED_ROLLBACK, UNREACHABLE, WOULD_ROTATE = (
    "rotated",
    "rolled_back",
    "failed",
    "failed_rollback",
    "unreachable",
    "would_rotate",
)
HOST_RESULTS = (ROTATED, ROLLED_BACK, FAILED, FAILED_ROLLBACK, UNREACHABLE, WOULD_ROTATE)

RECORD_VERSION = 2


class RotationError(ValueError):
    """Steps or record inputs that do not describe a rotation."""


def _check_steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list):
        raise RotationError(f"steps must be a list, not {type(steps).__name__}")
    for step in steps:
        if not isinstance(step, dict) or step.get("step") not in STEPS:
            raise RotationError(f"not a rotation step: {step!r} (steps are {', '.join(STEPS)})")
    return steps


def host_result(steps: list[dict[str, Any]], check_mode: bool = False) -> str:
    """The server's result from its steps (module docstring)."""
    if check_mode:
        return WOULD_ROTATE
    steps = _check_steps(steps)
    if any(s.get("unreachable") for s in steps):
        return UNREACHABLE
    done = {s["step"]: s for s in steps}
    forward_failed = any(not s.get("ok") for s in steps if s["step"] in FORWARD)
    went_back = any(s["step"] in BACK for s in steps)
    if not forward_failed and not went_back:
        return ROTATED if all(done.get(name, {}).get("ok") for name in FORWARD) else FAILED_ROLLBACK
    if not all(done.get(name, {}).get("ok") for name in BACK):
        return FAILED_ROLLBACK
    nothing_installed = not done.get("issue", {}).get("ok") and not done["rollback_files"].get("changed")
    return FAILED if nothing_installed else ROLLED_BACK


def host_problems(steps: list[dict[str, Any]]) -> list[str]:
    """Every error, in the order it happened: ``<step>: <error>``."""
    return [
        f"{s['step']}: {s.get('error') or ('unreachable' if s.get('unreachable') else 'failed')}"
        for s in _check_steps(steps)
        if not s.get("ok")
    ]


def _cert(facts: Any) -> dict[str, str]:
    facts = facts if isinstance(facts, dict) else {}
    return {
        key: str(facts.get(key) or "") for key in ("fingerprint_sha256", "spki_sha256", "not_after", "serial")
    }


def host_entry(host: dict[str, Any]) -> dict[str, Any]:
    """A server's entry in the record, from what the playbook kept for it: ``host``,
    ``started_at``, ``duration_seconds``, ``old``/``new`` certificate facts, ``served`` (what the
    last gate saw), ``steps`` and ``check_mode``."""
    steps = host.get("steps") or []
    return {
        "host": str(host["host"]),
        "result": host_result(steps, bool(host.get("check_mode"))),
        "started_at": str(host.get("started_at") or ""),
        "duration_seconds": float(host.get("duration_seconds") or 0),
        "old": _cert(host.get("old")),
        "new": _cert(host.get("new")),
        "served": list(host.get("served") or []),
        "steps": steps,
        "problems": host_problems(steps),
    }


def build_record(
    run: dict[str, Any],
    *,
    servers: list[str],
    selected: list[str],
    skipped: list[str],
    unusable: dict[str, str],
    hosts: list[dict[str, Any]],
    updated_at: str,
    finished: bool = False,
) -> dict[str, Any]:
    """The run's record.

    ``servers``: the servers in the run (after --limit); ``selected``: those the selection chose;
    ``skipped``: those it did not (not due, another issuer or mode); ``unusable``: server ->
    why it could not be considered (unreachable, or its deployed certificate or key damaged);
    ``hosts``: one :func:`host_entry` input per server the rotation reached. ``finished``: the
    rotation play is over (no further batch will run).

    ``result``: ``complete`` (every selected server rotated), ``stopped`` (one did not: the
    rollout stopped at it), ``running`` (written between batches). ``unusable`` servers do not
    change it; they have their own list, and the playbook fails for them at the end.
    """
    entries = [host_entry(h) for h in hosts]
    reached = [e["host"] for e in entries]
    unknown = sorted(set(reached) - set(selected))
    if unknown:
        raise RotationError(f"hosts {unknown} were rotated but not selected")
    if any(e["result"] not in (ROTATED, WOULD_ROTATE) for e in entries):
        result = "stopped"
    elif len(entries) == len(selected) or finished:
        result = "complete" if len(entries) == len(selected) else "stopped"
    else:
        result = "running"
    return {
        "version": RECORD_VERSION,
        "id": str(run["id"]),
        "started_at": str(run["started_at"]),
        "updated_at": updated_at,
        "expiring_within_days": str(run.get("expiring_within_days", "")),
        "serial": run.get("serial", 1),
        "prober": str(run.get("prober", "")),
        "result": result,
        "servers": list(servers),
        "selected": list(selected),
        "skipped": list(skipped),
        "unusable": dict(unusable),
        "not_reached": [h for h in selected if h not in reached],
        "hosts": sorted(entries, key=lambda e: selected.index(e["host"])),
    }
