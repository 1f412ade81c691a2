"""Process model, listeners, reload and shutdown.

* The configuration, TLS material and users are validated before anything binds (fail fast).
* Listeners: explicit FTPS on ``control_port`` and implicit FTPS on ``implicit_port`` for each
  ``listen`` address, bound once in the parent.
* ``workers`` processes (0 = one per core) are forked after binding and share the listening
  sockets. The parent supervises: it restarts a crashed worker, forwards SIGHUP to every worker
  and SIGTERM/SIGINT for a clean shutdown. With one worker no fork happens.
* SIGHUP in a worker re-reads the configuration, the certificate/key/chain (``current``
  resolved once), the users file and the TLS policy. Only if everything validates is the new
  state swapped in; sessions in flight keep the context and users they started with. A failed
  reload logs every problem and keeps serving the old state.
* Every SIGHUP to the main process is a numbered reload request, and every worker reports what
  it made of it (:mod:`ftpsd.status`), so ``ftpsd reload`` can wait for the answer.
* Once serving, the main process removes partial uploads a killed daemon left in the users'
  homes (:mod:`ftpsd.partials`), in small steps.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyftpdlib.servers import FTPServer

from ftpsd import notify
from ftpsd.authorizer import FtpsdAuthorizer
from ftpsd.config import Config, ConfigError
from ftpsd.dtp import FtpsdDTPHandler
from ftpsd.handlers import FtpsdHandler, FtpsdImplicitHandler, RangedPassiveDTP, Runtime, Waker
from ftpsd.heap import return_large_buffers
from ftpsd.ioloop import FtpsdIOLoop
from ftpsd.journal import PriorityFormatter, stderr_is_journal
from ftpsd.limits import SharedLimits
from ftpsd.load import load_all
from ftpsd.pages import drop_file_pages
from ftpsd.partials import LeftoverSweep
from ftpsd.safetext import EscapingFormatter
from ftpsd.status import DaemonStatus, certificate_summary
from ftpsd.tls import ContextFactory, TLSMaterial

log = logging.getLogger("ftpsd")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = PriorityFormatter if stderr_is_journal() else EscapingFormatter
    handler.setFormatter(formatter("ftpsd[%(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # pyftpdlib logs every command at INFO; keep its chatter at warning unless debugging.
    logging.getLogger("pyftpdlib").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


@dataclass
class Loaded:
    config: Config
    context: ContextFactory
    authorizer: FtpsdAuthorizer
    fingerprint: str
    directory: str
    users: int
    homes: tuple[str, ...]
    material: TLSMaterial | None = None
    loaded_at: float = 0.0  # time.time() when the files were read
    # The status reports' certificate summary, made once per load: before the workers fork, so
    # its objects are shared, and not again at every report (once a second while sessions change).
    certificate: dict | None = None


def load_everything(path: str) -> Loaded:
    """Load config, TLS material and users once and validate them; raises ConfigError listing problems."""
    everything = load_all(path)
    config, material, users = everything.config, everything.material, everything.users
    loaded_at = time.time()
    return Loaded(
        config=config,
        context=everything.context,
        authorizer=FtpsdAuthorizer(users),
        fingerprint=material.fingerprint,
        directory=material.directory,
        users=len(users),
        homes=tuple(user.home for user in users),
        material=material,
        loaded_at=loaded_at,
        certificate=certificate_summary(material.cert, material.chain, loaded_at),
    )


_PASSIVE_TIMEOUT = 30  # seconds a passive listener waits for its connection (pyftpdlib's default)
_SESSIONS_EVERY = 1.0  # seconds between checks whether the status file's session counts are stale

# Settings bound at start (sockets, processes, status files); a reload only warns that they changed.
# (ipv6_prefix: the shared limits table, made before the workers fork, groups addresses by it.)
_RESTART_ONLY = ("listen", "control_port", "implicit_port", "workers", "runtime_dir", "ipv6_prefix")


class FtpsdServer(FTPServer):
    """One listener. Session limits are daemon-wide (SharedLimits), not per process."""

    def handle_accepted(self, sock, addr) -> FtpsdHandler | None:
        handler = None
        try:
            handler = self.handler(sock, self, ioloop=self.ioloop)
            if not handler.connected:
                return None
            runtime = handler.runtime
            refused = runtime.limits.connect(
                addr[0], self.max_cons, self.max_cons_per_ip, runtime.ban_seconds
            )
            if refused:
                runtime.counters.add(f"sessions_refused/{refused}")
            if refused == "total":
                handler.handle_max_cons()
                return None
            if refused == "per_ip":
                handler.handle_max_cons_per_ip()
                return None
            if refused == "untracked":  # no slot for its address: refused, never let in uncapped
                log.warning("refused %s: the shared limits table has no free slot for it", addr[0])
                handler.handle_max_cons()
                return None
            handler._counted_ip = addr[0]
            runtime.sessions.add(handler)
            try:
                handler.handle()
            except Exception:
                handler.handle_error()
            return handler
        except Exception:
            log.exception("accepting a connection from %s failed", addr[0] if addr else "?")
            if handler is not None:
                handler.close()
            return None


class Worker:
    """The state of one serving process: worker ``index`` of the supervisor, or, with ``main``,
    the whole daemon (``workers = 1``: it also numbers the reload requests and sweeps)."""

    def __init__(
        self,
        config_path: str,
        loaded: Loaded,
        listeners: list,
        limits: SharedLimits,
        status: DaemonStatus,
        *,
        index: int = 0,
        main: bool = False,
        sweep: LeftoverSweep | None = None,
    ) -> None:
        self.config_path = config_path
        self.status = status
        self.index = index
        self.main = main
        self.sweep = sweep
        self.generation = 0  # the latest reload request this worker handled
        self.servers: list[FtpsdServer] = []
        limits.bind_worker(index)  # this process counts its sessions in its own column
        self.runtime = Runtime(limits=limits)
        self._hup = False
        self._stop = False
        self.last_reload: dict | None = None  # ok/refused, message, time of the latest reload
        self._last_report: tuple[list[str], list[str]] = ([], [])
        self._reported_sessions: tuple = ()
        self.apply(loaded, first=True)  # handlers need their TLS context before a server exists
        self.servers = _servers(listeners)
        self._apply_limits(loaded.config)
        self.ioloop = self.servers[0].ioloop

    def apply(self, loaded: Loaded, first: bool = False) -> list[str]:
        """Swap ``loaded`` in; returns a warning if a setting only a restart applies changed."""
        config = loaded.config
        s = config.server
        warnings = []
        if not first:
            before = self.loaded.config.server
            changed = [f"server.{key}" for key in _RESTART_ONLY if getattr(s, key) != getattr(before, key)]
            if changed:
                warnings.append(f"{', '.join(changed)} changed: applied only by a restart; ignored")
                log.warning("reload: %s", warnings[-1])
        self.loaded = loaded
        for cls in (FtpsdHandler,):
            cls.tls_contexts = loaded.context
            cls.authorizer = loaded.authorizer
            cls.require_session_reuse = config.tls.require_session_reuse
            cls.banner = s.banner
            cls.timeout = s.idle_timeout
            cls.login_timeout = s.login_timeout
            cls.auth_failed_timeout = s.login_failure_delay
            cls.passive_ports = list(range(s.passive_ports[0], s.passive_ports[1] + 1))
            cls.masquerade_address = s.masquerade_address or None
            cls.max_passive_ports_per_user = s.max_passive_ports_per_user
            cls.allow_hard_links = s.allow_hard_links
            cls.runtime = self.runtime
        FtpsdDTPHandler.timeout = s.data_timeout
        # A passive listener nobody connects to lives no longer than an idle session would.
        RangedPassiveDTP.timeout = min(_PASSIVE_TIMEOUT, s.idle_timeout)
        self.runtime.ban_after_failures = s.ban_after_failures
        self.runtime.ban_seconds = s.ban_seconds
        self._apply_limits(config)
        self._open_xferlog(config.logging.xferlog)
        logging.getLogger().setLevel(_LEVELS[config.logging.level])
        log.info(
            "%s: certificate sha256=%s from %s, %d users, TLS min %s tls13=%s session_reuse=%s",
            "loaded" if first else "reloaded",
            loaded.fingerprint,
            loaded.directory,
            loaded.users,
            config.tls.min_version,
            config.tls.tls13,
            config.tls.require_session_reuse,
        )
        client = loaded.context.client
        if client is not None:
            log.info(
                "client certificates: CA %s, CRL %s (%d revoked), field %s, explicit %s, implicit %s",
                client.ca_file,
                client.crl_file,
                sum(len(crl) for crl in client.crls),
                client.field,
                client.mode("explicit"),
                client.mode("implicit"),
            )
            for line in client.stale():
                log.warning("%s", line)
        return warnings

    def _apply_limits(self, config: Config) -> None:
        for server in self.servers:
            server.max_cons = config.server.max_connections
            server.max_cons_per_ip = config.server.max_connections_per_ip

    def _open_xferlog(self, path: str) -> None:
        old = self.runtime.xferlog
        self.runtime.xferlog = None
        if path:
            try:
                self.runtime.xferlog = open(path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived
            except OSError as err:
                log.error("cannot open xferlog %s: %s", path, err)
        if old is not None:
            old.close()

    def reload(self) -> None:
        """Handle the latest reload request: read it first, then every file, then report."""
        requested = self.status.requested()
        if requested is not None:
            self.generation = requested
        problems: list[str] = []
        warnings: list[str] = []
        try:
            loaded = load_everything(self.config_path)
        except (ConfigError, ValueError) as exc:
            problems = getattr(exc, "problems", None) or [str(exc)]
            for line in problems:
                log.error("reload failed, keeping the current configuration: %s", line)
            # A reload also means "reopen the xferlog" (logrotate's postrotate): even when refused.
            self._open_xferlog(self.loaded.config.logging.xferlog)
        else:
            warnings = self.apply(loaded)
        self.runtime.counters.add("reloads/failed" if problems else "reloads/ok")
        self.last_reload = {
            "result": "refused" if problems else "ok",
            "message": "; ".join(problems or warnings),
            "time": time.time(),
        }
        self.report(problems, warnings)

    def _sessions_now(self) -> tuple:
        """What the status file's session figures and counters depend on (cheap: no table scan)."""
        runtime = self.runtime
        return len(runtime.sessions), runtime.limits.header(self.index), runtime.counters.changes

    def report(self, problems: list[str], warnings: list[str]) -> None:
        self._last_report = (problems, warnings)
        self._reported_sessions = self._sessions_now()
        self.status.report(
            self.index,
            self.generation,
            problems=problems,
            warnings=warnings,
            fingerprint=self.loaded.fingerprint,
            directory=self.loaded.directory,
            users=self.loaded.users,
            certificate=self.loaded.certificate,
            sessions=self._reported_sessions[0],
            counted=self.runtime.limits.counts(self.index),
            last_reload=self.last_reload,
            counters=self.runtime.counters.values,
        )

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        else:
            self._stop = True

    def _first_report(self, reload_first: bool) -> None:
        """Once SIGHUP is handled: publish (main) and report the state this worker serves."""
        if self.main:
            self.status.publish()  # only now: `ftpsd reload` must not signal before the handler
        # A request may have come while SIGHUP was still ignored (between fork and serve()).
        if reload_first or (self.status.requested() or 0) > self.generation:
            self.reload()
        else:
            self.report([], [])
        if self.main:
            notify.ready(f"serving certificate sha256={self.loaded.fingerprint}")

    def serve(self, *, reload_first: bool = False) -> int:  # noqa: PLR0912 - one serving loop
        """Serve until SIGTERM/SIGINT. ``reload_first``: read the files again before reporting
        (a replacement worker: the supervisor's copy of the state may be older)."""
        signal.signal(signal.SIGHUP, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._first_report(reload_first)
        self.runtime.pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
        self.runtime.waker = Waker(self.ioloop)
        for server in self.servers:
            host, port = server.address
            log.info(
                "listening on %s:%s (%s FTPS)",
                host,
                port,
                "implicit" if server.handler.implicit else "explicit",
            )
        if self.sweep is not None:
            threading.Thread(target=self.sweep.run, name="leftover-sweep", daemon=True).start()
        timeout = 0.5
        next_count = time.monotonic() + _SESSIONS_EVERY
        try:
            while not self._stop:
                try:
                    soonest = self.ioloop.loop(timeout, blocking=False)
                except Exception:
                    # One session's bug must not take every other session down with it.
                    log.exception("unhandled error in the IO loop; continuing")
                    soonest = 0.0
                timeout = 0.5 if soonest is None else max(0.0, min(soonest, 0.5))
                if self._hup:
                    self._hup = False
                    if self.main:
                        notify.reloading("reloading")
                        self.status.request()
                    self.reload()
                    if self.main:
                        notify.ready(f"serving certificate sha256={self.loaded.fingerprint}")
                if time.monotonic() >= next_count:
                    next_count = time.monotonic() + _SESSIONS_EVERY
                    if self._sessions_now() != self._reported_sessions:
                        self.report(*self._last_report)
        finally:
            if self.main:
                notify.stopping()
            log.info("shutting down (pid %d)", os.getpid())
            if self.main:
                self.status.remove()
            self.runtime.pool.shutdown(wait=False, cancel_futures=True)
            self.ioloop.close()
            if self.runtime.xferlog is not None:
                self.runtime.xferlog.close()
        return 0


def _bind(loaded: Loaded) -> list[tuple[socket.socket, type[FtpsdHandler]]]:
    """Bind every listener (plain sockets; each process builds its own loop around them)."""
    s = loaded.config.server
    listeners: list[tuple[socket.socket, type[FtpsdHandler]]] = []
    for address in s.listen:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        ports: list[tuple[int, type[FtpsdHandler]]] = [(s.control_port, FtpsdHandler)]
        if s.implicit_port:
            ports.append((s.implicit_port, FtpsdImplicitHandler))
        for port, handler in ports:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"cannot bind {address}:{port}: {exc.strerror}") from None
            sock.listen(512)
            sock.setblocking(False)
            listeners.append((sock, handler))
    return listeners


