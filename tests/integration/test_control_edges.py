"""Control-channel edges found by the review of the adversarial round (e54be7c), against a real
ftpsd on 127.0.0.1: a second AUTH TLS, RFC 959's urgent ABOR, lines behind QUIT, and two flows
the reply pacing and the close grace must leave alone (a QUIT during a slow download, a big STAT
with commands pipelined behind it)."""

from __future__ import annotations

import time

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import data_connect, epsv_port, login, read_reply, send_lines


def _finals(data: bytes) -> list[bytes]:
    return [line[:4] for line in data.split(b"\r\n") if line[:3].isdigit() and line[3:4] == b" "]


def test_commands_pipelined_after_a_refused_second_auth_are_answered(server: Server) -> None:
    # Before: the 503 came, and NOOP and SYST were dropped as "plaintext pipelined after AUTH TLS".
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    conn.sendall(b"AUTH TLS\r\nNOOP\r\nSYST\r\n")
    data = b""
    for _ in range(3):  # at most one reply per read; three commands
        reply = read_reply(conn)
        if not reply:
            break
        data += reply
        if len(_finals(data)) >= 3:
            break
    assert _finals(data) == [b"503 ", b"200 ", b"215 "], (data, server.log()[-600:])
    assert "plaintext bytes pipelined after AUTH TLS" not in server.log()


def test_telnet_ip_synch_prefixed_abor_and_stat_still_run(server: Server) -> None:
    # RFC 959 4.1.3: IAC IP IAC DM before ABOR/STAT/QUIT; not UTF-8, but not a name either.
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    conn.sendall(b"\xff\xf4\xff\xf2ABOR\r\n")
    assert read_reply(conn).startswith(b"225"), "urgent ABOR refused"
    conn.sendall(b"\xff\xf4\xff\xf2STAT\r\n")
    assert b"\r\n211 " in b"\r\n" + read_reply(conn)
    # The exception is that prefix before those three commands only: elsewhere it is refused.
    conn.sendall(b"\xff\xf4\xff\xf2DELE x\r\n")
    assert read_reply(conn).startswith(b"501")


def test_lines_behind_quit_are_not_run(server: Server) -> None:
    (server.homes["alice"] / "keep.txt").write_bytes(b"k")
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    conn.sendall(b"QUIT\r\nDELE keep.txt\r\nSIZE x\r\nCWD /\r\n")
    assert read_reply(conn).startswith(b"221")
    time.sleep(0.5)  # before, the same read's other lines ran right after QUIT: a traceback each
    assert (server.homes["alice"] / "keep.txt").exists()
    assert "Traceback" not in server.log(), server.log()[-2000:]


def test_quit_during_a_slow_download_lets_it_finish_past_the_close_grace(server: Server) -> None:
    (server.homes["alice"] / "big.bin").write_bytes(b"z" * (2 << 20))
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    port = epsv_port(ftp)
    assert ftp.sendcmd("RETR big.bin").startswith("150")
    conn = data_connect(ftp, port)
    got = conn.recv(65536)
    send_lines(ftp, "QUIT")  # RFC 959: the transfer completes first
    started = time.monotonic()
    while len(got) < 2 << 20:  # read slowly: about 7 s, longer than close_grace (5 s)
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
        time.sleep(0.2)
    assert time.monotonic() - started > server_close_grace()
    assert len(got) == 2 << 20
    conn.close()
    replies = sorted(ftp.getmultiline()[:3] for _ in range(2))
    assert replies == ["221", "226"], replies


def server_close_grace() -> float:
    from ftpsd.handlers import FtpsdHandler

    return FtpsdHandler.close_grace


def test_a_big_stat_then_pipelined_commands_all_answered(server: Server) -> None:
    d = server.homes["alice"] / "d"
    d.mkdir()
    for i in range(3000):  # about 200 KiB of STAT output: past the reply backlog limit
        (d / f"entry-with-a-long-name-{i:05d}").write_bytes(b"")
    ftp = server.client()
    send_lines(ftp, "STAT d", "NOOP", "STAT d", "PWD", "SYST")
    finals = [ftp.getmultiline().splitlines()[-1][:3] for _ in range(5)]
    assert finals == ["213", "200", "213", "257", "215"]
    ftp.quit()
