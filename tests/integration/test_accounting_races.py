"""Accounting under races, against a real two-worker ftpsd on 127.0.0.1: many concurrent logins,
logouts, resets and aborted handshakes of one user from several threads, with reloads in
between; afterwards every count is exactly 0 and the per-user cap still admits exactly N.
Bounded: 200 connections, 8 threads, 45 s."""

from __future__ import annotations

import contextlib
import random
import threading
import time

from OpenSSL import SSL

from tests.integration.conftest import PASSWORDS
from tests.integration.sessions import (
    ZERO,
    client_context,
    command,
    connect,
    login,
    read_reply,
    reset,
    starttls,
    wait_counted_zero,
)

_CAP = 3  # alice's max_connections
_WAYS = ("quit", "reset", "reset-after-pasv", "half-handshake", "cut-handshake", "wrong-password", "re-login")


def _one(server, rng: random.Random) -> str:
    """One connection that ends one of many ways; returns what it did (for the failure message)."""
    way = rng.choice(_WAYS)
    if way == "half-handshake":  # AUTH TLS, then a ClientHello cut off, then a reset
        sock = connect(server)
        read_reply(sock)
        sock.sendall(b"AUTH TLS\r\n")
        read_reply(sock)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(20))
        reset(sock)
        return way
    if way == "cut-handshake":  # a handshake the server is in the middle of answering
        sock = connect(server)
        read_reply(sock)
        sock.sendall(b"AUTH TLS\r\n")
        read_reply(sock)
        conn = SSL.Connection(client_context(server), sock)
        conn.set_connect_state()
        with contextlib.suppress(SSL.Error):
            conn.do_handshake()
        reset(sock)
        return way
    if way == "wrong-password":
        sock, conn = starttls(server)
        command(conn, "USER alice")
        command(conn, "PASS nope")
        reset(sock)
        return way
    try:
        sock, conn = login(server, "alice", PASSWORDS["alice"])
    except AssertionError:
        return "refused"  # the cap (421) while others hold it: a normal outcome
    if way == "quit":
        command(conn, "QUIT")
        sock.close()
    elif way == "reset":
        reset(sock)
    elif way == "reset-after-pasv":
        command(conn, "PBSZ 0")
        command(conn, "PROT P")
        command(conn, "EPSV")
        reset(sock)
    else:  # re-login: REIN/USER/PASS pipelined in one record, then a reset: a re-login racing the close
        conn.sendall(f"REIN\r\nUSER alice\r\nPASS {PASSWORDS['alice']}\r\nNOOP\r\n".encode())
        time.sleep(rng.random() * 0.05)
        reset(sock)
    return way


def test_counts_return_to_zero_after_concurrent_churn_and_reloads(make_server) -> None:
    server = make_server(
        workers=2,
        max_connections_per_ip=0,
        ban_after_failures=0,
        login_failure_delay=0.0,
        users={"alice": {"max_connections": _CAP}},
    )
    seed = random.randrange(1 << 30)
    deadline = time.monotonic() + 45
    budget = iter(range(200))
    lock = threading.Lock()
    done: list[str] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        rng = random.Random(seed + index)
        while time.monotonic() < deadline:
            with lock:
                if next(budget, None) is None:
                    return
            try:
                way = _one(server, rng)
            except (OSError, SSL.Error):
                way = "client-side error"  # the server cut a connection first: fine
            except BaseException as exc:  # reported below
                errors.append(exc)
                return
            with lock:
                done.append(way)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    reloads = 0
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline and reloads < 5:
        time.sleep(1.0)
        result = server.reload_command(timeout=30)
        assert result.returncode == 0, result.stderr
        reloads += 1
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    assert not errors, (seed, errors[:3])
    assert len(done) >= 50, (seed, len(done))
    assert wait_counted_zero(server, timeout=30) == ZERO, (seed, sorted(set(done)))
    # The cap still admits exactly N, and the N+1st is refused.
    held = [login(server, "alice", PASSWORDS["alice"]) for _ in range(_CAP)]
    sock, conn = starttls(server)
    command(conn, "USER alice")
    assert command(conn, f"PASS {PASSWORDS['alice']}").startswith(b"421"), seed
    sock.close()
    for held_sock, held_conn in held:
        command(held_conn, "QUIT")
        held_sock.close()
    assert wait_counted_zero(server) == ZERO
    assert "Traceback" not in server.log(), (seed, server.log()[-3000:])