def _servers(listeners: list[tuple[socket.socket, type[FtpsdHandler]]]) -> list[FtpsdServer]:
    """This process's loop and one FtpsdServer per listener, sharing one ip_map."""
    ioloop = FtpsdIOLoop()  # its timers cannot be starved by chatty sessions (ftpsd.ioloop)
    ip_map: list[str] = []
    servers = []
    for sock, handler in listeners:
        server = FtpsdServer(sock, handler, ioloop=ioloop, backlog=512)
        server.ip_map = ip_map
        servers.append(server)
    return servers


def fork_sharing_heap() -> int:
    """``os.fork()`` after moving every object the supervisor holds into the collector's permanent
    generation (``gc.freeze()``), so that no collection in a worker ever writes to them.

    A worker starts with the supervisor's whole Python heap (imports, the loaded state) shared
    copy-on-write. A full collection in a worker walks every tracked object and writes to its GC
    header, which copied each shared page it touched into that worker: megabytes at once, at
    some session or other (one run of the idle-session benchmark: 78 KiB per session instead of
    42). Frozen objects are never walked, so the pages stay shared. The cost: cycles among the
    objects frozen here are never collected (freed by reference counting still are), which at
    most keeps the state loaded before the fork once per process.
    """
    gc.freeze()
    return os.fork()


