"""The data-channel (DTP) handler: TLS on every data connection, session reuse enforced,
per-user rate limit, uploads that are only committed after a clean end of stream.

Class layout matters: pyftpdlib's ``SSLConnectionMixin`` calls ``super().handle_close()`` and
``super().close()``, which resolve to the class *after* the mixin in the MRO. Our transfer logic
therefore lives in :class:`_DataCore`, placed after the mixin, and the TLS-facing methods in
:class:`FtpsdDTPHandler`, placed before it::

    FtpsdDTPHandler -> SSLConnectionMixin -> _DataCore -> ThrottledDTPHandler -> DTPHandler

Note for tuning: ``DTPHandler.handle_read_event`` is bound to ``DTPHandler.handle_read`` at class
creation, so overriding ``handle_read`` needs ``handle_read_event`` re-aliased in the same class.
"""

from __future__ import annotations

import errno
import os

from OpenSSL import SSL
from pyftpdlib.exceptions import _FileReadWriteError
from pyftpdlib.handlers import ThrottledDTPHandler
from pyftpdlib.handlers.ftps.ssl import SSLConnectionMixin
from pyftpdlib.log import logger

from ftpsd.tls import session_reused

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class _DataCore(ThrottledDTPHandler):
    """Transfer bookkeeping; sits after the TLS mixin in the MRO (see module docstring)."""

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
                self._resp = (
                    "426 Data connection closed without TLS close_notify; upload discarded.",
                    logger.info,
                )
            else:
                sent = int(self.get_transmitted_bytes())
                self._resp = (f"426 Transfer aborted; {sent} bytes transmitted.", logger.debug)
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed and self.receive and self.file_obj is not None and self.transfer_finished:
            # Commit (fsync + rename into place) before the 226 goes out; a failure turns into
            # an error reply and the upload is discarded.
            error = self.cmd_channel.commit_upload(self.file_obj)
            if error:
                self.transfer_finished = False
                self._resp = (error, logger.warning)
        super().close()


class FtpsdDTPHandler(SSLConnectionMixin, _DataCore):
    """TLS data channel with mandatory session reuse (as vsftpd's ``require_ssl_reuse``)."""

    timeout = 300
    ac_in_buffer_size = 65536
    ac_out_buffer_size = 65536

    def __init__(self, sock, cmd_channel) -> None:
        rate = getattr(cmd_channel, "user_max_rate", 0)
        self.read_limit = rate
        self.write_limit = rate
        self.auto_sized_buffers = bool(rate)
        super().__init__(sock, cmd_channel)
        if self.cmd_channel._prot and not self._closed:
            self.secure_connection(self.cmd_channel.ssl_context)

    def __repr__(self) -> str:
        return _DataCore.__repr__(self)

    def use_sendfile(self) -> bool:
        # Every byte is encrypted in user space (no kernel TLS), so sendfile() never applies.
        return False

    def handle_ssl_established(self) -> None:
        reused = session_reused(self.socket)
        self.cmd_channel.log_data_tls(self.socket, reused)
        if not reused and self.cmd_channel.require_session_reuse:
            self._resp = (
                "522 TLS session reuse required on the data connection; "
                "resume the control connection's session.",
                logger.warning,
            )
            self.close()

    def handle_failed_ssl_handshake(self) -> None:
        self._resp = ("522 SSL handshake failed.", logger.info)
        self.cmd_channel.log("data connection: TLS handshake failed")
        self.close()

    def handle_error(self) -> None:
        """Reply on the control channel for every failure; disk full becomes 452."""
        self._error = True
        try:
            raise  # noqa: PLE0704 - re-raise the exception being handled to classify it
        except _FileReadWriteError as err:
            # pyftpdlib wraps the original OSError as the only argument (errno stays None).
            cause = err.args[0] if err.args and isinstance(err.args[0], OSError) else err.__cause__
            code = getattr(cause, "errno", None)
            if code in _DISK_FULL:
                reply = "452 Insufficient storage space; upload discarded."
            else:
                reason = os.strerror(code) if isinstance(code, int) else "I/O error"
                reply = f"426 {reason}; transfer aborted."
        except Exception:
            self.log_exception(self)
            reply = "426 Internal error; transfer aborted."
        self.transfer_finished = False
        self._resp = (reply, logger.warning)
        try:
            _DataCore.close(self)
        except Exception:
            logger.exception("closing the data channel after an error")
