"""The reply-order fuzzer (issue 22, class Replies): every command gets exactly one final reply,
in order, and nothing arrives that no command asked for.

Seeded random sessions run random steps: pipelined simple commands, over-long lines, transfers
with the data connection made before or after the command, cut, refused (a TLS session of its
own, plain TCP), never made, aborted while waiting or while moving data, replaced by a new EPSV,
REIN/USER during an upload, REIN with a new login, a failed login pipelined with a good one.
After each step a sentinel command (``HELP NOOP``) is sent: the number of final replies that
arrive before the sentinel's own must equal the number of commands the step sent, and after the
last step nothing more may arrive. Bounded: ``CASES`` sessions or ``BUDGET`` seconds, loopback
only. ``FTPSD_REPLY_SEED=<n>`` reproduces a run.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import ssl
import time

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import (
    ZERO,
    data_connect,
    finals,
    replies_until_sentinel,
    send_lines,
    wait_counted_zero,
)

SEED = int(os.environ.get("FTPSD_REPLY_SEED", random.randrange(1 << 30)))
CASES = 40  # sessions
STEPS = 8  # at most, per session
BUDGET = 45.0  # seconds for the whole run

SIMPLE = ["NOOP", "PWD", "SYST", "STAT", "SIZE small.txt", "MDTM small.txt", "CWD /", "CDUP", "XYZZY"]
SIMPLE += ["DELE missing", "RETR", "MKD", "SIZE", "RMD missing", "FEAT", "HELP", "MODE S", "STRU F"]


class Script:
    """One session's commands and the final replies they are owed."""

    def __init__(self, server: Server, rng: random.Random, log: list[str]) -> None:
        self.server = server
        self.rng = rng
        self.log = log
        self.ftp = server.client("alice")
        self.ftp.voidcmd("TYPE I")
        self.ftp.sock.settimeout(15)
        self.owed = 0
        self.seen: list[str] = []
        self.uploads = 0

    def send(self, *lines: str) -> None:
        self.log.append(" | ".join(line[:40] for line in lines))
        send_lines(self.ftp, *lines)
        self.owed += len(lines)

    def read(self, prefix: str) -> str:
        """Read the next reply, which must start with ``prefix`` (counted if it is final)."""
        reply = self.ftp.getmultiline()
        self.seen.append(reply)
        assert reply.startswith(prefix), (prefix, reply, self.seen, self.log[-5:])
        if reply[:1] in "2345":
            self.owed -= 1
        return reply

    def await_final(self) -> str:
        """Wait for the final reply of the transfer command in flight. Commands sent while data
        moves are answered at once (RFC 959), so a sentinel sent before the server noticed, say,
        a cut data connection would rightly be answered before the transfer's final reply."""
        while (reply := self.ftp.getmultiline())[:1] not in "2345":
            self.seen.append(reply)
        self.seen.append(reply)
        self.owed -= 1
        return reply

    def settle(self) -> None:
        replies = replies_until_sentinel(self.ftp)
        self.seen += replies
        got = len(finals(replies))
        assert got == self.owed, f"owed {self.owed} final replies, got {got}: {self.seen}, {self.log[-5:]}"
        self.owed = 0
        self.seen = []

    def epsv(self) -> int:
        self.send("EPSV")
        reply = self.read("229 ")
        return int(reply.rsplit("|||", 1)[1].split("|", 1)[0])

    def transfer_command(self) -> str:
        choice = self.rng.choice(["RETR small.txt", "RETR big.bin", "LIST", "NLST", "MLSD", "STOR"])
        if choice == "STOR":
            self.uploads += 1
            return f"STOR up{self.uploads}.bin"
        return choice


