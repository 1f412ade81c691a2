"""Clients that send commands and do not read the replies: bounded memory, bounded time.

Every command is a few bytes and its reply up to a hundred times more (``HELP``: 6 bytes in, 400
out; ``STAT`` of a directory). pyftpdlib reads commands and queues replies whatever the client
reads, so a client that pipelines commands and never reads grew the worker by ~90 bytes per byte
it sent (4 MB of ``HELP`` before any login: +370 MB), and a session whose replies could not be
sent never ended: ``421 Login timed out.``/``Control connection timed out.`` waited behind them
for ever, holding its counts (``max_connections_per_ip``). docs/ftpsd.md, "Security model → Replies".
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import threading
import time

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import ZERO, closed_by_server, counted, status, wait_counted_zero

CLOSE_GRACE = 5  # ftpsd.handlers.FtpsdHandler.close_grace


def _rss_kib(server: Server) -> int:
    pid = status(server)["workers"][0]["pid"]
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def _small_socket(server: Server) -> socket.socket:
    """A client socket with small kernel buffers (so the server's queue is what fills up)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    return sock


def _send_until_blocked(sock: socket.socket, data: bytes, limit_seconds: float) -> int:
    """Send ``data`` in order until all of it went out, a send blocks for 2 s (the server stopped
    reading) or ``limit_seconds`` passed; returns the bytes sent."""
    sock.settimeout(2)
    view = memoryview(data)
    sent = 0
    deadline = time.monotonic() + limit_seconds
    try:
        while sent < len(view) and time.monotonic() < deadline:
            sent += sock.send(view[sent : sent + 65536])
    except OSError:
        pass
    return sent


def test_a_client_that_never_reads_costs_bounded_memory_and_still_times_out(make_server) -> None:
    """4 MB of ``HELP`` before any login, no reply read: the worker stops reading (its RSS grows
    by less than 24 MiB; pyftpdlib's queue grew by ~370 MB), and the session still ends at
    ``login_timeout`` (+ the close grace) with every count back to 0."""
    server = make_server(login_timeout=3, idle_timeout=60)
    before = _rss_kib(server)
    sock = _small_socket(server)
    assert sock.recv(100).startswith(b"220")
    sent = _send_until_blocked(sock, b"HELP\r\n" * 700_000, 20)
    grown = _rss_kib(server) - before
    assert grown < 24 * 1024, f"worker RSS grew by {grown} KiB after {sent} bytes of unread HELP"
    # Never read: the 421 cannot be delivered, the session is cut all the same.
    deadline = time.monotonic() + 3 + CLOSE_GRACE + 10
    while counted(server) != ZERO and time.monotonic() < deadline:
        time.sleep(0.5)
    assert counted(server) == ZERO, "a session whose replies are not read outlived login_timeout"
    assert closed_by_server(sock, 5)
    sock.close()
    assert "Traceback" not in server.log()


class _BioTLS:
    """TLS over a plain socket through memory BIOs: records are made here, in the test's thread,
    and a writer thread only sends bytes, so the test can write without reading."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.buffer = b""

    def _feed(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            return False
        self.incoming.write(chunk)
        return True

    def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                if not self._feed():
                    raise ConnectionError("EOF in the TLS handshake") from None
        self.sock.sendall(self.outgoing.read())

    def records(self, data: bytes) -> bytes:
        self.obj.write(data)
        return self.outgoing.read()

    def final_lines(self, count: int) -> list[str]:
        """The next ``count`` final reply lines (``ddd text``), continuation lines skipped."""
        finals: list[str] = []
        while len(finals) < count:
            while b"\r\n" not in self.buffer:
                try:
                    self.buffer += self.obj.read(1 << 16)
                except ssl.SSLWantReadError:
                    if not self._feed():
                        raise ConnectionError(f"EOF after {len(finals)} of {count} replies") from None
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
                finals.append(line.decode())
        return finals


# A command and the start of its one final reply (alice's home holds f.txt and d/).
_COMMANDS = [
    ("HELP", "214 Help command successful."),
    ("HELP NOOP", "214 Syntax: NOOP"),
    ("NOOP", "200 "),
    ("PWD", '257 "/"'),
    ("TYPE I", "200 Type set to: Binary."),
    ("SIZE f.txt", "213 5"),
    ("SIZE missing", "550 "),
    ("STAT d", "213 End of status."),
    ("FEAT", "211 End FEAT."),
    ("BOGUS", "500 "),
]


def test_replies_stay_one_per_command_in_order_across_a_backlog(make_server) -> None:
    """A logged-in TLS session pipelines 12,000 seeded random commands (~25 MB of replies, more than
    the kernel buffers hold) and reads only after sending them all: exactly one final reply per
    command, in order (the server paused reading instead of queuing). Then the same session
    floods again and never reads: it ends at ``idle_timeout`` (+ the close grace), counts 0."""
    seed = int(os.environ.get("FTPSD_BACKLOG_SEED", random.randrange(1 << 32)))
    print(f"FTPSD_BACKLOG_SEED={seed}")
    rng = random.Random(seed)
    server = make_server(idle_timeout=4, login_timeout=60)
    home = server.homes["alice"]
    (home / "f.txt").write_bytes(b"hello")
    (home / "d").mkdir()
    for i in range(300):  # STAT d: a multi-line reply of 300 entries (~20 KB)
        (home / "d" / f"entry-{i:04d}").write_bytes(b"")
    sock = _small_socket(server)
    assert sock.recv(100).startswith(b"220")
    sock.sendall(b"AUTH TLS\r\n")
    assert sock.recv(100).startswith(b"234")
    tls = _BioTLS(sock, server.context())
    tls.handshake()
    sock.sendall(tls.records(f"USER alice\r\nPASS {PASSWORDS['alice']}\r\nTYPE I\r\n".encode()))
    assert [line[:4] for line in tls.final_lines(3)] == ["331 ", "230 ", "200 "]

    plan = [rng.choice(_COMMANDS) for _ in range(12000)]
    blob = tls.records("".join(f"{command}\r\n" for command, _ in plan).encode())
    writer = threading.Thread(target=sock.sendall, args=(blob,), daemon=True)
    writer.start()
    writer.join(3)  # the writer blocks once the server stops reading (it no longer queues)
    replies = tls.final_lines(len(plan))
    writer.join(20)
    assert not writer.is_alive()
    for index, ((command, want), got) in enumerate(zip(plan, replies, strict=True)):
        assert got.startswith(want), f"seed {seed}: command {index} {command!r} answered {got!r}"
    sock.sendall(tls.records(b"HELP NOOP\r\n"))
    assert tls.final_lines(1)[0].startswith("214 Syntax: NOOP")  # nothing extra before it

    _send_until_blocked(sock, tls.records(b"STAT d\r\n" * 400), 15)  # 3 KB in, 8 MB of replies
    deadline = time.monotonic() + 4 + CLOSE_GRACE + 10
    while counted(server) != ZERO and time.monotonic() < deadline:
        time.sleep(0.5)
    assert wait_counted_zero(server, timeout=1) == ZERO, "a session not reading outlived idle_timeout"
    assert closed_by_server(sock, 5)
    sock.close()
    assert "Traceback" not in server.log()
