"""Issue 22, classes Replies, Timers, Line framing and Passive mode: one test per row (1, 2, 3, 4,
5, 9, 10, 11, 12, 13), each against a running daemon with real sockets on loopback.

The common contract: every command gets exactly one final reply, in order, and nothing arrives
that no command asked for (a ``421`` that ends the session excepted); timers fire whatever other
sessions do. docs/ftpsd.md, "Security model → Replies / Timers / Line framing".
"""

from __future__ import annotations

import ftplib
import os
import socket
import threading
import time

import pytest
from OpenSSL import SSL

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import (
    ZERO,
    client_context,
    closed_by_server,
    command,
    connect,
    data_connect,
    epsv_port,
    finals,
    login,
    read_reply,
    replies_until_sentinel,
    send_lines,
    starttls,
    wait_counted_zero,
)


def _session(server: Server, user: str = "alice"):
    ftp = server.client(user)
    ftp.voidcmd("TYPE I")
    return ftp


def _lines_until(conn: SSL.Connection, final_code: bytes, limit: float = 10.0) -> list[bytes]:
    """Every reply line on a raw TLS control connection until a final line starting ``final_code``."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(65536)
        except (SSL.Error, OSError):
            break
        if not chunk:
            break
        data += chunk
        lines = data.split(b"\r\n")
        if any(line.startswith(final_code + b" ") for line in lines[:-1]):
            return lines[:-1]
    raise AssertionError(f"no {final_code!r} reply; got {data!r}")


def _final_lines(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" "]


# -- Replies ---------------------------------------------------------------------------------------


def test_row1_foreign_connection_to_a_passive_port_says_nothing_on_the_control_connection(
    server: Server,
) -> None:
    """Row 1: connections from another address to the victim's passive port are dropped without a
    word; the victim's replies stay in step and its own data connection still works."""
    (server.homes["alice"] / "f.txt").write_bytes(b"hello")
    ftp = _session(server)
    port = epsv_port(ftp)
    for _ in range(3):
        foreign = socket.socket()
        foreign.bind(("127.0.0.2", 0))
        foreign.connect(("127.0.0.1", port))
        assert closed_by_server(foreign, 5), "a foreign data connection was kept"
        foreign.close()
    assert ftp.voidcmd("NOOP").startswith("200")  # not 425 (pyftpdlib's reply to no command)
    conn = data_connect(ftp, port)  # the listener still waits for the session's own client
    assert ftp.sendcmd("RETR f.txt")[:3] in ("125", "150")
    assert conn.recv(100) == b"hello"
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    ftp.quit()
    assert "data connection from foreign address 127.0.0.2" in server.log()


def test_rows3_9_clients_cannot_create_names_with_control_characters(server: Server) -> None:
    """Rows 3 and 9: MKD, STOR, APPE and RNTO of a name with CR/LF (or any non-printable) are
    refused with 553 before anything is created."""
    home = server.homes["alice"]
    (home / "src").write_bytes(b"s")
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    for line in ("PBSZ 0", "PROT P"):
        assert command(conn, line).startswith(b"200")
    assert command(conn, "EPSV").startswith(b"229")  # so STOR gets past "no data connection"
    for line in ("MKD x\n213 forged", "STOR y\r213 forged", "APPE z\n226 x", "MKD e\x1b[2J"):
        assert command(conn, line).startswith(b"553 "), line
    assert command(conn, "RNFR src").startswith(b"350")
    assert command(conn, "RNTO w\n250 forged").startswith(b"553 ")
    assert sorted(p.name for p in home.iterdir()) == ["src"]