def _finish(conn, command: str, rng: random.Random, *, cut: bool = False) -> None:
    """Move the data of ``command`` over ``conn``; ``cut``: stop part way without close_notify."""
    try:
        if command.startswith("STOR"):
            data = os.urandom(rng.randrange(1, 300_000))
            conn.sendall(data[: len(data) // 2] if cut else data)
            if not cut:
                conn.unwrap()
        else:
            while conn.recv(65536) and not cut:
                pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def step_simple(s: Script) -> None:
    lines = []
    for _ in range(s.rng.randint(1, 4)):
        if s.rng.random() < 0.15:
            lines.append("NOOP " + "A" * s.rng.randint(2100, 20_000) + " DELE small.txt")
        else:
            lines.append(s.rng.choice(SIMPLE))
    s.send(*lines)


def step_transfer(s: Script) -> None:  # noqa: PLR0911, PLR0912 - one branch per variant
    rng = s.rng
    variant = rng.choice(
        [
            "connect_first",
            "command_first",
            "cut",
            "abort_waiting",
            "abort_moving",
            "own_tls",
            "plain_tcp",
            "no_epsv",
            "epsv_abor",
            "epsv_twice",
            "rein_during",
            "epsv_during",
            "connected_abor",
        ]
    )
    s.log.append(f"transfer:{variant}")
    command = s.transfer_command()
    if variant == "no_epsv":
        s.send("ABOR", command)  # ABOR: no listener left over from an earlier step
        s.await_final()
        return
    port = s.epsv()
    if variant == "epsv_abor":
        s.send("ABOR")
        return
    if variant == "epsv_twice":
        port = s.epsv()
        variant = "connect_first"
    if variant in ("connect_first", "cut", "abort_moving", "rein_during", "epsv_during", "connected_abor"):
        conn = data_connect(s.ftp, port)
        if variant == "connected_abor":
            s.send("ABOR")
            s.settle()
            conn.close()
            return
        s.send(command)
        s.read("1")
        if variant == "abort_moving":
            with contextlib.suppress(OSError, ssl.SSLError):
                if command.startswith("STOR"):
                    conn.sendall(os.urandom(100_000))
                else:
                    conn.recv(1000)
            s.send("ABOR")
            s.settle()
            conn.close()
            return
        if variant == "epsv_during":
            s.send("EPSV")  # the transfer's final reply (226 if done, else 426) comes first, then 229
            conn.close()
            return
        if variant == "rein_during" and command.startswith("STOR"):
            conn.sendall(os.urandom(50_000))
            s.send(rng.choice(["REIN", "USER bob"]))
            s.read("503 ")
        _finish(conn, command, rng, cut=variant == "cut")
        s.await_final()
        return
    if variant == "command_first":
        s.send(command)
        s.read("150 ")
        _finish(data_connect(s.ftp, port), command, rng)
        s.await_final()
        return
    if variant == "abort_waiting":
        s.send(command)
        s.read("150 ")
        s.send("ABOR")
        return
    # A connection the server must refuse, then the command.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if variant == "own_tls":
        context = ssl.create_default_context(cafile=str(s.server.cafile))
        with contextlib.suppress(OSError, ssl.SSLError):
            context.wrap_socket(sock, server_hostname="localhost").recv(10)
    sock.close()
    if rng.random() < 0.5:
        time.sleep(0.2)  # let the server see it first (or not)
    s.send(command)
    s.await_final()


def step_rein(s: Script) -> None:
    lines = ["REIN", "USER alice"]
    if s.rng.random() < 0.5:
        lines += ["PASS wrong", "USER alice"]
    lines += [f"PASS {PASSWORDS['alice']}", "PBSZ 0", "PROT P", "TYPE I"]
    s.send(*lines)


def step_login_pipeline(s: Script) -> None:
    password = f"PASS {PASSWORDS['alice']}"
    s.send("USER alice", password, password, "NOOP", "PBSZ 0", "PROT P", "TYPE I")


STEPS_BY_WEIGHT = [step_simple] * 3 + [step_transfer] * 6 + [step_rein, step_login_pipeline]


def test_every_command_gets_exactly_one_final_reply_in_order(make_server) -> None:
    server = make_server(ban_after_failures=0, login_failure_delay=0.05, max_connections_per_ip=0, workers=2)
    home = server.homes["alice"]
    (home / "small.txt").write_bytes(os.urandom(5000))
    (home / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    rng = random.Random(SEED)
    log: list[str] = [f"seed {SEED}"]
    started = time.monotonic()
    cases = 0
    while cases < CASES and time.monotonic() - started < BUDGET:
        cases += 1
        script = Script(server, rng, log)
        for _ in range(rng.randint(1, STEPS)):
            rng.choice(STEPS_BY_WEIGHT)(script)
            script.settle()
        # Nothing unsolicited afterwards either.
        script.ftp.sock.settimeout(0.3)
        try:
            extra = script.ftp.sock.recv(4096)
        except TimeoutError:
            extra = b""
        assert extra == b"", (extra, log[-5:])
        script.ftp.sock.settimeout(10)
        script.ftp.quit()
    assert cases >= 5, f"only {cases} sessions in {BUDGET} s (seed {SEED})"
    assert wait_counted_zero(server) == ZERO
    assert not [p.name for p in home.iterdir() if p.name.endswith(".ftpsd-part")]
    assert "Traceback" not in server.log()


def test_replies_to_a_pipelined_flood_arrive_whole_once_each_and_in_order(server: Server) -> None:
    """Issue 23 (the reply path writes a reply at once when nothing is queued): a client that
    pipelines thousands of commands and reads nothing until it has sent them all fills the
    server's socket, so replies are written at once, partly, queued behind each other and sent
    from the queue. Every command still gets its one reply, byte for byte, in order."""
    ftp = server.client("alice")
    ftp.sock.settimeout(30)
    one = ftp.sock
    # A small, fixed receive buffer: the server's send buffer (at most 4 MiB here) is then
    # all that holds the unread replies.
    one.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    one.sendall(b"HELP\r\n")
    reply = b""
    while not reply.endswith(b"\r\n") or not reply.split(b"\r\n")[-2].startswith(b"214 "):
        reply += one.recv(65536)
    count = (8 << 20) // len(reply)  # replies well beyond what the socket buffers hold
    lines = [b"NOOP\r\n" if i % 7 == 3 else b"HELP\r\n" for i in range(count)]
    one.sendall(b"".join(lines))
    time.sleep(1.0)  # let the server answer into a full socket before anything is read
    noop = b"200 I successfully did nothing'.\r\n"
    expected = b"".join(reply if line == b"HELP\r\n" else noop for line in lines)
    got = bytearray()
    while len(got) < len(expected):
        chunk = one.recv(1 << 20)
        assert chunk, f"EOF after {len(got)} of {len(expected)} bytes"
        got += chunk
    assert bytes(got[: len(expected)]) == expected
    one.settimeout(0.3)
    with contextlib.suppress(TimeoutError):
        assert one.recv(4096) == b""  # nothing more than one reply per command
    one.settimeout(10)
    ftp.quit()
