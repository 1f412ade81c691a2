"""Reload status: how ``ftpsd reload`` learns that every worker applied (or refused) a reload.

Files in ``server.runtime_dir`` (``/run/ftpsd``, the unit's ``RuntimeDirectory=``), each written
with :func:`ftpsd.atomicfile.atomic_write`, so a reader sees a whole old or a whole new version:

* ``daemon.json``, written only by the main process (the supervisor, or the only worker):
  ``instance`` (random, new at every start), ``pid``, ``workers`` and ``generation``, the number
  of the latest reload request. A SIGHUP to the main process bumps ``generation`` here before
  any worker hears of it.
* ``worker-<index>.json``, written by each worker once it serves and after every reload attempt:
  the ``generation`` it read from ``daemon.json`` *before* reading any file, whether it applied
  it or kept the old state (``problems``), and what it serves now (certificate fingerprint).

``ftpsd reload`` (:func:`reload_daemon`) reads ``generation`` G, sends SIGHUP and waits until
every worker of this ``instance`` reports a generation above G. Such a report was made from
files read after the call began, so a stale status (an earlier reload, an earlier run of the
daemon) can never pass for the answer, and concurrent calls each wait for a generation that
started after their own. A worker the supervisor restarts reads ``daemon.json`` and the files
before it reports, and catches up with any request it missed while starting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field

from ftpsd.atomicfile import atomic_write

log = logging.getLogger("ftpsd")

DAEMON_FILE = "daemon.json"
_WORKER_FILE = "worker-{}.json"
_WORKER_RE = re.compile(r"worker-\d+\.json")
_MODE = 0o644  # fingerprints and paths, nothing secret; `ftpsd reload` may run as another user
POLL_SECONDS = 0.05


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class DaemonStatus:
    """The daemon's side. ``directory == ""`` (``runtime_dir = ""`` or unusable) writes nothing:
    SIGHUP still reloads, but ``ftpsd reload`` cannot confirm it."""

    def __init__(self, directory: str, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self.instance = secrets.token_hex(8)
        self.generation = 0  # the latest request; meaningful in the main process only

    @classmethod
    def create(cls, directory: str, workers: int) -> DaemonStatus:
        """Make ``directory`` if needed and remove the status files of an earlier run; unless
        another running ftpsd uses it (then this one publishes nothing)."""
        if directory:
            why = ""
            other = _daemon(_read_json(os.path.join(directory, DAEMON_FILE)))
            if other is not None and other["pid"] != os.getpid() and _alive(other["pid"]):
                why = f"in use by ftpsd pid {other['pid']}"
            else:
                try:
                    os.makedirs(directory, mode=0o755, exist_ok=True)
                    for name in os.listdir(directory):
                        if name == DAEMON_FILE or _WORKER_RE.fullmatch(name):
                            os.unlink(os.path.join(directory, name))
                except OSError as err:
                    why = f"unusable: {err.strerror or err}"
            if why:
                log.warning(
                    "server.runtime_dir %s is %s: `ftpsd reload` cannot confirm this daemon's reloads;"
                    " SIGHUP still reloads",
                    directory,
                    why,
                )
                directory = ""
        return cls(directory, workers)

    def _write(self, name: str, data: dict) -> None:
        if not self.directory:
            return
        path = os.path.join(self.directory, name)
        try:
            atomic_write(path, (json.dumps(data) + "\n").encode(), _MODE)
        except OSError as err:
            log.warning("cannot write the reload status %s: %s", path, err.strerror or err)

    # -- main process ----------------------------------------------------------------------
    def publish(self) -> None:
        """Write daemon.json (at start, once the SIGHUP handler is installed)."""
        self._write(
            DAEMON_FILE,
            {
                "instance": self.instance,
                "pid": os.getpid(),
                "workers": self.workers,
                "generation": self.generation,
            },
        )

    def request(self) -> int:
        """A SIGHUP arrived: a new generation, published before the workers are told."""
        self.generation += 1
        self.publish()
        return self.generation

    def remove(self) -> None:
        """At a clean exit: no status left that names a process that is gone."""
        if self.directory:
            for name in [DAEMON_FILE] + [_WORKER_FILE.format(i) for i in range(self.workers)]:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))

    # -- workers ---------------------------------------------------------------------------
    def requested(self) -> int | None:
        """The latest requested generation (read before reading the files it asks for)."""
        if not self.directory:
            return None
        data = _read_json(os.path.join(self.directory, DAEMON_FILE))
        if data is None or data.get("instance") != self.instance:
            log.warning("cannot read the reload request from %s/%s", self.directory, DAEMON_FILE)
            return None
        generation = data.get("generation")
        return generation if isinstance(generation, int) else None

    def report(
        self,
        index: int,
        generation: int,
        *,
        problems: list[str],
        warnings: list[str],
        fingerprint: str,
        directory: str,
        users: int,
    ) -> None:
        """What worker ``index`` made of ``generation``, and what it serves now."""
        self._write(
            _WORKER_FILE.format(index),
            {
                "instance": self.instance,
                "index": index,
                "pid": os.getpid(),
                "generation": generation,
                "problems": problems,
                "warnings": warnings,
                "fingerprint": fingerprint,
                "directory": directory,
                "users": users,
            },
        )


# --- `ftpsd reload` ------------------------------------------------------------------------
class ReloadFailed(Exception):
    """The reload was refused, not confirmed in time, or could not be requested; one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass
class ReloadResult:
    summary: str
    warnings: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _who(reports: list[dict], workers: int) -> str:
    if workers == 1:
        return ""
    indexes = ", ".join(str(r["index"]) for r in reports)
    return f" by worker{'s' if len(reports) > 1 else ''} {indexes}"


def _daemon(data: dict | None) -> dict | None:
    """daemon.json's content if it has the expected shape."""
    if data is None:
        return None
    shape = {"instance": str, "pid": int, "workers": int, "generation": int}
    if not all(isinstance(data.get(key), kind) for key, kind in shape.items()) or data["workers"] < 1:
        return None
    return data


def _answers(report: dict, instance: str, target: int) -> bool:
    """A worker report of this run of the daemon, for generation ``target`` or a later one."""
    generation = report.get("generation")
    return report.get("instance") == instance and isinstance(generation, int) and generation >= target


def _wait_for_daemon(path: str, pid: int | None, deadline: float) -> dict:
    """daemon.json of the running daemon (of ``pid`` if given; it may still be starting)."""
    while True:
        data = _daemon(_read_json(path))
        if data is not None and (pid is None or data["pid"] == pid):
            return data
        if pid is None:
            raise ReloadFailed([f"no daemon status in {path}: is ftpsd running (server.runtime_dir)?"])
        if not _alive(pid):
            raise ReloadFailed([f"no process {pid}: ftpsd is not running"])
        if time.monotonic() >= deadline:
            found = f"is from pid {data.get('pid')}" if data else "does not exist"
            raise ReloadFailed([f"{path} {found}, not ftpsd's pid {pid}: is server.runtime_dir right?"])
        time.sleep(POLL_SECONDS)


def reload_daemon(directory: str, pid: int | None = None, timeout: float = 30.0) -> ReloadResult:
    """Ask the daemon to reload and wait until every worker applied or refused it.

    Returns the one-line summary (and any warnings) when every worker applied the same state;
    raises :class:`ReloadFailed` otherwise (each refusal's problems, a timeout, a dead daemon).
    """
    if not directory:
        raise ReloadFailed(['server.runtime_dir is "": the daemon publishes no reload status'])
    deadline = time.monotonic() + timeout
    daemon_path = os.path.join(directory, DAEMON_FILE)
    daemon = _wait_for_daemon(daemon_path, pid, deadline)
    pid, instance, workers = daemon["pid"], daemon["instance"], daemon["workers"]
    target = daemon["generation"] + 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ReloadFailed([f"no process {pid}: ftpsd is not running ({daemon_path} is stale)"]) from None
    except PermissionError:
        raise ReloadFailed([f"not allowed to signal ftpsd (pid {pid}): run as root or its user"]) from None
    while True:
        reports = [_read_json(os.path.join(directory, _WORKER_FILE.format(i))) or {} for i in range(workers)]
        pending = [i for i, r in enumerate(reports) if not _answers(r, instance, target)]
        if not pending:
            break
        if not _alive(pid):
            raise ReloadFailed([f"ftpsd (pid {pid}) exited during the reload"])
        daemon = _daemon(_read_json(daemon_path))
        if daemon is None or daemon["instance"] != instance:
            raise ReloadFailed([f"ftpsd was restarted during the reload ({daemon_path} is another run's)"])
        if time.monotonic() >= deadline:
            if daemon["generation"] < target:
                raise ReloadFailed([f"ftpsd (pid {pid}) took no reload request within {timeout:g} s"])
            late = ", ".join(
                f"{i} (pid {reports[i]['pid']})" if reports[i].get("instance") == instance else str(i)
                for i in pending
            )
            raise ReloadFailed(
                [
                    f"reload generation {target} not confirmed within {timeout:g} s: no answer yet from"
                    f" worker{'s' if len(pending) > 1 else ''} {late}; it may still be applied"
                ]
            )
        time.sleep(POLL_SECONDS)
    return _outcome(reports, workers)


def _outcome(reports: list[dict], workers: int) -> ReloadResult:
    generation = min(r["generation"] for r in reports)
    refused = [r for r in reports if r.get("problems")]
    applied = [r for r in reports if not r.get("problems")]
    lines: list[str] = []
    by_problem: dict[str, list[dict]] = {}
    for report in refused:
        for problem in report["problems"]:
            by_problem.setdefault(problem, []).append(report)
    for problem, who in by_problem.items():
        lines.append(
            f"reload refused{_who(who, workers)}, still serving certificate sha256={who[0]['fingerprint']}:"
            f" {problem}"
        )
    served = {r.get("fingerprint") for r in applied}
    if refused and applied:
        lines.append(
            f"reload generation {generation} applied{_who(applied, workers)} but refused by the others:"
            " fix the problems above and reload again"
        )
    elif len(served) > 1:
        each = ", ".join(f"worker {r['index']} sha256={r['fingerprint']}" for r in applied)
        lines.append(f"workers serve different certificates (files changed during the reload?): {each}")
    if lines:
        raise ReloadFailed(lines)
    first = applied[0]
    warnings = list(dict.fromkeys(w for r in applied for w in r.get("warnings", [])))
    return ReloadResult(
        summary=(
            f"reloaded generation {generation} on {workers} worker{'s' if workers > 1 else ''}:"
            f" certificate sha256={first['fingerprint']} from {first['directory']}, {first['users']} users"
        ),
        warnings=warnings,
    )
