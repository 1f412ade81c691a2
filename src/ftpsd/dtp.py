"""The data-channel (DTP) handler: TLS on every data connection, session reuse enforced,
per-user rate limit, uploads that are only committed after a clean end of stream.

Class layout matters: pyftpdlib's ``SSLConnectionMixin`` calls ``super().handle_close()`` and
``super().close()``, which resolve to the class *after* the mixin in the MRO. Our transfer logic
therefore lives in :class:`_DataCore`, placed after the mixin, and the TLS-facing methods in
:class:`FtpsdDTPHandler`, placed before it::

    FtpsdDTPHandler -> SSLConnectionMixin -> _DataCore -> ThrottledDTPHandler -> DTPHandler

Note for tuning: ``DTPHandler.handle_read_event`` is bound to ``DTPHandler.handle_read`` at class
creation, so overriding ``handle_read`` needs ``handle_read_event`` re-aliased in the same class.

Data path (profiled with ``python -m tests.bench.profile``; figures in docs/benchmark.md). Stock
pyftpdlib moves one TLS record (16 KiB) per IO-loop turn: pyOpenSSL's ``recv()`` allocates a
64 KiB cffi buffer and copies the record out, the file gets one ``write()`` per record; on send,
``SSL_MODE_ENABLE_PARTIAL_WRITE`` makes ``SSL_write`` return after each record and asynchat then
copies the unsent rest of its 64 KiB chunk (``first[num_sent:]``). ``_DataCore`` instead, for TLS
binary transfers without a rate limit:

* receives by draining every record the socket holds in one event into a per-connection cffi
  buffer (``SSL_read`` straight into it, no intermediate bytes) and writes it to the file in
  256 KiB pieces;
* sends by reading the file in 256 KiB chunks and calling ``SSL_write`` on a pointer that
  advances through the chunk (no slicing copies), until the socket is full or 1 MiB went out;
* turns off ``SSL_MODE_RELEASE_BUFFERS`` on data connections (it frees and reallocates OpenSSL's
  record buffers around every record; idle *control* sessions keep it), and pyOpenSSL's
  ``SSL_MODE_ENABLE_PARTIAL_WRITE``, so one ``SSL_write`` call encrypts a whole chunk (a
  ``WANT_WRITE`` is retried with the same remaining bytes, as OpenSSL then requires).

A download that fits in one chunk is sent corked (``TCP_CORK``, set after the session-reuse
check): its data, close_notify and FIN leave as one segment when the socket is closed.

Everything else (handshake, shutdown, errors, ASCII mode, throttling) stays on pyftpdlib's path:
on any result but "would block" the fast path hands over to it, which sees the same condition.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib
from pyftpdlib.exceptions import _FileReadWriteError
from pyftpdlib.handlers import DTPHandler, ThrottledDTPHandler
from pyftpdlib.handlers.ftp.producers import FileProducer
from pyftpdlib.handlers.ftps.ssl import SSLConnectionMixin
from pyftpdlib.log import logger

from ftpsd.partials import final_name
from ftpsd.tls import ResumptionGate, describe_ssl_error, session_reused
from ftpskit_common.x509 import sha256_fingerprint

_tls_log = logging.getLogger("ftpsd.tls")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# Data path sizes (see module docstring).
_RECORD = 16384  # largest TLS plaintext record
_FILE_CHUNK = 256 * 1024  # file read/write size on the fast paths
_EVENT_BUDGET = 1024 * 1024  # bytes moved per IO-loop turn before other channels get a turn
_WANT_READ = _lib.SSL_ERROR_WANT_READ
_WANT_WRITE = _lib.SSL_ERROR_WANT_WRITE
# Modes cleared on data connections (see module docstring).
_CLEAR_MODES = _lib.SSL_MODE_RELEASE_BUFFERS | _lib.SSL_MODE_ENABLE_PARTIAL_WRITE
_CERT_MISMATCH = "425 Data connection refused: its client certificate is not the control connection's."
_REUSE_REQUIRED = (
    "522 TLS session reuse required on the data connection; resume the control connection's session."
)
# Receive buffers are overwritten before they are read: skip cffi's zero-fill.
_new_buffer = _ffi.new_allocator(should_clear_after_alloc=False)


class _DataCore(ThrottledDTPHandler):
    """Transfer bookkeeping and the TLS fast paths; sits after the TLS mixin in the MRO."""

    _rbuf = None  # cffi receive buffer, allocated on the first fast read
    _out_ptr = None  # cffi view of the chunk being sent
    _out_ref = None  # keeps that chunk alive
    _out_pos = 0
    _out_left = 0
    _quiet = False  # the control channel answers for this transfer (abort())

    def _fast_tls(self, limit: int) -> bool:
        return (
            not limit
            and self._data_wrapper is None
            and getattr(self, "_ssl_established", False)
            and not getattr(self, "_ssl_closing", False)
            and isinstance(self.socket, SSL.Connection)
        )

    # -- receive (uploads) ----------------------------------------------------------------------
    def handle_read(self) -> None:
        if not self._fast_tls(self.read_limit):
            DTPHandler.handle_read(self)
            return
        ssl = self.socket._ssl
        buf = self._rbuf
        if buf is None:
            buf = self._rbuf = _new_buffer("char[]", _FILE_CHUNK)
        _lib.ERR_clear_error()
        filled = moved = 0
        err = _WANT_READ
        while True:
            n = _lib.SSL_read(ssl, buf + filled, _FILE_CHUNK - filled)
            if n <= 0:
                err = _lib.SSL_get_error(ssl, n)
                break
            filled += n
            if _FILE_CHUNK - filled < _RECORD:
                self._store(buf, filled)
                moved += filled
                filled = 0
                if moved >= _EVENT_BUDGET and not _lib.SSL_pending(ssl):
                    break  # more data on the socket keeps the fd readable: we come back
        if filled:
            self._store(buf, filled)
        if err != _WANT_READ:
            # End of stream, close_notify or an error: pyftpdlib's path sees the same condition
            # and handles it (clean end of upload, 426, ...).
            DTPHandler.handle_read(self)

    handle_read_event = handle_read

    def _store(self, buf, n: int) -> None:
        self.tot_bytes_received += n
        try:
            self.file_obj.write(_ffi.buffer(buf, n))
        except OSError as err:
            raise _FileReadWriteError(err) from err

    # -- send (downloads) -----------------------------------------------------------------------
    def initiate_send(self) -> None:
        if not self._fast_tls(self.write_limit):
            super().initiate_send()
            return
        ssl = self.socket._ssl
        fifo = self.producer_fifo
        budget = _EVENT_BUDGET
        _lib.ERR_clear_error()
        while self.connected:
            if not self._out_left and not self._next_chunk(fifo):
                return
            n = _lib.SSL_write(ssl, self._out_ptr + self._out_pos, self._out_left)
            if n > 0:
                self.tot_bytes_sent += n
                self._out_pos += n
                self._out_left -= n
                if not self._out_left:
                    self._chunk_done(fifo)
                budget -= n
                if budget <= 0:
                    return
                continue
            if _lib.SSL_get_error(ssl, n) == _WANT_WRITE:
                return  # socket full; the channel stays registered for WRITE
            # Anything else: retry through the mixin's send(), which classifies and handles it.
            try:
                sent = self.send(memoryview(self._out_ref)[self._out_pos :])
            except (SSL.Error, OSError) as err:
                if isinstance(err, SSL.Error):
                    # The peer broke the TLS stream in a way pyOpenSSL does not map to a
                    # disconnect (EOF without close_notify mid-write): a cut transfer, 426.
                    self.handle_close()
                else:
                    self.handle_error()
                return
            if sent > 0:  # DTPHandler.send already counted it
                self._out_pos += sent
                self._out_left -= sent
                if not self._out_left:
                    self._chunk_done(fifo)
            return

    def _next_chunk(self, fifo) -> bool:
        """Load the next chunk to send; False when there is none (or the channel was closed)."""
        while fifo:
            first = fifo[0]
            if first is None:  # close_when_done() sentinel: everything before it went out
                fifo.popleft()
                self.handle_close()
                return False
            if isinstance(first, bytes | bytearray | memoryview):
                data = first  # popped only once fully sent, so handle_close() sees it pending
            else:
                if isinstance(first, FileProducer) and first.buffer_size < _FILE_CHUNK:
                    first.buffer_size = _FILE_CHUNK
                data = first.more()
                if not data:
                    fifo.popleft()
                    continue
            if not len(data):
                fifo.popleft()
                continue
            self._out_ref = data
            self._out_ptr = _ffi.from_buffer(data)
            self._out_pos = 0
            self._out_left = len(data)
            return True
        return False

    def _chunk_done(self, fifo) -> None:
        if fifo and fifo[0] is self._out_ref:
            fifo.popleft()
        self._out_ref = self._out_ptr = None
        self._out_pos = 0

    def _clean_end_of_upload(self) -> bool:
        """An upload ends cleanly only with the client's TLS close_notify.

        A bare TCP FIN (client killed, connection cut) is indistinguishable from a complete
        stream-mode upload at the FTP level; TLS tells them apart, so we use it.
        """
        sock = self.socket
        if isinstance(sock, SSL.Connection):
            return bool(sock.get_shutdown() & SSL.RECEIVED_SHUTDOWN)
        return True

    def handle_close(self) -> None:
        if self._closed:
            return
        if self.receive:
            self.transfer_finished = self._clean_end_of_upload()
        else:
            self.transfer_finished = len(self.producer_fifo) == 0
        try:
            if self.transfer_finished:
                self._resp = ("226 Transfer complete.", logger.debug)
            elif self.receive:
                # _finish_upload() adds what became of the data.
                self._resp = ("426 Data connection closed without TLS close_notify", logger.info)
            else:
                sent = int(self.get_transmitted_bytes())
                self._resp = (f"426 Transfer aborted; {sent} bytes transmitted.", logger.debug)
        finally:
            if not self.transfer_finished:
                # The peer broke the stream (EOF without close_notify, reset): OpenSSL refuses a
                # TLS shutdown after that and pyftpdlib's shutdown step would retry it forever
                # (no reply, busy loop). Close the socket directly.
                self._error = True
            self.close()

    def close(self) -> None:
        if not self._closed and self.has_transfer() and not self._resp and not self._quiet:
            # A transfer command is attached and nothing has answered it: pyftpdlib closes
            # without a reply on some paths (EOF during the data connection's TLS handshake).
            self._resp = ("426 Data connection closed; transfer aborted.", logger.info)
        if not self._closed and self.receive and self.file_obj is not None and not self.file_obj.closed:
            self._finish_upload()
        if not self._closed and not self.has_transfer() and self._resp:
            # No transfer command is attached (PASV, connect, fail or close before RETR...): a reply
            # now would answer no command and shift every later reply. A failure is kept for the
            # next transfer command's reply instead; "421" (the session ends) is still sent.
            reply = self._resp[0]
            if not reply.startswith("421"):
                self._resp = ()
                if reply[:1] in "45":
                    self.cmd_channel.note_data_failure(reply)
        super().close()

    def has_transfer(self) -> bool:
        """A transfer command is attached (pyftpdlib sets ``cmd`` only after queueing the data,
        so a failure while queueing would otherwise look like an idle connection)."""
        return self.cmd is not None or self._initialized or self.receive

    def abort(self) -> None:
        """Close at once (no TLS shutdown that could finish, and answer, later); the control channel
        sends the transfer's one final reply itself (ABOR, a new PASV/EPSV/PORT)."""
        self._resp = ()
        self._quiet = True
        self._error = True
        self.close()

    def _finish_upload(self) -> None:
        """Close the upload's file and make the one reply tell what is on disk.

        Runs once, before pyftpdlib's ``close()`` sends ``_resp`` (once) and closes the file (a
        no-op by then, so a failing flush can no longer escape from there and swallow the
        reply). Uploads to a temporary name are committed (fsync + rename, before the 226) or
        discarded. In-place writes (``APPE``, ``REST`` + ``STOR``) cannot be discarded: whatever
        arrived is in the file, and a failed one is answered with the file's size on disk, so a
        client resumes from there instead of sending the same bytes again.
        """
        file_obj = self.file_obj
        if final_name(os.path.basename(file_obj.name)) is not None:  # a temporary upload name
            if self.transfer_finished:
                error = self.cmd_channel.commit_upload(file_obj)  # None: committed
                if error:
                    self.transfer_finished = False
                    self._resp = (error, logger.warning)
                    _close_quietly(file_obj)
                return
            _close_quietly(file_obj)  # the control channel removes the temporary file
            if self._resp:
                self._resp = (_reply_with(self._resp[0], "upload discarded"), self._resp[1])
            return
        size, error = _close_in_place(file_obj, sync=self.transfer_finished)
        if error is not None:
            self.transfer_finished = False
            self._resp = (_storage_reply(error), logger.warning)
        if not self.transfer_finished and self._resp:
            if error is None and not self.tot_bytes_received:
                kept = "nothing was written"  # e.g. refused at the handshake
            elif size < 0:
                kept = "the data received was written in place; the file's size is unknown"
            else:
                kept = f"the data received was written in place: the file is now {size} bytes"
            self._resp = (_reply_with(self._resp[0], kept), logger.warning)