def _supervise(  # noqa: PLR0912, PLR0915 - one supervisor loop
    config_path: str,
    loaded: Loaded,
    workers: int,
    limits: SharedLimits,
    *,
    status: DaemonStatus,
    start_time: float,
) -> int:
    """Fork ``workers`` processes sharing the bound listeners; number reload requests and forward
    them; restart crashes; sweep leftover partial uploads while idle."""
    children: dict[int, int] = {}
    stopping = False
    hup = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping, hup
        if signum == signal.SIGHUP:
            hup = True
        else:
            stopping = True

    # Handlers first, so a signal between fork and the child's own setup is not lost.
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    status.publish()  # only now: `ftpsd reload` must not signal before the handler exists

    started: dict[int, float] = {}

    def spawn(index: int) -> int | None:
        pid = fork_sharing_heap()
        if pid == 0:
            return index
        children[pid] = index
        started[pid] = time.monotonic()
        return None

    # Listeners are bound in the parent (fail fast, one bind), then inherited by each worker,
    # which builds its own IO loop (an epoll set must not be shared across fork()).
    listeners = _bind(loaded)
    for index in range(workers):
        if spawn(index) is not None:
            return _child(config_path, loaded, listeners, limits, status=status, index=index, restarted=False)
    log.info("supervisor pid %d: %d workers %s", os.getpid(), workers, sorted(children))
    # The library pages only its start ran stay mapped here alone (3-6 MiB): let go of them
    # (ftpsd.pages; the supervisor has one thread). Again after each reload it loads.
    drop_file_pages()
    # The start's sweep, then one after each worker's death (its uploads in progress are left
    # over: unlocked, older than the moment it was found dead), one at a time.
    sweeps: list[LeftoverSweep] = [LeftoverSweep(loaded.homes, start_time)]
    restarts = 0
    exit_code = 0
    # systemd (Type=notify): READY=1 once every worker reported this generation (start: 0).
    awaited: int | None = status.generation
    while children:
        if awaited is not None and status.reported(awaited):
            awaited = None
            notify.ready(f"{workers} workers serving, reload generation {status.generation}")
        if hup:
            hup = False
            notify.reloading(f"reloading: generation {status.generation + 1}")
            generation = status.request()  # published before any worker hears of it
            awaited = generation
            log.info("SIGHUP: reload request %d, forwarding to workers %s", generation, sorted(children))
            for pid in children:
                os.kill(pid, signal.SIGHUP)
            # Keep the newest valid state for replacement workers (they start from this copy).
            with contextlib.suppress(ConfigError, ValueError):
                loaded = load_everything(config_path)
            drop_file_pages()
        if stopping:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if sweeps and not stopping and sweeps[0].step():
                sweeps.pop(0)
            time.sleep(0.2)
            continue
        index = children.pop(pid, None)
        lived = time.monotonic() - started.pop(pid, 0.0)
        if index is None or stopping:
            continue
        log.warning("worker %d (pid %d) died (status %d); restarting", index, pid, wait_status)
        # Its sessions died with it: give back exactly what it counted (its own column), and
        # remove the temporary files of its uploads (the other workers' are locked: kept).
        limits.release_worker(index)
        sweeps.append(LeftoverSweep(loaded.homes, time.time()))
        restarts += 1
        if lived < 5 and restarts > 3:
            log.error("workers die right after starting; giving up")
            stopping = True
            exit_code = 1
            continue
        if restarts > 100:
            log.error("too many worker restarts; giving up")
            stopping = True
            exit_code = 1
            continue
        time.sleep(0.5)
        if spawn(index) is not None:
            return _child(config_path, loaded, listeners, limits, status=status, index=index, restarted=True)
    for sock, _ in listeners:
        sock.close()
    status.remove()
    notify.stopping()
    log.info("supervisor: all workers exited")
    return exit_code