@pytest.mark.parametrize("listing", ["STAT", "LIST", "NLST", "MLSD"])
def test_rows3_9_listings_escape_names(server: Server, listing: str) -> None:
    """Rows 3 and 9: a name a local account made with CR/LF cannot add a reply line to STAT or an
    entry to LIST/NLST/MLSD: it is escaped, one line per entry."""
    home = server.homes["alice"]
    (home / "d").mkdir()
    (home / "d" / "ok").write_bytes(b"")
    (home / "d" / "f\r\n213 forged\r\nx").write_bytes(b"")
    if listing == "STAT":
        _sock, conn = login(server, "alice", PASSWORDS["alice"])
        conn.sendall(b"STAT d\r\nNOOP\r\n")
        lines = _lines_until(conn, b"200")
        assert [line[:4] for line in _final_lines(lines)] == [b"213 ", b"200 "], lines
        assert any(b"f\\x0d\\x0a213 forged\\x0d\\x0ax" in line for line in lines), lines
        return
    ftp = _session(server)
    entries: list[str] = []
    ftp.retrlines(f"{listing} d", entries.append)
    ftp.quit()
    assert len(entries) == 2, entries
    assert not any(entry.startswith("213") or entry == "x" for entry in entries), entries
    assert any(entry.endswith("f\\x0d\\x0a213 forged\\x0d\\x0ax") for entry in entries), entries


def test_row10_transfer_without_a_data_connection_gets_one_final_reply(server: Server) -> None:
    """Row 10: RETR with no PASV/PORT got 150 and never a final reply; now 425, in order."""
    (server.homes["alice"] / "f.txt").write_bytes(b"hello")
    ftp = _session(server)
    send_lines(ftp, "RETR f.txt", "LIST", "STOR new.txt")
    replies = replies_until_sentinel(ftp)
    assert [reply[:4] for reply in replies] == ["425 "] * 3, replies
    assert not (server.homes["alice"] / "new.txt").exists()
    ftp.quit()


def test_row10_same_address_client_on_the_passive_port_sends_nothing_unsolicited(server: Server) -> None:
    """Row 10: another client from the victim's address takes its passive port with a TLS session
    of its own; the refused handshake's 522 answered no command. Now it answers the next transfer
    command, which gets exactly one final reply."""
    (server.homes["alice"] / "f.txt").write_bytes(b"hello")
    ftp = _session(server)
    port = epsv_port(ftp)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    intruder = SSL.Connection(client_context(server), raw)
    intruder.set_connect_state()
    with pytest.raises((SSL.Error, OSError)):
        intruder.do_handshake()
        intruder.recv(10)
    raw.close()
    time.sleep(0.5)  # the refused handshake has been handled by now
    assert finals(replies_until_sentinel(ftp)) == []  # nothing unsolicited
    send_lines(ftp, "RETR f.txt")
    replies = replies_until_sentinel(ftp)
    assert len(finals(replies)) == 1 and replies[-1].startswith(("522 ", "425 ")), replies
    ftp.quit()


def test_row12_unused_passive_listener_closes_silently(make_server) -> None:
    """Row 12: PASV and no connection: the listener closes (after idle_timeout here, 3 s) without an
    unsolicited "421 Passive data channel timed out"; the session goes on."""
    server = make_server(idle_timeout=3)
    ftp = _session(server)
    port = epsv_port(ftp)
    for _ in range(5):  # NOOPs keep the session alive; each is answered by its own 200, nothing else
        time.sleep(1)
        send_lines(ftp, "NOOP")
        assert [reply[:4] for reply in replies_until_sentinel(ftp)] == ["200 "]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # A transfer command waiting for the listener gets its one final reply when it gives up.
    epsv_port(ftp)
    send_lines(ftp, "LIST")
    assert ftp.getmultiline()[:3] == "150"
    ftp.sock.settimeout(10)
    assert ftp.getmultiline().startswith("425 ")
    ftp.close()  # (the session's own idle timeout, also 3 s, may end it now: 421 and close)


# -- Timers ----------------------------------------------------------------------------------------


