"""The control-channel handlers: explicit FTPS (AUTH TLS) and implicit FTPS (TLS from byte one).

Policy on top of pyftpdlib's ``TLS_FTPHandler``:

* TLS before ``USER``/``PASS`` (530 otherwise), ``PROT P`` before any data command, ``PROT C``
  refused (534); each session has its own SSL context and its data connections must resume its
  TLS session (:mod:`ftpsd.tls`, :mod:`ftpsd.dtp`).
* Password checks run in a thread pool (scrypt costs ~60 ms) so logins never stall the loop.
* A failed login is answered after ``login_failure_delay``; ``ban_after_failures`` failures
  from one address within ``ban_seconds`` ban it for ``ban_seconds``.
* Per-user connection cap and rate limit; upload-only users cannot overwrite.
* Uploads go to a temporary name in the target directory and are renamed into place only when
  complete (see ``commit_upload``).
* Every filesystem operation goes through :class:`ftpsd.homefs.HomeFS`, which resolves paths
  relative to the home's descriptor and never follows a symlink (the containment invariant).
* Every session keeps the TLS context current when it started, so a reload never disturbs its
  transfers; after a reload its login is judged again, at its next command, by the same login
  rules against the new users and client trust (a removed, changed or revoked account ends).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import random
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyftpdlib.handlers.ftp.control
import pyftpdlib.handlers.ftp.data
import pyftpdlib.handlers.ftp.dispatchers
import pyftpdlib.handlers.ftps.ssl
import pyftpdlib.ioloop
import pyftpdlib.log
import pyftpdlib.servers
from OpenSSL import SSL
from OpenSSL._util import lib as _lib
from pyftpdlib.exceptions import FilesystemError
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.handlers.ftp.dispatchers import PassiveDTP
from pyftpdlib.ioloop import Acceptor, AsyncChat
from pyftpdlib.log import logger
from pyftpdlib.utils import strerror

from ftpsd.authorizer import FtpsdAuthorizer
from ftpsd.clientcert import NO_CERTIFICATE, REFUSALS, Verdict, decide
from ftpsd.counters import Counters
from ftpsd.dtp import FtpsdDTPHandler, tls_read_event, tls_write_event
from ftpsd.homefs import HomeFS
from ftpsd.limits import Attempt, SharedLimits
from ftpsd.partials import final_name, part_name
from ftpsd.safetext import escape, escape_name, escape_reply
from ftpsd.tls import (
    ContextFactory,
    describe_ssl_error,
    last_ssl_error,
    seal_control_context,
    session_reused,
)

log = logging.getLogger("ftpsd")
auth_log = logging.getLogger("ftpsd.auth")
tls_log = logging.getLogger("ftpsd.tls")

# Names of uploads in progress (ftpsd.partials): a client file so named would be taken for a
# killed daemon's leftover and removed at the next start.
_RESERVED_NAME = "553 Name reserved for uploads in progress; choose another name."
# Names are created printable (no CR/LF/NUL/ESC...: they could forge lines in listings).
_UNPRINTABLE_NAME = "553 Name refused: control characters and other non-printable characters are not allowed."
_CREATING = frozenset({"STOR", "APPE", "MKD", "XMKD", "RNTO"})
# Commands that need a data connection: without one (no PASV/EPSV/PORT/EPRT) they are refused.
_TRANSFERS = frozenset({"RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD"})
_DATA_SETUP = frozenset({"PASV", "EPSV", "PORT", "EPRT"})
# Commands after which a REST marker still holds (every other one clears it once it has run).
_REST_KEPT_BY = frozenset({b"REST", b"PASV", b"EPSV", b"PORT", b"EPRT", b"TYPE"})
_TELNET_PREFIX = re.compile(rb"(?:\xff[\xf0-\xfe])+")  # IAC + Telnet command (IP, DM, ...)
_NO_DATA_CONNECTION = "425 No data connection: send PASV or EPSV (or PORT/EPRT) first."
_TRANSFER_BUSY = "503 A transfer is in progress: USER and REIN only after it ends (or after ABOR)."
# The level of each pyftpdlib logger method its handlers pass as ``logfun`` (see FtpsdHandler.log).
_LOGFUN_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


_EAGER_DEBUG = pyftpdlib.log.debug


def lazy_debug(s: str, inst: object = None) -> None:
    """pyftpdlib's ``debug(s, inst)``, formatted only when its logger writes debug lines.

    pyftpdlib's own builds ``"[debug] " + s + repr(inst)`` before ``logger.debug`` decides
    anything: its IO loop, TLS mixin and passive listener call it several times per data
    connection (closing a listener, securing and establishing each data connection, each
    handshake ``WANT_READ``), each time formatting the repr of a dispatcher, with debug logging
    off. With debug on, the same line is logged as before."""
    if logger.isEnabledFor(logging.DEBUG):
        _EAGER_DEBUG(s, inst)


# Every pyftpdlib module that imported ``debug`` by name calls this one instead.
for _module in (
    pyftpdlib.log,
    pyftpdlib.ioloop,
    pyftpdlib.servers,
    pyftpdlib.handlers.ftp.control,
    pyftpdlib.handlers.ftp.data,
    pyftpdlib.handlers.ftp.dispatchers,
    pyftpdlib.handlers.ftps.ssl,
):
    if getattr(_module, "debug", None) is _EAGER_DEBUG:
        _module.debug = lazy_debug


class Waker(AsyncChat):
    """Runs callbacks posted from worker threads on the IO loop (self-pipe pattern)."""

    def __init__(self, ioloop) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._pending: collections.deque = collections.deque()
        self._lock = threading.Lock()
        super().__init__(self._reader, ioloop=ioloop)

    def post(self, func, *args: Any) -> None:
        with self._lock:
            self._pending.append((func, args))
        # A full pipe means the reader already has wake-ups queued.
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._reader.recv(4096)
        while True:
            with self._lock:
                if not self._pending:
                    return
                func, args = self._pending.popleft()
            try:
                func(*args)
            except Exception:
                log.exception("callback from the password-check pool failed")

    handle_read_event = handle_read

    def close(self) -> None:
        super().close()
        self._writer.close()


@dataclass
class Runtime:
    """Per-process state shared by all sessions of a worker; counters live in SharedLimits."""

    limits: SharedLimits = field(default_factory=lambda: SharedLimits(slots=64))
    ban_after_failures: int = 5
    ban_seconds: int = 600
    sessions: set = field(default_factory=set)
    xferlog: Any = None
    counters: Counters = field(default_factory=Counters)  # for `ftpsd metrics` (ftpsd.counters)
    pool: ThreadPoolExecutor | None = None
    waker: Waker | None = None

    def banned(self, ip: str) -> bool:
        return self.limits.banned(ip, self.ban_seconds)

    def begin_attempt(self, ip: str) -> Attempt:
        """Reserve a password check for ``ip`` (:meth:`SharedLimits.begin_attempt`)."""
        return self.limits.begin_attempt(ip, self.ban_after_failures, self.ban_seconds)

    def finish_attempt(self, ip: str, ok: bool) -> bool:
        """Settle a reserved attempt; True if the address is banned now."""
        return self.limits.finish_attempt(ip, ok, self.ban_after_failures, self.ban_seconds)


class ReuseGatedDTPHandler(FtpsdDTPHandler):
    """The data channel with a hard gate: no byte is written before the session-reuse check.

    TLS 1.3 lets a server send application data right after its own Finished, before the client's
    Finished arrives ("0.5-RTT"), and pyftpdlib pushes a queued RETR/LIST producer the moment the
    data connection is accepted; that ``SSL_write`` then drives the handshake itself and the data
    could leave before ``handle_ssl_established`` (where session reuse is checked) ever runs. So
    ``send`` refuses until the handshake has completed through the mixin's handshake step, which
    runs the check synchronously. Kept here, outside :mod:`ftpsd.dtp` (whose data path is tuned
    for speed), so that tuning can never remove it.
    """

    def send(self, data) -> int:
        if self._ssl_requested and not self._ssl_established:
            return 0  # the write interest stays registered; sending resumes after the check
        return super().send(data)


def _xferlog_name(path: str) -> str:
    """xferlog fields are space-separated: escape (:func:`ftpsd.safetext.escape`), then '_'."""
    return escape(path).replace(" ", "_")


# Random draws from the passive range before its untried ports are listed (see _random_order).
_RANDOM_DRAWS = 16
# Passive ports are drawn from the kernel's generator: which port of the range the next transfer
# listens on is not predictable from earlier replies (a stranger must find it; docs/benchmark.md
# "Not changed", the kept listener). pyftpdlib drew them from the seeded Mersenne Twister.
_PORT_RANDOM = random.SystemRandom()


def _random_order(ports, skip, limit: int):
    """Up to ``limit`` ports of ``ports`` (a sequence) not in ``skip``, each once, in random order.

    A PASV almost always binds its first draw, so the range is not copied for it: up to
    ``_RANDOM_DRAWS`` random draws first (repeats skipped), and only if none of them was free
    the ports not drawn yet, shuffled; ``limit`` >= ``len(ports)`` yields every port of the range
    not in ``skip`` before the iterator ends (a refusal means none was free)."""
    count = len(ports)
    seen = set(skip)
    given = 0
    for _draw in range(_RANDOM_DRAWS):
        if given >= limit:
            return
        port = ports[_PORT_RANDOM.randrange(count)]
        if port not in seen:
            seen.add(port)
            given += 1
            yield port
    rest = [port for port in ports if port not in seen]
    _PORT_RANDOM.shuffle(rest)
    yield from rest[: max(0, limit - given)]


class PassivePortsExhausted(OSError):
    """Every port of ``passive_ports`` is taken; answered 425, never a port outside the range."""


class PassivePortsCapped(PassivePortsExhausted):
    """The user already holds ``max_passive_ports_per_user`` passive listeners (all sessions)."""


class RangedPassiveDTP(PassiveDTP):
    """The passive listener: ports stay in the range, and nobody but the session's own client can
    make it say anything on the control connection.

    pyftpdlib's binds a kernel-chosen port (``bind((ip, 0))``) when the range is exhausted, outside
    what the firewall opens: refused here. It answers a connection from a foreign address with
    ``425`` on the *control* connection (a reply to no command, so every later reply of the victim
    is off by one) and says ``421 Passive data channel timed out`` when nobody connected: here a
    foreign connection is closed without a word (and logged), and an unused listener closes
    silently, unless a transfer command waits for it, which then gets its one final reply.

    Each listener counts against its user's ``max_passive_ports_per_user`` in the shared table
    from before it binds until it closes (:meth:`close`, the one way every listener ends), so one
    user, from any number of sessions and addresses, cannot take the whole range.
    """

    _counted_user = ""
    _port = 0  # the port this listener's socket is bound to (0: none yet)

    def __init__(self, cmd_channel, extmode: bool = False) -> None:
        user, limits = cmd_channel.username, cmd_channel.runtime.limits
        if not limits.passive_open(user, cmd_channel.max_passive_ports_per_user):
            raise PassivePortsCapped(errno.EADDRINUSE, "max_passive_ports_per_user reached")
        self._counted_user = user
        try:
            self._open(cmd_channel, extmode)
        except BaseException:
            self._release_port()
            raise

    def _open(self, cmd_channel, extmode: bool) -> None:
        """pyftpdlib's ``PassiveDTP.__init__`` without the work it repeated on every PASV/EPSV:
        it asked the kernel for the control connection's local address (which cannot change;
        :meth:`FtpsdHandler.local_ip` asks once per session), copied the whole port range into a
        new list to draw a port from it (work growing with the range: 2 µs per PASV for 2,000
        ports, 15 µs for 15,000), read ``SO_REUSEADDR`` before setting it, and asked the socket for
        the port it had just bound. The same address family and bound address (the control
        connection's, :meth:`FtpsdHandler.local_family`), the same port choice (random, every free
        port of the range tried before a refusal), the same 227/229 reply and timer."""
        self.cmd_channel = cmd_channel
        self.log = cmd_channel.log
        self.log_exception = cmd_channel.log_exception
        Acceptor.__init__(self, ioloop=cmd_channel.ioloop)
        local_ip = cmd_channel.local_ip()
        if local_ip in cmd_channel.masquerade_address_map:
            masqueraded_ip = cmd_channel.masquerade_address_map[local_ip]
        else:
            masqueraded_ip = cmd_channel.masquerade_address or None
        self.create_socket(cmd_channel.local_family(), socket.SOCK_STREAM)
        ports = cmd_channel.passive_ports
        if ports:
            self._bind_free(local_ip, _random_order(ports, (), len(ports)))
        else:
            self.bind((local_ip, 0))  # no range configured: the kernel's choice
        self.listen(self.backlog or cmd_channel.server.backlog)
        port = self._port or self.socket.getsockname()[1]
        if extmode:
            cmd_channel.respond(f"229 Entering extended passive mode (|||{port}|).")
        else:
            ip = masqueraded_ip or local_ip
            if ip.startswith("::ffff:"):  # an IPv4 client of an IPv6 socket
                ip = ip[7:]
            host = ip.replace(".", ",")
            cmd_channel.respond(f"227 Entering passive mode ({host},{port // 256},{port % 256}).")
        if self.timeout:
            self.call_later(self.timeout, self.handle_timeout)

    def _release_port(self) -> None:
        if self._counted_user:
            self.cmd_channel.runtime.limits.passive_close(self._counted_user)
            self._counted_user = ""

    def close(self) -> None:
        self._release_port()
        super().close()

    def handle_accepted(self, sock, addr) -> None:
        channel = self.cmd_channel
        if channel.connected and channel.remote_ip != addr[0] and not channel.permit_foreign_addresses:
            log.warning(
                "%s:%s data connection from foreign address %s:%s dropped",
                channel.remote_ip,
                channel.remote_port,
                addr[0],
                addr[1],
            )
            with contextlib.suppress(OSError):
                sock.close()
            return  # keep listening for the session's own client
        super().handle_accepted(sock, addr)
        # A connection that failed at once (closed, handshake refused) never reaches the transfer
        # waiting for it, and this listener is closed: that transfer gets its final reply now.
        if channel.connected and channel.data_channel is None and channel.transfer_queued():
            channel.fail_queued_transfer("425 Can't open data connection.")

    def handle_timeout(self) -> None:
        channel = self.cmd_channel
        self.close()
        if channel._dtp_acceptor is self:
            channel._dtp_acceptor = None
        if channel.connected and channel.transfer_queued():
            channel.fail_queued_transfer("425 Can't open data connection: nobody connected in time.")

    def bind(self, addr) -> None:
        if addr[1] == 0 and self.cmd_channel.passive_ports:
            self._refuse()
        super().bind(addr)
        self._port = addr[1]

    # Ports tried again after losing a listen() race before answering 425 (bounded work per PASV).
    relisten_attempts = 16

    def listen(self, num: int) -> None:
        ports = self.cmd_channel.passive_ports
        if not ports:
            super().listen(num)
            return
        tried: set[int] = set()
        for _attempt in range(self.relisten_attempts + 1):
            port = self._port
            # Every port refused with EPERM leaves the socket unbound: listen() would pick one.
            if port == 0:
                break
            try:
                super().listen(num)
                return
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
            # SO_REUSEADDR (needed: finished data connections leave TIME_WAIT on these ports)
            # lets two workers bind the same free port; only the first listen() wins.
            tried.add(port)
            self._rebind(ports, tried)
        self._refuse()

    def _rebind(self, ports, tried: set[int]) -> None:
        """A fresh socket bound to a port of ``ports`` not in ``tried`` (at most
        ``relisten_attempts`` tried; left unbound if none is free)."""
        family, ip = self.socket.family, self.socket.getsockname()[0]
        self.del_channel()
        self.socket.close()
        self._port = 0
        self.create_socket(family, socket.SOCK_STREAM)
        self._bind_free(ip, _random_order(ports, tried, self.relisten_attempts))

    def _bind_free(self, ip: str, candidates) -> None:
        """Bind to the first of ``candidates`` that is free (left unbound if none is)."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in candidates:
            try:
                self.bind((ip, port))
                return
            except OSError as err:
                if err.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EPERM):
                    raise

    def _refuse(self) -> None:
        self.close()
        raise PassivePortsExhausted(errno.EADDRINUSE, "no free port in passive_ports")


