"""Raw-socket tools for the session tests and the fuzzer: what hostile clients send, byte by byte.

``ftpsd status --json`` (the daemon's real observable output) gives the counts the shared limits
table holds; :func:`wait_counted_zero` waits until every one of them is back to 0.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time

from OpenSSL import SSL

from tests.integration.conftest import Server

ZERO = {"sessions": 0, "logins": 0, "per_ip": 0, "per_user": 0, "passive": 0, "pending": 0}


def status(server: Server) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "ftpsd", "status", "--json", "--config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return json.loads(result.stdout)


def counted(server: Server) -> dict:
    return status(server)["counted"]


def wait_counted(server: Server, want: dict, timeout: float = 20.0) -> dict:
    """Poll the status until the counts equal ``want`` (bounded); returns the last counts."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        last = counted(server)
        if last == want:
            return last
        time.sleep(0.2)
    return last


def wait_counted_zero(server: Server, timeout: float = 20.0) -> dict:
    return wait_counted(server, ZERO, timeout)


def connect(server: Server, *, implicit: bool = False, timeout: float = 5.0) -> socket.socket:
    """A blocking socket (pyOpenSSL needs one) whose reads and writes still time out (SO_RCVTIMEO)."""
    port = server.implicit_port if implicit else server.port
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(None)
    limit = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    return sock


def read_reply(sock: socket.socket | SSL.Connection) -> bytes:
    """One whole reply (multi-line aware), or b"" at EOF."""
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (SSL.Error, OSError):
            return data
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
                return data


def client_context(server: Server, max_version: int | None = None) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.load_verify_locations(str(server.cafile))
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: args[-1])
    if max_version is not None:
        ctx.set_max_proto_version(max_version)
    return ctx


def starttls(
    server: Server, *, pipelined: bytes = b"", max_version: int | None = None
) -> tuple[socket.socket, SSL.Connection]:
    """Greeting, ``AUTH TLS`` (plus ``pipelined`` bytes in the same packet), then the handshake."""
    sock = connect(server)
    greeting = read_reply(sock)
    assert greeting.startswith(b"220"), greeting  # a leaked count shows here as "421 Too many"
    sock.sendall(b"AUTH TLS\r\n" + pipelined)
    assert read_reply(sock).startswith(b"234")
    conn = SSL.Connection(client_context(server, max_version), sock)
    conn.set_connect_state()
    conn.set_tlsext_host_name(b"localhost")
    conn.do_handshake()
    return sock, conn


def command(conn: SSL.Connection, line: str) -> bytes:
    conn.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
    return read_reply(conn)


def login(server: Server, user: str, password: str) -> tuple[socket.socket, SSL.Connection]:
    sock, conn = starttls(server)
    assert command(conn, f"USER {user}").startswith(b"331")
    reply = command(conn, f"PASS {password}")
    assert reply.startswith(b"230"), reply
    return sock, conn


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): no FIN, no TLS close_notify."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True if the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def bogus_record(sock: socket.socket) -> None:
    """A TLS application-data record whose MAC cannot verify, written under the TLS layer."""
    sock.sendall(b"\x17\x03\x03\x00\x20" + bytes(range(32)))


def drain(sock: socket.socket, timeout: float = 5.0) -> None:
    """Read until the server closes (bounded)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


# -- data connections and reply counting with a session-reusing client (FTPSClient) -----------


def epsv_port(ftp) -> int:
    """Send EPSV on ``ftp`` (an FTPSClient after PROT P) and return the announced port."""
    reply = ftp.sendcmd("EPSV")
    return int(reply.rsplit("|||", 1)[1].split("|", 1)[0])


def data_connect(ftp, port: int, *, resume: bool = True, timeout: float = 10.0):
    """Connect to passive ``port`` and start TLS resuming the control session (or not)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    session = ftp.sock.session if resume else None
    return ftp.context.wrap_socket(sock, server_hostname=ftp.tls_name, session=session)


SENTINEL = "HELP NOOP"  # answered "214 ...": used by no test step, so it marks the end of a step


def send_lines(ftp, *lines: str) -> None:
    """Write ``lines`` in one TLS write (pipelined), bypassing ftplib's one-command-at-a-time."""
    ftp.sock.sendall("".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape"))


def replies_until_sentinel(ftp) -> list[str]:
    """Send the sentinel and return every reply that arrived before its answer (in order)."""
    send_lines(ftp, SENTINEL)
    replies = []
    while not (reply := ftp.getmultiline()).startswith("214 "):
        replies.append(reply)
    return replies


def finals(replies: list[str]) -> list[str]:
    """The final replies (2xx-5xx) among ``replies``; 1xx are preliminary."""
    return [reply for reply in replies if reply[:1] in "2345"]