def _reply_with(reply: str, what: str) -> str:
    return f"{reply.rstrip().rstrip('.')}; {what}."


def _storage_reply(err: OSError) -> str:
    if err.errno in _DISK_FULL:
        return "452 Insufficient storage space"
    return f"451 {err.strerror or 'I/O error'}"


def _close_quietly(file_obj) -> None:
    # A failed flush raises again from close(), which still closes the descriptor.
    with contextlib.suppress(OSError):
        file_obj.close()


def _close_in_place(file_obj, sync: bool) -> tuple[int, OSError | None]:
    """Flush (and fsync if ``sync``), close; returns (size on disk, or -1, first error)."""
    error = None
    try:
        probe = os.dup(file_obj.fileno())  # the file's size after close, whatever its name now
    except OSError:
        probe = -1
    try:
        file_obj.flush()
        if sync:
            os.fsync(file_obj.fileno())
    except OSError as err:
        error = err
    try:
        file_obj.close()
    except OSError as err:
        error = error or err
    size = -1
    if probe >= 0:
        try:
            size = os.fstat(probe).st_size
        except OSError:
            pass
        finally:
            os.close(probe)
    return size, error


def _after_tls_event(self, was_waiting: bool) -> None:
    """The IO-loop interest after a TLS event, as pyftpdlib's ``_handle_ssl_want_rw`` sets it."""
    if self._ssl_want_read:
        self.modify_ioloop_events(self._wanted_io_events | self.ioloop.READ, logdebug=True)
    elif self._ssl_want_write:
        self.modify_ioloop_events(self._wanted_io_events | self.ioloop.WRITE, logdebug=True)
    elif was_waiting:
        self.modify_ioloop_events(self._wanted_io_events)