def _child(
    config_path: str,
    loaded: Loaded,
    listeners: list,
    limits: SharedLimits,
    *,
    status: DaemonStatus,
    index: int,
    restarted: bool,
) -> int:
    # Until the worker installs its own handler: a reload request arriving now is dropped
    # rather than killing the new worker (SIG_DFL terminates).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    worker = Worker(config_path, loaded, listeners, limits, status, index=index)
    try:
        # The parent's copy may predate the latest request: a replacement reads the files again.
        code = worker.serve(reload_first=restarted)
    finally:
        logging.shutdown()
    os._exit(code)


def run(config_path: str) -> int:
    start_time = time.time()  # partial uploads older than this are leftovers of an earlier run
    setup_logging("info")
    # Before any thread or fork: each password check's 16 MiB scrypt buffer is unmapped when
    # freed instead of staying in its pool thread's arena (ftpsd.heap).
    return_large_buffers()
    try:
        loaded = load_everything(config_path)
    except ConfigError as exc:
        for line in exc.problems:
            log.error("%s", line)
        return 1
    setup_logging(loaded.config.logging.level)
    # 0 = one per core this process may run on (honours CPU affinity, e.g. systemd CPUAffinity=).
    workers = loaded.config.server.workers or len(os.sched_getaffinity(0)) or 1
    # Before fork: every worker shares it (and its hash key).
    limits = SharedLimits(workers=workers, ipv6_prefix=loaded.config.server.ipv6_prefix)
    status = DaemonStatus.create(loaded.config.server.runtime_dir, workers)
    try:
        if workers == 1:
            sweep = LeftoverSweep(loaded.homes, start_time)
            worker = Worker(config_path, loaded, _bind(loaded), limits, status, main=True, sweep=sweep)
            # Still one thread (the pool and the sweep start in serve()): the library pages only
            # the start ran go (ftpsd.pages); serving maps again what it runs.
            drop_file_pages()
            return worker.serve()
        return _supervise(config_path, loaded, workers, limits, status=status, start_time=start_time)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        status.remove()
        return 1
