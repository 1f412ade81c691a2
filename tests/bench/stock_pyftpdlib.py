"""Stock pyftpdlib FTPS server for the benchmark: ``TLS_FTPHandler`` as its documentation shows it.

TLS required on control and data (``tls_control_required``/``tls_data_required``), the library's
default TLS settings, ``DummyAuthorizer`` (plaintext compare), one process (``FTPServer``).
pyftpdlib cannot require TLS session reuse; the benchmark's clients reuse anyway.

    python -m tests.bench.stock_pyftpdlib PORT HOME CERT KEY   (user/password from the environment)
"""

from __future__ import annotations

import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    port, home, cert, key = sys.argv[1:5]
    authorizer = DummyAuthorizer()
    authorizer.add_user(
        os.environ["FTPSBENCH_USER"], os.environ["FTPSBENCH_PASSWORD"], home, perm="elradfmwMT"
    )

    class Handler(TLS_FTPHandler):
        pass

    Handler.certfile = cert
    Handler.keyfile = key
    Handler.tls_control_required = True
    Handler.tls_data_required = True
    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", int(port)), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