class FtpsdHandler(TLS_FTPHandler):
    """Explicit FTPS: plain greeting, then AUTH TLS before anything else."""

    # Set by ftpsd.daemon from the configuration (and swapped on reload).
    runtime: Runtime = Runtime()
    authorizer: FtpsdAuthorizer = FtpsdAuthorizer([])
    tls_contexts: ContextFactory | None = None
    # This session's own SSL context, made when it starts TLS; its data connections use it too.
    ssl_context: SSL.Context | None = None
    # The verdict on the client certificate of the control connection (ftpsd.clientcert), or
    # None where this listener asks for none; decided once, right after the TLS handshake.
    client_verdict: Verdict | None = None
    require_session_reuse = True
    tls_control_required = True
    tls_data_required = True
    dtp_handler = ReuseGatedDTPHandler
    passive_dtp = RangedPassiveDTP
    abstracted_fs = HomeFS
    permit_foreign_addresses = False  # data connections only from the control peer (no FXP)
    permit_privileged_ports = False
    use_sendfile = False
    max_login_attempts = 3
    max_passive_ports_per_user = 0  # 0 = no cap; set by ftpsd.daemon from the configuration
    allow_hard_links = False  # HomeFS opens files with other hard links only if set
    implicit = False
    login_timeout = 60  # seconds from connect (or REIN/USER) to a successful login
    handle_read_event = tls_read_event  # pyftpdlib's, without a context manager per event
    handle_write_event = tls_write_event
    max_line = 2048  # bytes in one command line; a longer line is refused whole
    # Replies queued for a client that does not read them: past this many bytes the session reads
    # and runs no further command until they drain (a reply being produced, e.g. STAT of a
    # directory, counts as this much).
    max_reply_backlog = 64 * 1024
    # Lines read but not yet run (a login being decided, a reply backlog): past this the session
    # ends (reads stop first, so only a client that defeats that gets here).
    max_held_bytes = 256 * 1024
    # Seconds a closing session (421, QUIT, a TLS shutdown) may take to send its last replies and
    # close_notify before the connection is cut: a client that never reads cannot keep it open.
    close_grace = 5.0

    def __init__(self, conn, server, ioloop=None) -> None:
        self.user_max_rate = 0
        self._user_counted = ""
        self._counted_ip = ""
        self._uploads: dict[str, tuple[str, bool]] = {}  # temporary path -> (final path, replace)
        self._upload_names: dict[str, str] = {}  # temporary path -> final path, until logged
        self._rnfr_identity: tuple[int, int] | None = None
        self._greeted = False
        self._checking_password = False
        self._auth_delay = False  # a failed login's reply is still being delayed
        self._held: collections.deque[bytes | None] = collections.deque()  # lines read meanwhile
        self._held_bytes = 0
        self._partial: tuple[list[bytes], int] | None = None  # the next line's start, while one runs
        self._resume_due = False  # a _resume is scheduled (the reply backlog drained)
        self._close_deadline = None  # the close_grace timer, once the session closes
        self._overlong = False  # discarding the rest of a line longer than max_line
        self._login_timer = None
        self._data_failure = ""  # why a data connection failed before any command needed it
        self._released = False
        # Snapshot the policy current at connect time: a reload must not change it mid-session.
        self.tls_contexts = type(self).tls_contexts
        super().__init__(conn, server, ioloop)
        self.require_session_reuse = type(self).require_session_reuse
        self.runtime = type(self).runtime

    @classmethod
    def get_ssl_context(cls) -> None:
        # pyftpdlib asks (when a server is made, and at connect time) for one context shared by
        # every session; ftpsd gives each session its own, made when it starts TLS
        # (secure_connection), so this only checks that the material is loaded.
        if cls.tls_contexts is None:
            raise ValueError("ftpsd: no TLS context loaded")

    def secure_connection(self, ssl_context: SSL.Context | None = None) -> None:
        """Start TLS on the control connection with this session's own, new SSL context.

        Its session cache and ticket keys belong to this session alone, so only this session's
        TLS session can be resumed on its data connections (docs/ftpsd.md, "Binding of data
        connections"). pyftpdlib passes ``self.ssl_context``, which is None until here.
        """
        if self.ssl_context is None:
            assert self.tls_contexts is not None
            try:
                self.ssl_context = self.tls_contexts.new_context("implicit" if self.implicit else "explicit")
            except SSL.Error as exc:
                tls_log.error("%s: cannot create a TLS context: %s", self.remote_ip, exc)
                self.respond("421 TLS unavailable; try again later.")
                self.close_when_done()
                return
        super().secure_connection(self.ssl_context)

    # --- connection --------------------------------------------------------------------
    def handle(self) -> None:
        if self.runtime.banned(self.remote_ip):
            auth_log.warning("refused %s: address banned after failed logins", self.remote_ip)
            self.runtime.counters.add("sessions_refused/banned")
            self.respond("421 Too many failed logins from your address; try again later.")
            self.close_when_done()
            return
        self._start_login_timer()
        if self.implicit:
            self.on_connect()
            self.secure_connection(self.ssl_context)
            return
        super().handle()

    def handle_ssl_established(self) -> None:
        conn = self.socket
        # Every later handshake on this session's context is one of its data connections.
        seal_control_context(self.ssl_context)
        tls_log.info(
            "%s:%s control TLS %s %s session_reused=%s",
            self.remote_ip,
            self.remote_port,
            conn.get_protocol_version_name(),
            conn.get_cipher_name(),
            "yes" if session_reused(conn) else "no",
        )
        self._judge_client_certificate(conn)
        if self.implicit and not self._greeted:
            self._greeted = True
            self.respond(f"220 {self.banner}")

    def _judge_client_certificate(self, conn: SSL.Connection) -> None:
        """Verify the control connection's client certificate once (ftpsd.clientcert); every
        login of the session decides with this verdict."""
        client = self.tls_contexts.client if self.tls_contexts is not None else None
        listener = "implicit" if self.implicit else "explicit"
        if client is None or client.mode(listener) == "off":
            return
        try:
            self.client_verdict = verdict = client.verify(conn)
        except Exception:
            log.exception("client certificate check failed")
            self.client_verdict = verdict = Verdict("untrusted")
        if verdict.fingerprint:
            tls_log.info(
                "%s:%s client certificate %s sha256=%s subject=%s",
                self.remote_ip,
                self.remote_port,
                verdict.status,
                verdict.fingerprint,
                verdict.subject,
            )

    def _login_stands(self) -> str:
        """Empty if this session's login is still granted by the current users and client trust,
        else why not. Judged by the login rules themselves (ftpsd.clientcert.decide): the
        account's entry must be unchanged (the password it logged in with is the one on file) and
        its client certificate, judged again by the current CAs and CRLs, must still do."""
        current = type(self).authorizer
        name = self.username
        account = current.get_user(name)
        if account is None:
            return "account removed"
        if account != self.authorizer.get_user(name):
            return "account changed"
        client = type(self).tls_contexts.client if type(self).tls_contexts is not None else None
        listener = "implicit" if self.implicit else "explicit"
        verdict = None
        if client is not None and client.mode(listener) != "off":
            verdict = client.verify_again(self.client_verdict or NO_CERTIFICATE)
        ok, reason = decide(
            required=client is not None and client.mode(listener) == "require",
            verdict=verdict,
            account=account,
            name=name,
            by_identity=current.by_identity,
            password_ok=bool(account.hash),
        )
        if not ok:
            return f"client certificate {reason}" if reason else "login no longer allowed"
        self.authorizer = current  # judged: this snapshot serves the session from now on
        return ""

    def _end_changed_account(self, cmd: str, arg: str, why: str) -> None:
        auth_log.warning("session ended user=%s ip=%s: %s by a reload", self.username, self.remote_ip, why)
        reply = "421 Your account changed: log in again."
        self.respond(reply)
        self.log_cmd(cmd, arg, 421, reply[4:])
        self.close_when_done()

    def _certificate_required(self) -> bool:
        client = self.tls_contexts.client if self.tls_contexts is not None else None
        return client is not None and client.mode("implicit" if self.implicit else "explicit") == "require"

    def _certificate_decision(self, username: str, password_ok: bool) -> tuple[bool, str | None]:
        """(ok, reason) of a login as ``username`` (ftpsd.clientcert.decide) with this session's
        client certificate and users snapshot."""
        authorizer = self.authorizer
        return decide(
            required=self._certificate_required(),
            verdict=self.client_verdict,
            account=authorizer.get_user(username),
            name=username,
            by_identity=authorizer.by_identity,
            password_ok=password_ok,
        )

    def log_data_tls(self, version: str, cipher: str, reused: bool) -> None:
        tls_log.info(
            "%s:%s user=%s data TLS %s %s session_reused=%s",
            self.remote_ip,
            self.remote_port,
            self.username or "-",
            version,
            cipher,
            "yes" if reused else "no",
        )

    # --- accounting: one release point every way of ending passes through ---------------
    def del_channel(self, map=None) -> None:
        """asyncore's ``dispatcher.close()`` calls this on every way a session ends: ``close()``,
        pyftpdlib's ``handle_error`` (which calls the base class's ``close`` and so skips any
        override here), TLS shutdown, timeouts, ``close_when_done``. ``AsyncChat.close`` marks the
        handler closed first, so a closed handler here is a session ending; the password check
        also unregisters the socket while the session lives on (not closed: nothing released)."""
        super().del_channel(map)
        if self._closed:
            self._release()

    def _release(self) -> None:
        """Give back what this session took: idempotent (``_released``)."""
        if self._released:
            return
        self._released = True
        self._stop_login_timer()
        if self._close_deadline is not None and not self._close_deadline.cancelled:
            self._close_deadline.cancel()
        try:
            self._release_user()
            for temp in list(self._uploads):
                self._discard_upload(temp)
        finally:
            try:
                if self.fs is not None:
                    self.fs.close()  # the home's descriptor (HomeFS)
            finally:
                if self._counted_ip:
                    self.runtime.sessions.discard(self)
                    self.runtime.limits.disconnect(self._counted_ip, self.runtime.ban_seconds)
                    self._counted_ip = ""

    # --- a client that breaks its TLS stream: the session ends, one line in the log ---------
    def handle_error(self) -> None:
        """Every exception pyftpdlib's loop catches for this session comes here. A TLS error is
        the client's doing (a record that does not decrypt, an alert, a renegotiation attempt,
        a reset under a reply), not a bug of the daemon: the session is cut with one log line
        instead of a traceback. Anything else keeps pyftpdlib's handling (logged with its
        traceback, then closed)."""
        err = sys.exc_info()[1]
        if isinstance(err, SSL.Error):
            self.tls_failed(describe_ssl_error(err))
            return
        super().handle_error()

    def tls_failed(self, reason: str) -> None:
        """The control connection's TLS stream is broken: end the session now (no reply, no TLS
        shutdown: neither could be sent), releasing its counts (``_release``)."""
        if self._closed:
            return
        tls_log.info(
            "%s:%s user=%s control TLS error, session closed: %s",
            self.remote_ip,
            self.remote_port,
            self.username or "-",
            reason,
        )
        self._cut()

    # --- session log lines: formatted only when a handler will write them ------------------
    def log(self, msg: str, logfun=logger.info) -> None:
        """pyftpdlib formats the session prefix (``log_prefix % self.__dict__``) before ``logfun``
        decides anything: every reply is logged at debug (``respond``), every transfer at info
        through pyftpdlib's logger (kept at warning unless debugging), so three or more prefixes
        per small file were formatted for nothing. Here a pyftpdlib logger method whose level is
        off returns at once; anything else is logged as before."""
        if getattr(logfun, "__self__", None) is logger:
            level = _LOGFUN_LEVELS.get(getattr(logfun, "__name__", ""))
            if level is not None and not logger.isEnabledFor(level):
                return
        super().log(msg, logfun)

    # --- client bytes on the way back out ------------------------------------------------
    def push(self, data: str) -> None:
        """Every reply line leaves through here: client-supplied text echoed in a reply (paths,
        command names) cannot add lines or terminal escapes (:func:`ftpsd.safetext.escape_reply`).

        A reply on an established TLS control connection with nothing queued before it is
        written at once with one ``SSL_write`` (one TLS record, one ``send``), which is what
        asynchat's ``push`` -> ``initiate_send`` -> pyftpdlib's ``send`` -> pyOpenSSL's ``send``
        ends in too, after a queue, a copy and an exception check per layer. Whatever cannot go
        out so (a handshake or shutdown under way, something queued, a full socket, an error)
        takes that usual path with the same bytes, which handles it as before; a partly written
        reply queues its rest. Each reply is still sent once, in order."""
        raw = escape_reply(data).encode(self.encoding)
        if self._reply_now(raw):
            return
        AsyncChat.push(self, raw)

    def _reply_now(self, raw: bytes) -> bool:
        """Write ``raw`` with one ``SSL_write`` if nothing stands before it; False if the usual
        path must send it (nothing written)."""
        if (
            self.producer_fifo
            or not self.connected
            or not self._ssl_established
            or self._ssl_closing
            or self._ssl_want_read
            or self._ssl_want_write
            or not isinstance(self.socket, SSL.Connection)
        ):
            return False
        ssl = self.socket._ssl
        _lib.ERR_clear_error()
        sent = _lib.SSL_write(ssl, raw, len(raw))
        if sent <= 0:
            if _lib.SSL_get_error(ssl, sent) in (_lib.SSL_ERROR_WANT_READ, _lib.SSL_ERROR_WANT_WRITE):
                _lib.ERR_clear_error()
                return False  # the usual path writes the same bytes (as OpenSSL requires) later
            # A reset, a broken pipe, a TLS failure: nothing can be sent on this session any
            # more (retrying through pyOpenSSL raised "SSL.Error: []" and logged a traceback).
            reason = last_ssl_error(self.socket, sent)
            _lib.ERR_clear_error()
            self.tls_failed(reason)
            return True
        if sent < len(raw):  # a full socket took part of it (partial writes are on)
            AsyncChat.push(self, raw[sent:])
        return True

    # --- command lines: framed whole, run one at a time, in order ---------------------------
    def decode(self, data: bytes) -> str:
        """A command line must be UTF-8 (RFC 2640): pyftpdlib replaced invalid bytes with U+FFFD,
        so ``caf\\xe9`` and ``caf\\xe8`` (Latin-1 names) were both ``caf`` + U+FFFD: a second
        upload replaced the first, a ``DELE`` removed a file the client never named. Strict
        decoding makes pyftpdlib answer ``501 Can't decode command.`` before anything runs."""
        if data[:1] == b"\xff":  # RFC 959 4.1.3: Telnet IP/Synch may precede ABOR, STAT, QUIT
            command = _TELNET_PREFIX.sub(b"", data, count=1)
            if command[:4].upper() in (b"ABOR", b"STAT", b"QUIT"):
                data = command
        return data.decode(self.encoding)

    def collect_incoming_data(self, data: bytes) -> None:
        """pyftpdlib empties its line buffer past 2,048 bytes but goes on reading, so the tail of an
        over-long line ran as a command of its own. Here the whole line is discarded up to its CRLF
        and answered once (``found_terminator``); memory stays bounded by ``max_line``."""
        if self._overlong:
            return
        self._in_buffer.append(data)
        self._in_buffer_len += len(data)
        if self._in_buffer_len > self.max_line:
            self._overlong = True
            self._in_buffer = []
            self._in_buffer_len = 0

    def found_terminator(self) -> None:
        if self._closed or self._closing:
            # The session ended (QUIT, a cut) while the client's read still held more lines:
            # asynchat would go on running them on a closed handler. Nothing after the end runs.
            self.ac_in_buffer = b""
            self._in_buffer = []
            self._in_buffer_len = 0
            return
        line = None if self._overlong else b"".join(self._in_buffer)
        self._overlong = False
        self._in_buffer = []
        self._in_buffer_len = 0
        if self._busy() or self._held or self._backlogged():
            # A login is being decided, or the client is not reading its replies: what it
            # pipelined waits its turn (the socket is not read meanwhile, see _pace_reads).
            self._held.append(line)
            self._held_bytes += len(line or b"") + 2
            if self._held_bytes > self.max_held_bytes:
                log.warning(
                    "%s:%s too many commands pipelined unread: closing", self.remote_ip, self.remote_port
                )
                self._held.clear()
                self._cut()
            return
        self._run_line(line)

    def _run_line(self, line: bytes | None) -> None:
        if line is None:
            if self._idler is not None and not self._idler.cancelled:
                self._idler.reset()
            self._restart_position = 0  # a command like any other (REST: below)
            self.respond_w_warning("500 Command too long.")
            return
        # A held line runs after later reads: the start of the next line may already be in
        # _in_buffer. It stays the next line's (it used to be dropped, so the rest of that line
        # ran as a command of its own), unless the command discards the input (AUTH TLS).
        self._partial = (self._in_buffer, self._in_buffer_len)
        self._in_buffer = [line]
        self._in_buffer_len = len(line)
        try:
            super().found_terminator()
        finally:
            if self._partial is not None:
                self._in_buffer, self._in_buffer_len = self._partial
                self._partial = None
        # REST applies to the transfer command that follows it (RFC 959: "shall be immediately
        # followed by"); data-connection setup may come between. pyftpdlib kept the marker through
        # any other command, so a STOR long after a REST (whose APPE was refused, say) overwrote
        # in place from the marker instead of replacing the file.
        if self._restart_position and line.split(b" ", 1)[0].upper() not in _REST_KEPT_BY:
            self._restart_position = 0

    def _busy(self) -> bool:
        """True while a login is being decided (password check, or a failed login's delay)."""
        return self._checking_password or self._auth_delay

    def _resume(self) -> None:
        """Run the held lines, in order, until the next one blocks (a login being decided, or
        replies piling up unread)."""
        self._resume_due = False
        if self.producer_fifo and not self._closed and self._fileno in self.ioloop.socket_map:
            self.initiate_send()  # after add_channel (READ only): write what waits, pace reads
        while (
            self._held
            and not self._busy()
            and not self._backlogged()
            and not self._closed
            and not self._closing
        ):
            line = self._held.popleft()
            self._held_bytes -= len(line or b"") + 2
            self._run_line(line)
        if self._closed or self._closing:
            self._held.clear()
            self._held_bytes = 0

    # --- replies nobody reads: bounded memory, bounded time -------------------------------
    def _backlogged(self) -> bool:
        """True while more than ``max_reply_backlog`` bytes (or 64 replies) wait to be sent: the
        kernel's buffers are full and the client is not reading. A command is a few bytes and its
        reply up to a hundred times more (``HELP``, ``STAT`` of a directory): without this, 4 MB
        of ``HELP`` never read grew a worker by 370 MB."""
        fifo = self.producer_fifo
        if not fifo:
            return False
        if len(fifo) > 64:  # 64 replies waiting is a backlog too; the sum below stays short
            return True
        limit = self.max_reply_backlog
        queued = 0
        for item in fifo:
            queued += len(item) if isinstance(item, bytes | bytearray | memoryview) else limit
            if queued > limit:
                return True
        return False

    def initiate_send(self) -> None:
        super().initiate_send()
        self._pace_reads()

    def _pace_reads(self) -> None:
        """The one place reading follows writing: while replies are backlogged the socket is
        watched for writing only (commands stay in the kernel's buffers, and then the client's);
        once they drain, pyftpdlib's ``initiate_send`` watches it for reading again and the lines
        held meanwhile run in order."""
        if self._closed or self._fileno is None or self._fileno not in self.ioloop.socket_map:
            return
        if self._backlogged():
            if self._wanted_io_events != self.ioloop.WRITE:
                self.ioloop.modify(self._fileno, self.ioloop.WRITE)
                self._wanted_io_events = self._current_io_events = self.ioloop.WRITE
        elif self._held and not self._busy() and not self._resume_due:
            self._resume_due = True  # not from inside a send: replies of held lines push again
            self.ioloop.call_later(0, self._resume, _errback=self.handle_error)

    def close_when_done(self) -> None:
        super().close_when_done()
        self._arm_close_deadline()

    def close(self) -> None:
        super().close()  # on an established TLS connection: starts the TLS shutdown
        self._arm_close_deadline()

    def _arm_close_deadline(self) -> None:
        if self._closed or self._close_deadline is not None:
            return
        self._close_deadline = self.ioloop.call_later(self.close_grace, self._cut, _errback=self.handle_error)

    def _cut(self) -> None:
        """End the session now: no more replies, no TLS shutdown (which needs the client to read)."""
        if self._closed:
            return
        self._error = True  # SSLConnectionMixin.close: close the socket, no SSL_shutdown
        self._ssl_closing = False
        self.producer_fifo.clear()
        self.close()

    # --- login deadline -------------------------------------------------------------------
    def _start_login_timer(self) -> None:
        self._stop_login_timer()
        self._login_timer = self.ioloop.call_later(
            self.login_timeout, self._login_expired, _errback=self.handle_error
        )

    def _stop_login_timer(self) -> None:
        if self._login_timer is not None and not self._login_timer.cancelled:
            self._login_timer.cancel()
        self._login_timer = None

    def _login_expired(self) -> None:
        self._login_timer = None
        if self._closed or self.authenticated:
            return
        if self._busy():  # its reply is on the way: end the session right after it
            self._login_timer = self.ioloop.call_later(1, self._login_expired, _errback=self.handle_error)
            return
        log.info("%s:%s no login within %ss: closing", self.remote_ip, self.remote_port, self.login_timeout)
        if self._ssl_accepting:  # mid-handshake: no reply can be sent
            self.close()
            return
        self.respond("421 Login timed out.")
        self.close_when_done()

    def ftp_AUTH(self, line: str) -> None:
        """After ``234`` only TLS may follow: plaintext the client pipelined behind ``AUTH TLS``
        (in the same packet or before the handshake) is discarded, never run as if it came over
        TLS (the STARTTLS command-injection class, CVE-2011-0411)."""
        starting = not self._ssl_requested
        super().ftp_AUTH(line)
        if not (starting and self._ssl_requested):  # refused, or TLS already up (503)
            return
        # Unread bytes, the start of the next line, and whole lines held (replies backlogged).
        partial = self._partial[1] if self._partial is not None else self._in_buffer_len
        discarded = len(self.ac_in_buffer) + partial + self._held_bytes
        self.ac_in_buffer = b""
        self._in_buffer = []
        self._in_buffer_len = 0
        self._partial = None
        self._overlong = False
        self._held.clear()
        self._held_bytes = 0
        if discarded:
            log.warning(
                "%s:%s discarded %d plaintext bytes pipelined after AUTH TLS",
                self.remote_ip,
                self.remote_port,
                discarded,
            )

    # --- passive ports stay in the configured range --------------------------------------
    _local_ip = ""
    _local_family = socket.AF_INET

    def local_ip(self) -> str:
        """The control connection's local address: it cannot change while the connection lives,
        so the kernel is asked once per session (pyftpdlib asked twice per PASV/EPSV)."""
        if not self._local_ip:
            sock = self.socket
            self._local_ip = sock.getsockname()[0]
            self._local_family = sock.family
        return self._local_ip

    def local_family(self) -> int:
        """The control connection's address family, the passive listener's. pyftpdlib takes it
        from the control socket on an IPv4 server and from ``getaddrinfo`` of the local address
        on any other (port 0 bound as a probe, outside the range): for every address a socket
        reports that is the socket's own family (an IPv4 client of a dual-stack listener,
        ``::ffff:a.b.c.d``, included). tests/unit/ftpsd/test_passive_family.py runs both."""
        self.local_ip()
        return self._local_family

    def _make_epasv(self, extmode: bool = False) -> None:
        local_ip = self.local_ip()
        if not extmode and self.local_family() == socket.AF_INET6 and not local_ip.startswith("::ffff:"):
            # A 227 reply carries an IPv4 address: on IPv6 only EPSV can answer (RFC 2428).
            self.respond("522 PASV is IPv4 only; use EPSV on IPv6 (RFC 2428).")
            return
        try:
            super()._make_epasv(extmode)
        except PassivePortsCapped:
            self._dtp_acceptor = None
            msg = (
                f"425 Too many passive ports open for this user (max {self.max_passive_ports_per_user}); "
                "close a transfer or try again later."
            )
            log.warning("%s:%s user=%s %s", self.remote_ip, self.remote_port, self.username, msg[4:])
            self.respond(msg)
        except PassivePortsExhausted:
            self._dtp_acceptor = None
            msg = "425 No free passive port in the configured range; try again later."
            log.warning("%s:%s %s", self.remote_ip, self.remote_port, msg[4:])
            self.respond(msg)

    # --- command policy ----------------------------------------------------------------
    def process_command(self, cmd: str, *args: Any, **kwargs: Any) -> None:
        if self.authenticated and self.authorizer is not type(self).authorizer and cmd != "QUIT":
            # A reload happened since this login (or since it was last judged): the login must
            # still stand under the users and client trust the daemon serves now, before any
            # command of the session runs (one gate for every command; a removed, changed or
            # revoked account keeps no session).
            why = self._login_stands()
            if why:
                self._end_changed_account(cmd, args[0] if args else "", why)
                return
        if cmd in ("USER", "PASS") and not self._ssl_established:
            msg = "TLS required: send AUTH TLS before USER/PASS."
            self.respond("530 " + msg)
            self.log_cmd(cmd, args[0] if args else "", 530, msg)
            return
        if cmd in ("PASV", "EPSV", "PORT", "EPRT") and self.tls_data_required and not self._prot:
            msg = "TLS required on the data channel: send PBSZ 0 and PROT P first."
            self.respond("521 " + msg)
            self.log_cmd(cmd, args[0] if args else "", 521, msg)
            return
        if cmd in _DATA_SETUP:
            self._data_failure = ""
            # pyftpdlib closes the current data connection here and forgets the transfer command
            # waiting on it (no final reply), or keeps it queued for the next connection.
            if self._abort_transfer():
                self.respond("426 Transfer aborted: a new data connection was requested.", logfun=logger.info)
        elif cmd in _TRANSFERS and self.authenticated and not self._data_path():
            # pyftpdlib would answer 150 and wait forever for a data connection nobody announced.
            reply, self._data_failure = self._data_failure or _NO_DATA_CONNECTION, ""
            self.respond(reply)
            self.log_cmd(cmd, args[0] if args else "", int(reply[:3]), reply[4:])
            return
        if (
            args
            and cmd != "STOU"
            and self.proto_cmds[cmd]["perm"]
            and final_name(os.path.basename(args[0])) is not None
        ):
            # The one check for every path command (pyftpdlib has mapped its argument to a path by
            # now): the temporary name of an upload is the daemon's, never a client's. Another
            # session renaming an upload in progress over the real name put a cut upload there
            # (and the upload's reply said "not stored"); reading or deleting one is no better.
            reply = _RESERVED_NAME if cmd in _CREATING else "550 Name reserved for uploads in progress."
            if cmd == "RNTO":
                self._rnfr = None
            self.respond(reply)
            self.log_cmd(cmd, args[0], int(reply[:3]), reply[4:])
            return
        if cmd in _CREATING and args and not os.path.basename(args[0]).isprintable():
            self.respond(_UNPRINTABLE_NAME)
            self.log_cmd(cmd, args[0], 553, _UNPRINTABLE_NAME[4:])
            return
        super().process_command(cmd, *args, **kwargs)

    # --- data connections: every transfer command gets one final reply -------------------
    def _data_path(self) -> bool:
        """A data connection exists or is being made (PASV/EPSV listening, PORT/EPRT connecting)."""
        return not (self.data_channel is None and self._dtp_acceptor is None and self._dtp_connector is None)

    def transfer_queued(self) -> bool:
        """A transfer command answered 150 waits for its data connection."""
        return self._out_dtp_queue is not None or self._in_dtp_queue is not None

    def _transfer_pending(self) -> bool:
        """A transfer command has not had its final reply yet."""
        channel = self.data_channel
        return self.transfer_queued() or (channel is not None and channel.has_transfer())

    def drop_queued_transfer(self) -> None:
        """Forget a queued transfer: close its file; a queued upload's temporary file is removed."""
        out_queue, in_queue = self._out_dtp_queue, self._in_dtp_queue
        self._out_dtp_queue = self._in_dtp_queue = None
        for file_obj in (out_queue[2] if out_queue else None, in_queue[0] if in_queue else None):
            if file_obj is None or not hasattr(file_obj, "close"):
                continue
            with contextlib.suppress(OSError):
                file_obj.close()
            self._discard_upload(getattr(file_obj, "name", ""))

    def fail_queued_transfer(self, reply: str) -> None:
        """The queued transfer's data connection will not come: its final reply (the data
        connection's own failure if one was noted, else ``reply``)."""
        self.drop_queued_transfer()
        reply, self._data_failure = self._data_failure or reply, ""
        self.respond(reply, logfun=logger.info)

    def note_data_failure(self, reply: str) -> None:
        """A data connection failed before any command needed it (called by the DTP instead of
        replying to no command): the next transfer command is answered with this."""
        self._data_failure = reply

    def _abort_transfer(self) -> bool:
        """End whatever data connection exists or is being made, at once and without a reply from
        the data channel; True if a transfer command was waiting for its final reply (the caller
        sends it). A queued upload's temporary file is removed."""
        pending = self._transfer_pending()
        self.drop_queued_transfer()
        self._shutdown_connecting_dtp()
        channel = self.data_channel
        if channel is not None:
            self.data_channel = None
            channel.abort()
        return pending

    def ftp_ABOR(self, line: str) -> None:
        """pyftpdlib's ABOR forgets a transfer command still waiting for its data connection (150
        sent and no final reply ever), and closes a data connection with a TLS shutdown that can
        finish later and then answer again. Here the transfer command gets ``426``, then ABOR its
        ``226``; the data connection is closed at once; a queued upload's temporary file goes."""
        if not self._data_path() and not self.transfer_queued():
            self.respond("225 No transfer to abort.")
        elif self._abort_transfer():
            self.respond("426 Transfer aborted.", logfun=logger.info)
            self.respond("226 ABOR command successful.")
        else:
            self.respond("225 ABOR command successful; data channel closed.")

    def ftp_NLST(self, path: str):
        """pyftpdlib's NLST with each name escaped (:func:`ftpsd.safetext.escape_name`): a name
        made by a local account with CR/LF in it cannot add entries to the listing."""
        try:
            if self.fs.isdir(path):
                listing = sorted(self.run_as_current_user(self.fs.listdir, path))
            else:
                self.fs.lstat(path)  # raises if missing
                listing = [os.path.basename(path)]
        except (OSError, FilesystemError) as err:
            self.respond(f"550 {strerror(err)}.")
            return None
        data = "".join(escape_name(name) + "\r\n" for name in listing)
        self.push_dtp_data(data.encode(self.encoding, self.unicode_errors), cmd="NLST")
        return path

    def ftp_PROT(self, line: str) -> None:
        if line.upper() == "C" and self.tls_data_required and isinstance(self.socket, SSL.Connection):
            self.respond("534 PROT C refused by policy: data connections must be protected (PROT P).")
            return
        super().ftp_PROT(line)

    # --- authentication: one login at a time; identity changes wait for transfers ------
    def ftp_USER(self, line: str) -> None:
        if self._transfer_pending():
            # The transfer runs under the user who started it: its commit, its xferlog line and
            # its reply must not be made under another user's name or filesystem.
            self.respond(_TRANSFER_BUSY)
            return
        if self.client_verdict is not None and self.client_verdict.ok:
            # An auth = certificate account whose certificate this is logs in now: 232 (RFC 4217,
            # "User logged in, authorized by security data exchange"), no PASS.
            self.authorizer = type(self).authorizer  # the users snapshot of this login
            ok, _reason = self._certificate_decision(line, password_ok=False)
            if ok:
                if self.authenticated:
                    self.flush_account()
                self.username = line
                if self.runtime.banned(self.remote_ip):
                    self._refuse_banned(line)
                    return
                self._settle_login(line, "", True, False, reason="ok")
                return
        super().ftp_USER(line)

    def ftp_REIN(self, line: str) -> None:
        if self._transfer_pending():
            self.respond(_TRANSFER_BUSY)
            return
        super().ftp_REIN(line)

    def handle_auth_failed(self, msg: str, password: str) -> None:
        """pyftpdlib delays the 530; commands pipelined behind the PASS wait for it (held)."""
        self._auth_delay = True
        super().handle_auth_failed(msg, password)
        self.ioloop.call_later(self.auth_failed_timeout, self._auth_delay_over, _errback=self.handle_error)

    def _auth_delay_over(self) -> None:
        self._auth_delay = False
        self._resume()

    def ftp_PASS(self, line: str) -> None:
        if self.authenticated:
            self.respond("503 User already authenticated.")
            return
        if not self.username:
            self.respond("503 Login with USER first.")
            return
        # The session reads nothing until the check is answered (also while it waits its turn).
        self._checking_password = True
        self.del_channel()
        self._begin_check(self.username, line, time.monotonic() + self.attempt_wait)

    # A PASS waits (polling the shared table) while checks in flight from its address could still
    # reach ban_after_failures; after this long it is refused with 421 instead.
    attempt_wait = 10.0
    attempt_poll = 0.05

    def _begin_check(self, username: str, line: str, deadline: float) -> None:
        if self._closed:
            return
        runtime = self.runtime
        # Bans apply here, on every session, also those opened before the ban; and an address
        # gets at most ban_after_failures checks per window across sessions and workers.
        verdict = runtime.begin_attempt(self.remote_ip)
        if verdict is Attempt.WAIT and time.monotonic() < deadline:
            self.ioloop.call_later(
                self.attempt_poll, self._begin_check, username, line, deadline, _errback=self.handle_error
            )
            return
        if verdict not in (Attempt.GO, Attempt.UNCOUNTED):
            self._checking_password = False
            self.add_channel()
            try:
                self._refuse_banned(username)
            finally:
                self._resume()
            return
        reserved = verdict is Attempt.GO
        # The users snapshot current now serves this session until it ends.
        self.authorizer = authorizer = type(self).authorizer
        if runtime.pool is None or runtime.waker is None:
            self._password_checked(username, line, authorizer.check_password(username, line), reserved)
            return

        def done(future) -> None:
            try:
                ok = future.result()
            except Exception:
                log.exception("password check failed")
                ok = False
            runtime.waker.post(self._password_checked, username, line, ok, reserved)

        runtime.pool.submit(authorizer.check_password, username, line).add_done_callback(done)

    def _refuse_banned(self, username: str) -> None:
        self.runtime.counters.add("logins/banned")
        auth_log.warning(
            "login refused user=%s ip=%s: address banned or out of login attempts", username, self.remote_ip
        )
        self.username = ""
        self.respond("421 Too many failed logins from your address; try again later.")
        self.close_when_done()

    def _password_checked(self, username: str, password: str, ok: bool, reserved: bool = True) -> None:
        self._checking_password = False
        ok, reason = self._certificate_decision(username, ok)
        banned = (
            self.runtime.finish_attempt(self.remote_ip, ok)
            if reserved
            else self.runtime.banned(self.remote_ip)
        )
        if self._closed:
            return
        self.add_channel()
        try:
            self._settle_login(username, password, ok, banned, reason)
        finally:
            self._resume()

    def _settle_login(
        self, username: str, password: str, ok: bool, banned: bool, reason: str | None = None
    ) -> None:
        """``reason``: "ok" for a login a client certificate took part in, a key of
        ftpsd.clientcert.REFUSALS for one it refused, None when no certificate mattered."""
        if banned and ok:
            self._refuse_banned(username)  # banned while the check ran (another session failed)
            return
        if ok:
            user = self.authorizer.get_user(username)
            cap = user.max_connections if user else 0
            if not self.runtime.limits.user_login(username, cap):
                self.runtime.counters.add("logins/refused")
                auth_log.warning(
                    "login refused user=%s ip=%s: %d sessions already open (max_connections)",
                    username,
                    self.remote_ip,
                    cap,
                )
                self.username = ""
                self.respond("421 Too many sessions for this user; try again later.")
                self.close_when_done()
                return
            self.runtime.counters.add("logins/ok")
            with_cert = reason == "ok"
            if with_cert:
                self.runtime.counters.add("client_certs/ok")
            verdict = self.client_verdict
            auth_log.info(
                "login ok user=%s ip=%s%s",
                username,
                self.remote_ip,
                f" client certificate sha256={verdict.fingerprint}" if with_cert and verdict else "",
            )
            self._user_counted = username
            self.user_max_rate = user.max_rate if user else 0
            self._stop_login_timer()
            home = self.authorizer.get_home_dir(username)
            if with_cert and user is not None and user.auth == "certificate":
                self._auth_success(home, "232 Login successful (client certificate).")
            else:
                self.handle_auth_success(home, password, "Login successful.")
            return
        self.runtime.counters.add("logins/failed")
        refusal = REFUSALS.get(reason or "")
        if refusal:
            self.runtime.counters.add(f"client_certs/{reason}")
            verdict = self.client_verdict
            auth_log.warning(
                "login failed user=%s ip=%s: client certificate %s%s",
                username,
                self.remote_ip,
                reason,
                f" sha256={verdict.fingerprint} subject={verdict.subject}"
                if verdict and verdict.fingerprint
                else "",
            )
        else:
            auth_log.warning("login failed user=%s ip=%s", username, self.remote_ip)
        if banned:
            self.runtime.counters.add("bans")
            auth_log.warning(
                "banned ip=%s for %ss after %d failed logins",
                self.remote_ip,
                self.runtime.ban_seconds,
                self.runtime.ban_after_failures,
            )
            self.username = ""
            self.respond("421 Too many failed logins; your address is banned for a while.")
            self.close_when_done()
            return
        self.handle_auth_failed(refusal or "Authentication failed.", password)

    def _auth_success(self, home: str, reply: str) -> None:
        """pyftpdlib's handle_auth_success with another reply (232 for a certificate login)."""
        self.respond(reply)
        self.log(f"USER '{self.username}' logged in.")
        self.authenticated = True
        self.password = ""
        self.attempted_logins = 0
        self.fs = self.abstracted_fs(home, self)
        self.on_login(self.username)

    def _release_user(self) -> None:
        if self._user_counted:
            self.runtime.limits.user_logout(self._user_counted)
            self._user_counted = ""

    def flush_account(self) -> None:
        was_authenticated = self.authenticated
        self._release_user()
        self.user_max_rate = 0
        super().flush_account()
        if was_authenticated and not self._closed:
            self._start_login_timer()  # logged out (REIN, USER): the next login has a deadline too

    # --- uploads: temporary name, committed on success -----------------------------------
    def _upload_only(self) -> bool:
        user = self.authorizer.get_user(self.username)
        return user is not None and user.perm == "upload"

    def _store_refusal(self, file: str, mode: str, upload_only: bool) -> str | None:
        """The reply refusing this STOR/APPE before any byte is read, or None to go ahead."""
        resume = mode != "w" or self._restart_position
        if upload_only and resume:
            self._restart_position = 0
            return "550 Upload-only account: resuming or appending is not allowed."
        if upload_only and self.fs.lexists(file):
            # The early answer; the commit itself can never replace (RENAME_NOREPLACE).
            return "550 Upload-only account: existing files cannot be overwritten."
        # (A resume writes in place through HomeFS.open, O_NOFOLLOW: it refuses both itself.)
        if not resume and self.fs.isdir(file):
            return "550 Is a directory."
        if not resume and self.fs.islink(file):  # the commit would replace the link: refuse
            return "550 Is a symbolic link; links are not followed."
        return None

    def ftp_STOR(self, file: str, mode: str = "w"):
        upload_only = self._upload_only()
        refusal = self._store_refusal(file, mode, upload_only)
        if refusal is not None:
            self.respond(refusal)
            return None
        if mode != "w" or self._restart_position:
            # APPE and resumed STOR write in place; they never truncate what exists.
            return super().ftp_STOR(file, mode)
        directory, name = os.path.split(file)
        temp = os.path.join(directory, part_name(name))
        self._uploads[temp] = (file, not upload_only)
        self._upload_names[temp] = file
        result = super().ftp_STOR(temp, mode)
        if result is None:
            self._uploads.pop(temp, None)
            self._upload_names.pop(temp, None)
            self._remove_quietly(temp)
        return file if result else None

    def ftp_STOU(self, line: str):
        # pyftpdlib checks the permission only after creating the file: check it first.
        if not self.authorizer.has_perm(self.username, "w", self.fs.ftp2fs(line or self.fs.cwd)):
            self.respond("550 Not enough privileges.")
            return None
        return super().ftp_STOU(line)

    def ftp_RNFR(self, path: str):
        try:
            identity = self.fs.identity(path)
        except (OSError, FilesystemError):
            identity = None  # pyftpdlib's own lookup then answers 550
        super().ftp_RNFR(path)
        self._rnfr_identity = identity if self._rnfr else None

    def ftp_RNTO(self, path: str):
        if self._rnfr:
            # Rename what RNFR named, not whatever holds that name now (another session may
            # have swapped it in between). Resolution keeps either inside the home anyway.
            try:
                same = self.fs.identity(self._rnfr) == self._rnfr_identity
            except (OSError, FilesystemError):
                same = False
            if not same:
                self._rnfr = None
                self.respond("550 The source changed since RNFR; nothing renamed.")
                return None
        return super().ftp_RNTO(path)

    def commit_upload(self, file_obj) -> str | None:
        """Called by the DTP on a clean end of upload, before the reply. None = committed."""
        temp = file_obj.name
        final, replace = self._uploads.pop(temp, (None, True))
        try:
            if not file_obj.closed:
                file_obj.flush()
                os.fsync(file_obj.fileno())
            # Renamed while still open: the lock an open temporary file holds (HomeFS) keeps the
            # sweep after a worker's death (ftpsd.partials) away from it until it has its name.
            if final is not None and replace:
                self.fs.rename(temp, final)
            elif final is not None:
                self.fs.rename_noreplace(temp, final)
        except (OSError, FilesystemError) as err:
            self._remove_quietly(temp)
            with contextlib.suppress(OSError):
                file_obj.close()
            log.warning("upload of %s not committed: %s", final or temp, err)
            code = getattr(err, "errno", None)  # None for a FilesystemError
            if code == errno.EEXIST:
                return "553 Upload-only account: the file now exists; upload discarded."
            if code in (errno.ENOSPC, errno.EDQUOT):
                return "452 Insufficient storage space; upload discarded."
            return f"451 Upload not stored: {getattr(err, 'strerror', None) or err}."
        with contextlib.suppress(OSError):
            file_obj.close()  # flushed and synced: nothing left that could fail
        if self.fs is not None:
            self.fs.forget_part(temp)
        return None

    def _discard_upload(self, temp: str) -> None:
        self._upload_names.pop(temp, None)
        if temp in self._uploads:
            del self._uploads[temp]
            self._remove_quietly(temp)

    def _remove_quietly(self, path: str) -> None:
        if self.fs is None:
            return  # the session's home is gone (its end discarded its uploads already)
        try:
            self.fs.remove_part(path)  # where it is now, even in a directory renamed since
        except FileNotFoundError:
            pass
        except (OSError, FilesystemError) as err:
            log.warning("cannot remove partial upload %s: %s", path, err)

    def on_incomplete_file_received(self, file: str) -> None:
        if file in self._uploads:
            self._discard_upload(file)
            log.info("%s:%s incomplete upload discarded", self.remote_ip, self.remote_port)

    # --- logs --------------------------------------------------------------------------
    def log_transfer(self, cmd, filename, receive, completed, elapsed, bytes) -> None:  # noqa: PLR0917 - pyftpdlib API
        final = self._upload_names.pop(filename, None) or filename
        if receive and final is filename:
            directory, temp_name = os.path.split(filename)
            real_name = final_name(temp_name)
            if real_name is not None:
                final = os.path.join(directory, real_name)
        super().log_transfer(cmd, final, receive, completed, elapsed, bytes)
        self.runtime.counters.transfer(receive, completed, bytes)
        xfer = self.runtime.xferlog
        if xfer is None:
            return
        # xferlog(5): time, seconds, host, bytes, file, type, action, direction, mode, user,
        # service, auth method, auth user id, completion.
        line = "%s %d %s %d %s %s _ %s r %s ftp 0 * %s\n" % (  # noqa: UP031 - xferlog's fixed layout
            time.strftime("%a %b %d %H:%M:%S %Y", time.localtime()),
            max(1, round(elapsed)),
            self.remote_ip,
            bytes,
            _xferlog_name(final),
            "b" if self._current_type == "i" else "a",
            "i" if receive else "o",
            self.username or "-",
            "c" if completed else "i",
        )
        try:
            xfer.write(line)
            xfer.flush()
        except OSError as err:
            log.warning("cannot write xferlog: %s", err)


class FtpsdImplicitHandler(FtpsdHandler):
    """Implicit FTPS (port 990): the TLS handshake comes first, then the 220 greeting."""

    implicit = True

    def ftp_AUTH(self, line: str) -> None:
        self.respond("503 Already using TLS (implicit FTPS).")

    def handle_failed_ssl_handshake(self) -> None:
        self.log("implicit FTPS: TLS handshake failed")
        self.close()
