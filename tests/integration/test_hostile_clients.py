"""Hostile clients against a real ftpsd on 127.0.0.1.

Clients that break their TLS stream: the session (or the transfer) ends, its counts come back,
and the log says so in one line, never with a traceback. Before: every one of these logged
``ERROR pyftpdlib: unhandled exception`` and a traceback (``OpenSSL.SSL.Error: []`` for a reset
under a reply written by the reply fast path, ``bad record mac``, ``bad record type``, ``tls
alert handshake failure``), and a broken data connection was answered ``426 Internal error``.

Patterns and recursion: no listing argument expands or recurses (docs/ftpsd.md, "Patterns and
recursion")."""

from __future__ import annotations

import ftplib
import os
import socket
import time

from OpenSSL import SSL

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import (
    ZERO,
    bogus_record,
    command,
    data_connect,
    epsv_port,
    login,
    reset,
    starttls,
    wait_counted_zero,
)

_ALERT = b"\x15\x03\x03\x00\x02\x02\x0a"  # a plaintext fatal alert (unexpected_message)


def _no_tracebacks(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 300 :][:3000]
    assert "unhandled exception" not in log, log[-3000:]


def test_control_connections_broken_at_the_tls_layer_end_in_one_line(make_server) -> None:
    server = make_server(max_connections_per_ip=100)
    sessions = 0
    # A reset right behind pipelined commands: the replies meet a dead socket (20 tries: the
    # reset must land before the replies are written, which it almost always does on loopback).
    for _ in range(20):
        sock, conn = login(server, "alice", PASSWORDS["alice"])
        conn.sendall(b"HELP\r\n" * 50)
        reset(sock)
        sessions += 1
    for breakage in ("bogus record", "plaintext alert"):
        for _ in range(3):
            sock, _conn = login(server, "alice", PASSWORDS["alice"])
            if breakage == "bogus record":
                bogus_record(sock)
            else:
                sock.sendall(_ALERT)
            time.sleep(0.05)
            sock.close()
            sessions += 1
    # TLS 1.2 renegotiation (refused: OP_NO_RENEGOTIATION), before any login.
    for _ in range(3):
        sock, conn = starttls(server, max_version=SSL.TLS1_2_VERSION)
        try:
            conn.renegotiate()
            conn.do_handshake()
            command(conn, "NOOP")
        except SSL.Error:
            pass
        sock.close()
        sessions += 1
    assert wait_counted_zero(server) == ZERO
    line = "control TLS error, session closed"
    deadline = time.monotonic() + 10
    while server.log().count(line) < sessions - 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    _no_tracebacks(server)
    # Each broken session that the daemon noticed is one line (a reset may also land before the
    # replies, and is then an ordinary end of session).
    assert sessions - 20 <= server.log().count(line) <= sessions
    server.client().quit()  # still serving


def test_a_broken_data_connection_aborts_its_transfer_with_one_line(server: Server) -> None:
    (server.homes["alice"] / "big").write_bytes(os.urandom(8 << 20))
    ftp = server.client()
    ftp.voidcmd("TYPE I")

    def raw(conn) -> socket.socket:
        return socket.socket(fileno=os.dup(conn.fileno()))

    for command_, breakage in (
        ("STOR up", b"\x17\x03\x03\x00\x20" + bytes(32)),
        ("STOR up", _ALERT),
        ("RETR big", b"\x17\x03\x03\x00\x20" + bytes(32)),
    ):
        port = epsv_port(ftp)
        ftp.putcmd(command_)
        conn = data_connect(ftp, port)
        if command_.startswith("STOR"):
            conn.sendall(b"x" * 50_000)
        else:
            conn.recv(1000)
        under = raw(conn)
        under.sendall(breakage)
        time.sleep(0.3)
        under.close()
        conn.close()
        assert ftp.getresp().startswith("150")
        final = ftp.getline()
        assert final.startswith("426"), final
        if command_.startswith("STOR"):
            assert final.startswith("426 TLS error on the data connection"), final
    ftp.voidcmd("NOOP")  # the session lives on
    assert not [p for p in server.homes["alice"].iterdir() if p.name.endswith(".ftpsd-part")]
    ftp.quit()
    assert wait_counted_zero(server) == ZERO
    _no_tracebacks(server)
    assert server.log().count("data TLS error, transfer aborted") >= 2


def test_patterns_are_never_expanded_and_listings_never_recurse(server: Server) -> None:
    home = server.homes["alice"]
    for a in range(8):
        for b in range(8):
            for c in range(8):
                (home / f"d{a}" / f"e{b}" / f"f{c}").mkdir(parents=True)
    ftp = server.client()
    started = time.monotonic()
    for argument in ("*/*/*/*", "d*", "-R", "-laR /", "d[0-7]/e?/f*", "{d0,d1}"):
        for kind in ("LIST", "NLST", "MLSD"):
            lines: list[str] = []
            try:
                ftp.retrlines(f"{kind} {argument}", lines.append)
            except ftplib.error_perm as err:
                assert str(err)[:3] in ("550", "501"), (kind, argument, err)
            else:
                raise AssertionError((kind, argument, lines))
        if any(ch in argument for ch in "*?["):
            reply = ""
            try:
                ftp.sendcmd(f"STAT {argument}")
            except ftplib.error_perm as err:
                reply = str(err)
            assert reply.startswith("550 Globbing not supported"), reply
    assert time.monotonic() - started < 10
    lines = []
    ftp.retrlines("LIST -la", lines.append)  # one of the four ls options pyftpdlib reads
    assert len(lines) == 8
    ftp.quit()


def test_a_download_nobody_reads_is_bounded_by_data_timeout_and_gives_everything_back(make_server) -> None:
    """A client that stops reading a download (so neither the rest of the data nor the TLS
    close_notify can be sent) holds its data connection until a ``data_timeout`` check finds no
    progress since the previous one (at most twice ``data_timeout``); then the transfer gets
    ``421``, the session ends, and every count (passive ports included) and descriptor is given
    back. (The server never waits for the client's close_notify: it sends its own and closes.)"""
    server = make_server(data_timeout=2)
    (server.homes["alice"] / "big").write_bytes(os.urandom(16 << 20))
    fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    held = []
    for _ in range(3):
        ftp = server.client()
        ftp.voidcmd("TYPE I")
        port = epsv_port(ftp)
        ftp.putcmd("RETR big")
        conn = data_connect(ftp, port)  # the handshake completes; then nothing is read
        assert ftp.getresp().startswith("150")
        held.append((ftp, conn))
    started = time.monotonic()
    for ftp, _conn in held:
        ftp.sock.settimeout(15)
        assert ftp.getline().startswith("421")
    assert time.monotonic() - started < 2 * 2 + 3
    assert wait_counted_zero(server) == ZERO
    deadline = time.monotonic() + 5
    while len(os.listdir(f"/proc/{server.proc.pid}/fd")) > fds and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(f"/proc/{server.proc.pid}/fd")) <= fds
    for ftp, conn in held:
        conn.close()
        ftp.close()
    _no_tracebacks(server)