def _tls_event(self, reading: bool) -> None:
    """pyftpdlib's ``SSLConnectionMixin.handle_read_event``/``handle_write_event`` without their
    generator context manager (``_handle_ssl_want_rw``: a generator, its frame and two calls
    through contextlib on every TLS event of every control and data connection); the same steps in
    the same order, and an exception other than "want read/write" propagates as before, without
    the event update. Used by both handlers (``FtpsdDTPHandler``, ``ftpsd.handlers.FtpsdHandler``)."""
    below = super(SSLConnectionMixin, self)
    if not self._ssl_requested:
        below.handle_read_event() if reading else below.handle_write_event()
        return
    was_waiting = self._ssl_want_read or self._ssl_want_write
    try:
        if reading:
            self._ssl_want_read = False
        else:
            self._ssl_want_write = False
        if self._ssl_accepting:
            self._do_ssl_handshake()
        elif self._ssl_closing:
            self._do_ssl_shutdown()
        elif reading:
            below.handle_read_event()
        else:
            below.handle_write_event()
    except SSL.WantReadError:
        self._ssl_want_read = True
    except SSL.WantWriteError:
        self._ssl_want_write = True
    _after_tls_event(self, was_waiting)


def tls_read_event(self) -> None:
    """``handle_read_event`` of ftpsd's TLS handlers (:func:`_tls_event`)."""
    _tls_event(self, True)


