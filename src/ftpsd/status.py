"""Reload status: how ``ftpsd reload`` learns that every worker applied (or refused) a reload.

Files in ``server.runtime_dir`` (``/run/ftpsd``, the unit's ``RuntimeDirectory=``), each written
with :func:`ftpskit_common.atomicfile.atomic_write`, so a reader sees a whole old or a whole new version:

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

from ftpskit_common.atomicfile import atomic_write

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
        certificate: dict | None = None,
        sessions: int = 0,
        counted: dict | None = None,
        last_reload: dict | None = None,
        counters: dict | None = None,
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
                "certificate": certificate or {},
                "sessions": sessions,
                "counted": counted or {},
                "last_reload": last_reload,
                "counters": counters or {},
            },
        )

    def reported(self, generation: int) -> bool:
        """Whether every worker of this run reported ``generation`` or a later one (True when
        nothing is published: there is nothing to wait for)."""
        if not self.directory:
            return True
        for index in range(self.workers):
            report = _read_json(os.path.join(self.directory, _WORKER_FILE.format(index))) or {}
            if not _answers(report, self.instance, generation):
                return False
        return True


def certificate_summary(cert, chain=(), loaded_at: float | None = None) -> dict:
    """What status files, ``ftpsd status`` and the metrics say about one certificate
    (``cert``: a cryptography x509.Certificate; fingerprint in :func:`ftpsd.tls.fingerprint`'s
    format)."""
    from ftpsd.tls import fingerprint

    leaf = fingerprint(cert)
    others = [c for c in chain if fingerprint(c) != leaf]  # a chain file may repeat the leaf
    summary = {
        "fingerprint": leaf,
        "serial": format(cert.serial_number, "X"),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.timestamp(),
        "not_after": cert.not_valid_after_utc.timestamp(),
        "chain_not_after": min((c.not_valid_after_utc.timestamp() for c in others), default=None),
    }
    if loaded_at is not None:
        summary["loaded_at"] = loaded_at
    return summary


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


# --- `ftpsd status` and `ftpsd metrics`: what runs, what is deployed ------------------------
def deployed_certificate(config_path: str) -> tuple[dict | None, str]:
    """The certificate (and chain) on disk that the configuration names, as
    :func:`certificate_summary`; or (None, why not)."""
    from cryptography import x509

    from ftpsd.config import peek_tls
    from ftpsd.tls import resolve_paths

    _, cert_path, _, chain_path = resolve_paths(peek_tls(config_path))
    try:
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificates(handle.read())[0]
        chain: list = []
        if chain_path and os.path.exists(chain_path):
            with open(chain_path, "rb") as handle:
                chain = x509.load_pem_x509_certificates(handle.read())
    except OSError as err:
        return None, f"cannot read {err.filename}: {err.strerror or err}"
    except ValueError:
        return None, f"{cert_path} or {chain_path} holds no PEM certificate"
    summary = certificate_summary(cert, chain)
    summary["path"] = cert_path
    summary["names"] = _names(cert)
    return summary, ""


def _names(cert) -> dict:
    """The fields the certificate exporters label their expiry series with (``ftpsd metrics``'
    ``ssl_file_cert_*`` and ``x509_cert_*``): common names, decimal serial, SAN lists."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def first(name, oid) -> str:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        emails = san.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        dns, ips, emails = [], [], []
    return {
        "serial_decimal": str(cert.serial_number),
        "subject_cn": first(cert.subject, NameOID.COMMON_NAME),
        "issuer_cn": first(cert.issuer, NameOID.COMMON_NAME),
        "ou": [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)],
        "dns": dns,
        "ips": ips,
        "emails": emails,
    }


def collect(config_path: str) -> dict:
    """Everything ``ftpsd status --json`` prints: the running daemon (from the runtime_dir), each
    worker's report, the deployed certificate, and whether every worker serves it."""
    from ftpsd.config import peek_runtime_dir

    directory = peek_runtime_dir(config_path)
    daemon = _daemon(_read_json(os.path.join(directory, DAEMON_FILE))) if directory else None
    running = daemon is not None and _alive(daemon["pid"])
    workers: list[dict] = []
    if running:
        for index in range(daemon["workers"]):
            report = _read_json(os.path.join(directory, _WORKER_FILE.format(index))) or {}
            if report.get("instance") != daemon["instance"]:
                workers.append({"index": index, "reported": False})
                continue
            workers.append(
                {
                    "index": index,
                    "reported": True,
                    "pid": report.get("pid"),
                    "generation": report.get("generation"),
                    "certificate": report.get("certificate") or {"fingerprint": report.get("fingerprint")},
                    "directory": report.get("directory"),
                    "users": report.get("users"),
                    "sessions": report.get("sessions", 0),
                    "counted": report.get("counted", {}),
                    "last_reload": report.get("last_reload"),
                    "counters": report.get("counters") or {},
                    "problems": report.get("problems", []),
                }
            )
    deployed, why = deployed_certificate(config_path)
    served = {w["certificate"].get("fingerprint") for w in workers if w.get("reported")}
    matches = None
    if running and deployed is not None and workers and all(w["reported"] for w in workers):
        matches = served == {deployed["fingerprint"]}
    return {
        "config": config_path,
        "runtime_dir": directory,
        "running": running,
        "daemon": {k: daemon[k] for k in ("pid", "instance", "workers", "generation")} if running else None,
        "workers": workers,
        "sessions": sum(w.get("sessions", 0) for w in workers),
        # What the shared limits table holds for the running workers (all 0 when idle).
        "counted": {
            key: sum((w.get("counted") or {}).get(key, 0) for w in workers)
            for key in ("sessions", "logins", "per_ip", "per_user", "passive", "pending")
        },
        "deployed": deployed,
        "deployed_error": why,
        "served_matches_deployed": matches,
    }


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def format_status(info: dict) -> list[str]:
    """``ftpsd status`` for people: one fact a line."""
    lines = []
    if not info["running"]:
        where = info["runtime_dir"] or "(runtime_dir off)"
        lines.append(f"daemon: not running (no live daemon status in {where})")
    else:
        d = info["daemon"]
        lines.append(f"daemon: pid {d['pid']}, {d['workers']} worker(s), reload generation {d['generation']}")
    for w in info["workers"]:
        if not w["reported"]:
            lines.append(f"worker {w['index']}: not serving yet (no report)")
            continue
        c = w["certificate"]
        last = w["last_reload"]
        reload_text = (
            "none since start"
            if not last
            else f"{last['result']} at {_when(last['time'])}"
            + (f": {last['message']}" if last["message"] else "")
        )
        lines += [
            f"worker {w['index']}: pid {w['pid']}, generation {w['generation']},"
            f" {w['sessions']} session(s) open",
            f"  certificate sha256={c.get('fingerprint')} serial={c.get('serial', '-')}",
            f"  not after {_when(c.get('not_after'))}, loaded {_when(c.get('loaded_at'))}"
            f" from {w['directory']}",
            f"  last reload: {reload_text}",
        ]
    dep = info["deployed"]
    if dep is None:
        lines.append(f"deployed certificate: unknown ({info['deployed_error']})")
    else:
        lines.append(
            f"deployed certificate: {dep['path']} sha256={dep['fingerprint']} serial={dep['serial']}"
            f" not after {_when(dep['not_after'])}"
        )
    matches = info["served_matches_deployed"]
    lines.append(f"served matches deployed: {'unknown' if matches is None else 'yes' if matches else 'no'}")
    return lines