def test_row2_a_chatty_session_cannot_starve_other_sessions_timeouts(make_server) -> None:
    """Row 2: one logged-in session sends NOOP faster than idle_timeout; the idle timeouts of the
    sessions opened after it (silent, half handshake, logged in and silent) still fire."""
    idle = 2
    server = make_server(idle_timeout=idle, max_connections_per_ip=0)
    chatty = _session(server)
    stop = threading.Event()

    def chatter() -> None:
        while not stop.wait(0.3):
            chatty.voidcmd("NOOP")

    thread = threading.Thread(target=chatter, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        silent = []
        for _ in range(4):
            sock = connect(server)
            assert read_reply(sock).startswith(b"220")
            silent.append(sock)
        half = connect(server)
        read_reply(half)
        half.sendall(b"AUTH TLS\r\n")
        read_reply(half)
        half.sendall(b"\x16\x03\x01\x00\x10")  # the start of a ClientHello, never finished
        silent.append(half)
        silent.append(login(server, "bob", PASSWORDS["bob"])[0])
        started = time.monotonic()
        margin = 6  # generous: the loop's own wake-ups, a loaded machine
        for sock in silent:
            assert closed_by_server(sock, idle + margin - (time.monotonic() - started)), (
                "an idle session outlived idle_timeout while another session was chatty"
            )
        assert thread.is_alive()  # the chatty session was served all along
    finally:
        stop.set()
        thread.join(5)
    chatty.quit()


def test_row13_a_session_that_never_logs_in_is_closed(make_server) -> None:
    """Row 13: NOOP every half second before login used to keep a session forever; now
    login_timeout ends it (421). A logged-in session is not subject to it."""
    server = make_server(login_timeout=2)
    half = connect(server)  # a TLS handshake that never finishes ends by the same deadline
    read_reply(half)
    half.sendall(b"AUTH TLS\r\n")
    read_reply(half)
    half.sendall(b"\x16\x03\x01\x00\x10")
    _sock, conn = starttls(server)
    logged_sock, logged = login(server, "alice", PASSWORDS["alice"])
    started = time.monotonic()
    replies = []
    while time.monotonic() - started < 8:
        try:
            reply = command(conn, "NOOP")
        except (SSL.Error, OSError):
            break
        if not reply:
            break
        replies.append(reply)
        if reply.startswith(b"421"):
            break
        time.sleep(0.5)
    assert replies and replies[-1].startswith(b"421 Login timed out"), replies
    assert time.monotonic() - started < 8
    assert command(logged, "NOOP").startswith(b"200")  # past login_timeout, still served
    assert closed_by_server(half, 5)
    logged_sock.close()


# -- Line framing ----------------------------------------------------------------------------------


def test_row4_an_overlong_line_is_refused_whole(server: Server) -> None:
    """Row 4: "NOOP " + 16,379 bytes + "DELE victim" + CRLF ran DELE; now one 500, nothing runs."""
    victim = server.homes["alice"] / "victim"
    victim.write_bytes(b"v")
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    conn.sendall(b"NOOP " + b"A" * 16379 + b"DELE victim\r\nNOOP\r\n")
    lines = _lines_until(conn, b"200")
    assert [line[:4] for line in _final_lines(lines)] == [b"500 ", b"200 "], lines
    assert victim.exists()


@pytest.mark.parametrize("behind", ["login", "failed login"])
def test_a_line_split_across_records_behind_a_login_runs_whole(server: Server, behind: str) -> None:
    """Lines pipelined behind a login are held while it is decided; the start of the next line,
    read with them, was dropped when they ran, so the rest of that line (in the next TLS record)
    ran as a command of its own: ``HELP `` + ``DELE victim`` deleted ``victim``. Now the line
    runs whole (``HELP DELE victim``: 501) and the file stays."""
    victim = server.homes["alice"] / "victim"
    victim.write_bytes(b"v")
    password = PASSWORDS["alice"] if behind == "login" else "wrong"
    _sock, conn = starttls(server)
    conn.sendall(f"USER alice\r\nPASS {password}\r\nNOOP\r\nHELP ".encode())  # NOOP: held
    conn.sendall(b"DELE victim\r\nSYST\r\n")  # a second TLS record, read after the login's answer
    lines = _lines_until(conn, b"215")
    decided = b"230 " if behind == "login" else b"530 "
    # HELP DELE victim: 501 (no such command to help with), then SYST; nothing else ran.
    finals = [line[:4] for line in _final_lines(lines)]
    assert finals == [b"331 ", decided, b"200 ", b"501 ", b"215 "], lines
    assert victim.exists()


def test_invalid_utf8_in_a_command_is_refused_before_anything_runs(server: Server) -> None:
    """pyftpdlib replaced invalid UTF-8 with U+FFFD, so distinct names sent as Latin-1 (``r\\xe9``,
    ``r\\xe8``) meant the one file ``r\ufffd``: DELE removed it, MKD created it. Now every such
    line gets ``501`` and nothing on disk changes; valid UTF-8 (U+FFFD itself too) still works."""
    home = server.homes["alice"]
    (home / "r\ufffd").write_bytes(b"keep")
    (home / "d\ufffd").mkdir()
    before = sorted(os.listdir(home))
    _sock, conn = login(server, "alice", PASSWORDS["alice"])
    bad = [b"DELE r\xe9", b"MKD n\xff\xfe", b"RMD d\xe8", b"RNFR r\xe9", b"SIZE r\xe9", b"CWD d\xe8",
           b"MKD a\xed\xa0\x80b", b"STOR s\xc3", b"USER \xff", b"N\xffOP"]  # fmt: skip
    conn.sendall(b"".join(line + b"\r\n" for line in bad) + b"SYST\r\n")
    lines = _lines_until(conn, b"215")
    assert [line[:4] for line in _final_lines(lines)] == [b"501 "] * len(bad) + [b"215 "], lines
    assert sorted(os.listdir(home)) == before
    assert command(conn, "DELE r\ufffd").startswith(b"250")  # the name itself, sent as UTF-8
    assert command(conn, "MKD caf\u00e9").startswith(b"257")
    assert (home / "caf\u00e9").is_dir()


def test_row5_one_login_per_pass_and_counts_released_once(make_server) -> None:
    """Row 5: USER, PASS, PASS in one TLS record gave two 230s and leaked a per-user slot."""
    server = make_server(users={"alice": {"max_connections": 1}}, login_failure_delay=0.2)
    for _ in range(3):
        sock, conn = starttls(server)
        conn.sendall(b"USER alice\r\nPASS alice-pw\r\nPASS alice-pw\r\nNOOP\r\n")
        lines = _lines_until(conn, b"200")
        assert [line[:4] for line in _final_lines(lines)] == [b"331 ", b"230 ", b"503 ", b"200 "], lines
        sock.close()
        assert wait_counted_zero(server) == ZERO
    # A failed login's delayed 530 keeps its place: what was pipelined behind it waits.
    sock, conn = starttls(server)
    conn.sendall(b"USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS alice-pw\r\nNOOP\r\n")
    lines = _lines_until(conn, b"200")
    assert [line[:4] for line in _final_lines(lines)] == [b"331 ", b"530 ", b"331 ", b"230 ", b"200 "], lines
    sock.close()
    assert wait_counted_zero(server) == ZERO


@pytest.mark.parametrize("identity", ["REIN", "USER bob"])
def test_row11_rein_or_user_during_a_transfer_waits_for_it(server: Server, identity: str) -> None:
    """Row 11: REIN/USER during alice's STOR committed it through the next user's filesystem (451,
    temporary file left, xferlog naming bob). Now 503; the upload ends as alice's."""
    home = server.homes["alice"]
    ftp = _session(server)
    conn = ftp.transfercmd("STOR up.bin")
    payload = os.urandom(200_000)
    conn.sendall(payload[:100_000])
    ftp.putcmd(identity)
    assert ftp.getmultiline().startswith("503 ")
    conn.sendall(payload[100_000:])
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert ftp.pwd() == "/"  # still alice's session
    ftp.quit()
    assert (home / "up.bin").read_bytes() == payload
    assert not [p for p in home.iterdir() if p.name.endswith(".ftpsd-part")]
    line = server.xferlog.read_text().splitlines()[-1]
    assert " alice ftp " in line and line.endswith(" c"), line


def test_row11_rein_after_the_transfer_logs_out(server: Server) -> None:
    """REIN once the transfer has ended works as before: the session is logged out."""
    ftp = _session(server)
    with pytest.raises(ftplib.error_perm):
        ftp.voidcmd("REIN")
        ftp.pwd()  # 530: logged out
    ftp.close()