def tls_write_event(self) -> None:
    """``handle_write_event`` of ftpsd's TLS handlers (:func:`_tls_event`)."""
    _tls_event(self, False)


class FtpsdDTPHandler(SSLConnectionMixin, _DataCore):
    """TLS data channel with mandatory session reuse (as vsftpd's ``require_ssl_reuse``).

    The connection is made from the control session's own SSL context, whose sessions only that
    control connection holds; a :class:`ftpsd.tls.ResumptionGate` fails any handshake that does
    not resume one of them, and ``handle_ssl_established`` checks again after the handshake.
    """

    timeout = 300
    # Seconds a data connection has to complete its TLS handshake (at most ``timeout``).
    handshake_timeout = 10.0
    _gate: ResumptionGate | None = None
    _handshake_timer = None
    _peer: tuple = ("?", "?")
    handle_read_event = tls_read_event
    handle_write_event = tls_write_event
    ac_in_buffer_size = 65536
    ac_out_buffer_size = 65536

    def __init__(self, sock, cmd_channel) -> None:
        try:
            self._peer = tuple(sock.getpeername()[:2])
        except OSError:
            self._peer = ("?", "?")
        rate = getattr(cmd_channel, "user_max_rate", 0)
        self.read_limit = rate
        self.write_limit = rate
        self.auto_sized_buffers = bool(rate)
        super().__init__(sock, cmd_channel)
        if self.cmd_channel._prot and not self._closed:
            self.secure_connection(self.cmd_channel.ssl_context)
            if isinstance(self.socket, SSL.Connection):
                # Bulk data: keep OpenSSL's record buffers instead of freeing them per record.
                _lib.SSL_clear_mode(self.socket._ssl, _CLEAR_MODES)
                if self.cmd_channel.require_session_reuse:
                    self._gate = ResumptionGate(self.socket)
                self._handshake_timer = self.ioloop.call_later(
                    min(self.handshake_timeout, self.timeout or self.handshake_timeout),
                    self._handshake_expired,
                    _errback=self.handle_error,
                )

    def _handshake_expired(self) -> None:
        """A data connection that does not complete its handshake in time is closed: a silent
        connection from the client's address (another host behind its NAT, a port scanner) took
        the passive port and, pyftpdlib's listener being closed at the first accept, held the
        session's transfer until ``data_timeout`` stalled it twice over, which then ended the
        whole session (``421``). Now the transfer gets ``425`` after ``handshake_timeout`` and the
        session goes on."""
        self._handshake_timer = None
        if self._closed or not self._ssl_accepting:
            return
        ch = self.cmd_channel
        _tls_log.warning(
            "%s:%s user=%s data connection from %s:%s closed: no TLS handshake within %ss",
            ch.remote_ip,
            ch.remote_port,
            ch.username or "-",
            *self._peer,
            self.handshake_timeout,
        )
        self._resp = ("425 Data connection closed: no TLS handshake in time; try again.", logger.info)
        self._error = True  # no TLS shutdown: there is no TLS session to shut down
        self.close()

    def close(self) -> None:
        timer, self._handshake_timer = self._handshake_timer, None
        if timer is not None and not timer.cancelled:
            timer.cancel()
        super().close()

    def modify_ioloop_events(self, events: int, logdebug: bool = False) -> None:
        # During the handshake wait only for what OpenSSL needs. pyftpdlib registers a download's
        # data socket for WRITE as soon as RETR queues the file, and the mixin then ORs in READ
        # when the handshake wants to read: a connected socket is always writable, so the loop
        # would call SSL_do_handshake on every turn until the client's next flight arrives
        # (measured: ~34 calls per small file). A server-side handshake starts by reading.
        if self._ssl_accepting:
            events = self.ioloop.WRITE if self._ssl_want_write else self.ioloop.READ
        super().modify_ioloop_events(events, logdebug)

    def use_sendfile(self) -> bool:
        # Every byte is encrypted in user space (no kernel TLS), so sendfile() never applies.
        return False

    def handle_ssl_established(self) -> None:
        timer, self._handshake_timer = self._handshake_timer, None
        if timer is not None and not timer.cancelled:
            timer.cancel()
        conn = self.socket
        reused = session_reused(conn)
        facts = (conn.get_protocol_version_name(), conn.get_cipher_name(), reused)
        if not reused and self.cmd_channel.require_session_reuse:
            self.cmd_channel.log_data_tls(*facts)
            self._resp = (_REUSE_REQUIRED, logger.warning)
            self.close()
            return
        if not self._same_client_certificate(conn):
            return
        # The handshake may finish in the call that sent our flight (the client's Finished
        # already waiting), before the mixin ever widened the events again: restore them here.
        self.modify_ioloop_events(self._wanted_io_events)
        if self.producer_fifo and not self.receive:
            # A download is queued: send now instead of a loop turn later (a small file is
            # complete, and its 226 sent, before this returns). Logged after, off that path.
            self._cork_if_small()
            self.initiate_send()
        self.cmd_channel.log_data_tls(*facts)

    def _cork_if_small(self) -> None:
        """A download that fits in one chunk leaves as one TCP segment (or as few as its size
        needs): data, close_notify and FIN, instead of one segment for the data, one for the
        close_notify and one for the FIN, each a trip through the network stack and a wake-up of
        the client. ``TCP_CORK`` holds partial segments until the socket is closed (which
        ``close()`` does right after the close_notify) or, at the latest, 200 ms (the kernel's
        limit). Larger downloads are not corked: their full segments would leave anyway."""
        queued = 0
        for item in self.producer_fifo:
            if item is None:
                continue
            if isinstance(item, bytes | bytearray | memoryview):
                queued += len(item)
            elif isinstance(item, FileProducer):
                try:
                    queued += os.fstat(item.file.fileno()).st_size - item.file.tell()
                except (OSError, ValueError, AttributeError):
                    return
            else:
                return
            if queued > _FILE_CHUNK:
                return
        with contextlib.suppress(OSError):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)

    def _same_client_certificate(self, conn: SSL.Connection) -> bool:
        """A data connection presents the control connection's client certificate (or, like it,
        none); else it is closed with 425. A resumed session carries its certificate along, so
        only a full handshake (``require_session_reuse = false``) can present another."""
        ch = self.cmd_channel
        verdict = getattr(ch, "client_verdict", None)
        if verdict is None:
            return True  # this listener asks for no client certificate
        peer = conn.get_peer_certificate(as_cryptography=True)
        der = peer.public_bytes(Encoding.DER) if peer is not None else None
        if der == verdict.der:
            return True
        ch.runtime.counters.add("client_certs/data_mismatch")
        _tls_log.warning(
            "%s:%s user=%s data connection refused: client certificate %s differs from the control"
            " connection's",
            ch.remote_ip,
            ch.remote_port,
            ch.username or "-",
            sha256_fingerprint(der) if der else "(none)",
        )
        self._resp = (_CERT_MISMATCH, logger.warning)
        self.close()
        return False

    def handle_failed_ssl_handshake(self) -> None:
        if self._gate is not None and self._gate.refused:
            self._resp = (_REUSE_REQUIRED, logger.warning)
            ch = self.cmd_channel
            _tls_log.warning(
                "%s:%s user=%s data TLS refused: the handshake did not resume this session's TLS session",
                ch.remote_ip,
                ch.remote_port,
                ch.username or "-",
            )
        else:
            self._resp = ("522 SSL handshake failed.", logger.info)
            self.cmd_channel.log("data connection: TLS handshake failed")
        self.close()

    def handle_error(self) -> None:
        """Reply on the control channel for every failure; disk full becomes 452."""
        self._error = True
        reply = "426 Internal error"
        try:
            raise  # noqa: PLE0704 - re-raise the exception being handled to classify it
        except _FileReadWriteError as err:
            # pyftpdlib wraps the original OSError as the only argument (errno stays None).
            cause = err.args[0] if err.args and isinstance(err.args[0], OSError) else err.__cause__
            code = getattr(cause, "errno", None)
            if code in _DISK_FULL:
                reply = "452 Insufficient storage space"
            else:
                reason = os.strerror(code) if isinstance(code, int) else "I/O error"
                reply = f"426 {reason}"
        except SSL.Error as err:
            # The client broke the TLS stream (a record that does not decrypt, an alert): its
            # doing, not the daemon's; one log line, no traceback (as on the control connection).
            ch = self.cmd_channel
            _tls_log.info(
                "%s:%s user=%s data TLS error, transfer aborted: %s",
                ch.remote_ip,
                ch.remote_port,
                ch.username or "-",
                describe_ssl_error(err),
            )
            reply = "426 TLS error on the data connection"
        except Exception:
            self.log_exception(self)
        if not self.receive or self.file_obj is None:
            reply += "; transfer aborted."
        # (an upload's reply gets what became of its data from _finish_upload)
        self.transfer_finished = False
        self._resp = (reply, logger.warning)
        try:
            _DataCore.close(self)
        except Exception:
            logger.exception("closing the data channel after an error")
