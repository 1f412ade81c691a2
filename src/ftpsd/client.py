"""FTPS client logic shared by the probe module, ``ftps-trust``, the tests and the benchmark.

Standard library only: this file is also Ansible module_utils (``module_utils/ftps_client.py``
is a symlink to it), so it runs on any host with a Python 3.11+ and nothing else installed.

``ftplib.FTP_TLS`` never reuses the control connection's TLS session on data connections, so
servers that require reuse (vsftpd's ``require_ssl_reuse``, ftpsd's default) refuse it.
:class:`FTPSClient` passes the control session when wrapping each data socket and supports
implicit FTPS (TLS from the first byte, port 990).
"""

from __future__ import annotations

import ftplib
import socket
import ssl
from typing import Any


class FTPSClient(ftplib.FTP_TLS):
    """An FTP_TLS that reuses the control connection's TLS session on every data connection.

    ``implicit=True`` speaks TLS from the first byte (implicit FTPS) instead of AUTH TLS.
    """

    def __init__(
        self,
        host: str = "",
        port: int = 0,
        *,
        context: ssl.SSLContext | None = None,
        implicit: bool = False,
        timeout: float = 30.0,
        reuse_session: bool = True,
    ) -> None:
        self.implicit = implicit
        self.reuse_session = reuse_session
        self.data_sessions_reused: list[bool] = []
        super().__init__(context=context or ssl.create_default_context(), timeout=timeout)
        if host:
            self.connect(host, port or (990 if implicit else 21))

    # -- connection ---------------------------------------------------------------------
    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None) -> str:
        if not self.implicit:
            return super().connect(host, port, timeout, source_address)
        if host:
            self.host = host
        if port > 0:
            self.port = port
        if timeout != -999:
            self.timeout = timeout
        if source_address is not None:
            self.source_address = source_address
        raw = socket.create_connection((self.host, self.port), self.timeout, source_address=self.source_address)
        self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def login(self, user: str = "", passwd: str = "", acct: str = "", secure: bool = True) -> str:
        if self.implicit:
            # Already encrypted: skip AUTH TLS, which an implicit server answers with an error.
            return ftplib.FTP.login(self, user, passwd, acct)
        return super().login(user, passwd, acct, secure)

    # -- data connections -----------------------------------------------------------------
    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.sock.session if self.reuse_session else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
            self.data_sessions_reused.append(bool(conn.session_reused))
        return conn, size

    # -- facts --------------------------------------------------------------------------
    def tls_facts(self) -> dict[str, Any]:
        """TLS version and cipher of the control connection."""
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return {"tls": False}
        cipher = sock.cipher()
        return {
            "tls": True,
            "version": sock.version(),
            "cipher": cipher[0] if cipher else None,
            "data_session_reused": all(self.data_sessions_reused) if self.data_sessions_reused else None,
        }
