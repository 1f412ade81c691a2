"""Loopback FTP(S) servers for the client tests: stock pyftpdlib on 127.0.0.1, one thread each.

Stock pyftpdlib rather than ftpsd on purpose: these servers must be able to serve what ftpsd
refuses to load (an expired certificate, plaintext only), and swap their certificate at run time
(the "rotated certificate" case of ftps-trust).
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import threading

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

USER, PASSWORD = "probe", "probe-secret"

# pyftpdlib configures INFO logging to stderr unless a handler exists, and logs every
# serve_forever() call; the tests only need its warnings.
_LOG = logging.getLogger("pyftpdlib")
if not _LOG.handlers:
    _LOG.addHandler(logging.NullHandler())
_LOG.setLevel(logging.WARNING)


class LoopbackServer:
    """An FTP server on 127.0.0.1 in a thread: ``tls`` = "explicit", "implicit" or "none"."""

    def __init__(
        self, root: pathlib.Path, certfile: pathlib.Path | None, keyfile: pathlib.Path | None, tls: str
    ):
        root.mkdir(parents=True, exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmw")
        if tls == "none":
            base: type = FTPHandler
            attrs: dict = {}
        else:
            base = TLS_FTPHandler
            attrs = {"certfile": str(certfile), "keyfile": str(keyfile), "ssl_context": None}
            if tls == "implicit":
                attrs["handle"] = lambda self: self.secure_connection(self.ssl_context)
                attrs["handle_ssl_established"] = TLS_FTPHandler.handle  # the banner, once TLS is up
        # A class per server: pyftpdlib caches the SSL context on the handler class.
        self.handler = type(f"Test{tls.title()}Handler", (base,), attrs)
        self.handler.authorizer = authorizer
        self.handler.passive_ports = None
        self.handler.banner = "test server ready"
        self.server = FTPServer(("127.0.0.1", 0), self.handler)
        self.port = self.server.address[1]
        self.tls = tls
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = threading.Event()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.server.serve_forever(timeout=0.05, blocking=False)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.server.close_all()

    def use_certificate(self, certfile: pathlib.Path, keyfile: pathlib.Path) -> None:
        """Serve another certificate from the next connection on (a rotation)."""
        self.handler.certfile = str(certfile)
        self.handler.keyfile = str(keyfile)
        self.handler.ssl_context = None


@contextlib.contextmanager
def serving(root: pathlib.Path, certfile=None, keyfile=None, tls: str = "explicit"):
    server = LoopbackServer(root, certfile, keyfile, tls).start()
    try:
        yield server
    finally:
        server.stop()
