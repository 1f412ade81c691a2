"""A bounded, seeded protocol fuzzer against a running ftpsd (issue 11).

Malformed and oversized commands, random bytes, garbage TLS records, TLS 1.2 renegotiation,
half-open and cut handshakes, plaintext pipelined after ``AUTH TLS``, resets at random points:
at most ``CASES`` cases within ``BUDGET`` seconds, reproducible from ``FTPSD_FUZZ_SEED``.
Afterwards every count in the shared limits table is back to 0, each worker's memory stayed
bounded, and a fresh session still logs in and transfers a file intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import time
from collections.abc import Callable

from OpenSSL import SSL

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import (
    ZERO,
    bogus_record,
    client_context,
    command,
    connect,
    login,
    read_reply,
    reset,
    starttls,
    status,
    wait_counted_zero,
)

SEED = int(os.environ.get("FTPSD_FUZZ_SEED", "1104"))
CASES = 240
BUDGET = 30.0  # seconds for all cases
RSS_GROWTH_LIMIT = 48 * 1024 * 1024  # bytes a worker may grow by over the whole run

VERBS = [
    "USER", "PASS", "AUTH", "PBSZ", "PROT", "CWD", "CDUP", "PWD", "LIST", "NLST", "MLSD", "MLST",
    "RETR", "STOR", "STOU", "APPE", "REST", "RNFR", "RNTO", "DELE", "MKD", "RMD", "SIZE", "MDTM",
    "MFMT", "PASV", "EPSV", "PORT", "EPRT", "TYPE", "MODE", "STRU", "ABOR", "NOOP", "FEAT", "OPTS",
    "SITE", "STAT", "HELP", "SYST", "ALLO", "CCC", "XYZZY", "",
]  # fmt: skip
NASTY = ["\x00", "\n", "\r", "\x1b[2J", "\x7f", "\x85", "\u2028", "../" * 8, "%s%n", "/", "\\", "\udcff", "*"]


def _arg(rng: random.Random) -> str:
    parts = [
        rng.choice(NASTY) if rng.random() < 0.4 else "x" * rng.randint(0, 40)
        for _ in range(rng.randint(0, 5))
    ]
    return "".join(parts)


def _line(rng: random.Random) -> bytes:
    text = f"{rng.choice(VERBS)} {_arg(rng)}" if rng.random() < 0.9 else _arg(rng)
    return text.encode("utf-8", "surrogateescape") + rng.choice([b"\r\n", b"\n", b"\r\n", b""])


def _client_hello(server: Server) -> bytes:
    conn = SSL.Connection(client_context(server), None)
    conn.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()  # writes the ClientHello into the memory BIO, then wants the reply
    return conn.bio_read(65536)


def _end(sock, rng: random.Random) -> None:
    if rng.random() < 0.3:
        reset(sock)
    else:
        sock.close()


def case_random_bytes(server: Server, rng: random.Random) -> None:
    sock = connect(server, implicit=rng.random() < 0.3, timeout=2)
    sock.sendall(rng.randbytes(rng.randint(1, 4096)))
    _end(sock, rng)


def case_oversized_line(server: Server, rng: random.Random) -> None:
    sock = connect(server, timeout=2)
    read_reply(sock)
    sock.sendall(b"STOR " + b"A" * rng.randint(2000, 70000) + rng.choice([b"\r\n", b""]))
    _end(sock, rng)


def case_malformed_plain(server: Server, rng: random.Random) -> None:
    sock = connect(server, timeout=2)
    read_reply(sock)
    sock.sendall(b"".join(_line(rng) for _ in range(rng.randint(1, 12))))
    _end(sock, rng)


def case_garbage_instead_of_hello(server: Server, rng: random.Random) -> None:
    sock = connect(server, timeout=2)
    read_reply(sock)
    sock.sendall(b"AUTH TLS\r\n")
    read_reply(sock)
    sock.sendall(rng.choice([b"\x16\x03\x01", b"\x17\x03\x03", b""]) + rng.randbytes(rng.randint(1, 2000)))
    _end(sock, rng)


def case_cut_handshake(server: Server, rng: random.Random) -> None:
    implicit = rng.random() < 0.4
    sock = connect(server, implicit=implicit, timeout=2)
    if not implicit:
        read_reply(sock)
        sock.sendall(b"AUTH TLS\r\n")
        read_reply(sock)
    hello = _client_hello(server)
    sock.sendall(hello[: rng.randint(0, len(hello) - 1)])
    _end(sock, rng)


def case_pipelined_after_auth(server: Server, rng: random.Random) -> None:
    pipelined = b"".join(_line(rng) for _ in range(rng.randint(1, 6)))
    try:
        sock, conn = starttls(server, pipelined=pipelined)
    except SSL.Error:
        return  # the pipelined bytes may have been read as a (broken) ClientHello's prefix
    assert command(conn, "SYST").startswith(b"215")
    _end(sock, rng)


def case_bogus_record(server: Server, rng: random.Random) -> None:
    if rng.random() < 0.5:
        sock, _conn = login(server, "alice", PASSWORDS["alice"])
    else:
        sock, _conn = starttls(server)
    if rng.random() < 0.7:
        bogus_record(sock)
    else:
        sock.sendall(rng.randbytes(rng.randint(1, 600)))
    _end(sock, rng)


def case_renegotiation(server: Server, rng: random.Random) -> None:
    sock, conn = starttls(server, max_version=SSL.TLS1_2_VERSION)
    try:
        conn.renegotiate()
        conn.do_handshake()
        conn.sendall(b"NOOP\r\n")
        conn.recv(1024)
    except SSL.Error:
        pass
    _end(sock, rng)


def case_commands_after_login(server: Server, rng: random.Random) -> None:
    sock, conn = login(server, "alice", PASSWORDS["alice"])
    for _ in range(rng.randint(1, 8)):
        conn.sendall(_line(rng) + b"\r\n")
    _end(sock, rng)


CASE_KINDS: list[Callable[[Server, random.Random], None]] = [
    case_random_bytes,
    case_oversized_line,
    case_malformed_plain,
    case_garbage_instead_of_hello,
    case_cut_handshake,
    case_pipelined_after_auth,
    case_bogus_record,
    case_renegotiation,
    case_commands_after_login,
]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_protocol_fuzzer_leaves_nothing_behind(make_server) -> None:
    server = make_server(
        workers=2, max_connections_per_ip=0, ban_after_failures=0, login_failure_delay=0.0, idle_timeout=5
    )
    rng = random.Random(SEED)
    pids = [w["pid"] for w in status(server)["workers"]]
    for kind in CASE_KINDS:  # warm up every path once, then measure memory from here
        kind(server, rng)
    assert wait_counted_zero(server) == ZERO, f"seed {SEED}: after warm-up"
    before = {pid: _rss(pid) for pid in pids}
    deadline = time.monotonic() + BUDGET
    ran: dict[str, int] = {}
    for _ in range(CASES):
        if time.monotonic() > deadline:
            break
        kind = rng.choice(CASE_KINDS)
        ran[kind.__name__] = ran.get(kind.__name__, 0) + 1
        # The server may drop a hostile session at any point; that is allowed.
        with contextlib.suppress(OSError, SSL.Error):
            kind(server, rng)
    print(f"fuzz seed {SEED}: {sum(ran.values())} cases {ran}")  # shown with pytest -s
    assert set(ran) == {kind.__name__ for kind in CASE_KINDS}, f"seed {SEED}: {ran}"
    assert wait_counted_zero(server, timeout=30) == ZERO, f"seed {SEED}: {ran}"
    assert [w["pid"] for w in status(server)["workers"]] == pids, "a worker died"
    for pid in pids:
        growth = _rss(pid) - before[pid]
        assert growth < RSS_GROWTH_LIMIT, f"seed {SEED}: worker {pid} grew by {growth} bytes"
    payload = random.Random(SEED).randbytes(256 * 1024)
    ftp = server.client()
    ftp.storbinary("STOR after-fuzz.bin", io.BytesIO(payload))
    got = io.BytesIO()
    ftp.retrbinary("RETR after-fuzz.bin", got.write)
    ftp.quit()
    assert hashlib.sha256(got.getvalue()).hexdigest() == hashlib.sha256(payload).hexdigest()
    # Client misbehaviour is logged in one line each, never as a daemon error with a traceback.
    log = server.log()
    assert "Traceback" not in log, f"seed {SEED}: " + log[log.find("Traceback") - 400 :][:3000]
