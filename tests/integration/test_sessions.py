"""Session invariants (issue 11): accounting, bans, escaped logs, passive range, STARTTLS.

Every session ends some way; each way must give back exactly what it took. The counts are read
from ``ftpsd status --json`` (what the shared limits table holds), not from inside the daemon.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import time

import pytest
from OpenSSL import SSL

from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import (
    ZERO,
    bogus_record,
    command,
    connect,
    drain,
    login,
    read_reply,
    reset,
    starttls,
    status,
    wait_counted,
    wait_counted_zero,
)

# -- Accounting -----------------------------------------------------------------------------


def test_bogus_tls_records_cannot_lock_legit_users_out(make_server) -> None:
    """Issue 11 row 1: ~510 sessions ending in a bogus TLS record locked every login out. With a
    per-IP limit of 4, 60 of them would do it; every one must give its count back."""
    server = make_server(max_connections_per_ip=4, max_connections=8, ban_after_failures=0)
    for _ in range(60):
        sock, _conn = starttls(server)
        bogus_record(sock)
        drain(sock)
        sock.close()
    ftp = server.client()
    ftp.storbinary("STOR after.txt", io.BytesIO(b"still serving"))
    ftp.quit()
    assert wait_counted_zero(server) == ZERO


def _quit_after_login(server: Server) -> None:
    sock, conn = login(server, "alice", PASSWORDS["alice"])
    assert command(conn, "QUIT").startswith(b"221")
    drain(sock)


def _rst_after_login(server: Server) -> None:
    sock, _conn = login(server, "alice", PASSWORDS["alice"])
    reset(sock)


def _bogus_record_before_login(server: Server) -> None:
    sock, _conn = starttls(server)
    bogus_record(sock)
    drain(sock)


def _bogus_record_after_login(server: Server) -> None:
    sock, _conn = login(server, "alice", PASSWORDS["alice"])
    bogus_record(sock)
    drain(sock)


def _renegotiation_after_login(server: Server) -> None:
    sock, conn = starttls(server, max_version=SSL.TLS1_2_VERSION)
    assert command(conn, "USER alice").startswith(b"331")
    assert command(conn, f"PASS {PASSWORDS['alice']}").startswith(b"230")
    try:
        conn.renegotiate()
        conn.do_handshake()
        conn.sendall(b"NOOP\r\n")
        conn.recv(4096)
    except SSL.Error:
        pass
    drain(sock)


def _nul_in_path_after_login(server: Server) -> None:
    """A NUL in a path made pyftpdlib's handler raise (ending through handle_error)."""
    sock, conn = login(server, "alice", PASSWORDS["alice"])
    for line in ("CWD a\0b", "SIZE a\0b", "RETR a\0b"):
        try:
            command(conn, line)
        except (SSL.Error, OSError):
            break  # the session was ended: the counts must still come back
    sock.close()


def _handshake_never_completed(server: Server) -> None:
    sock = connect(server)
    read_reply(sock)
    sock.sendall(b"AUTH TLS\r\n")
    read_reply(sock)
    sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello cut short
    sock.close()


def _half_open_handshake_times_out(server: Server) -> None:
    sock = connect(server)
    read_reply(sock)
    sock.sendall(b"AUTH TLS\r\n")
    read_reply(sock)
    drain(sock, timeout=15)  # the server's idle timeout (3 s) ends it
    sock.close()


def _idle_timeout_after_login(server: Server) -> None:
    sock, _conn = login(server, "alice", PASSWORDS["alice"])
    drain(sock, timeout=15)
    sock.close()


def _three_wrong_passwords(server: Server) -> None:
    sock, conn = starttls(server)
    for _ in range(3):
        command(conn, "USER alice")
        command(conn, "PASS wrong")
    drain(sock)  # close_when_done after max_login_attempts
    sock.close()


def _oversized_plaintext(server: Server) -> None:
    sock = connect(server)
    read_reply(sock)
    sock.sendall(b"X" * 9000)
    read_reply(sock)
    sock.close()


def _refused_for_max_cons_per_ip(server: Server) -> None:
    held = [login(server, "alice", PASSWORDS["alice"]) for _ in range(4)]
    extra = connect(server)
    assert read_reply(extra).startswith(b"421")
    extra.close()
    for sock, conn in held:
        command(conn, "QUIT")
        sock.close()


def _implicit_garbage(server: Server) -> None:
    sock = connect(server, implicit=True)
    sock.sendall(os.urandom(600))
    drain(sock)
    sock.close()


WAYS = [
    _quit_after_login,
    _rst_after_login,
    _bogus_record_before_login,
    _bogus_record_after_login,
    _renegotiation_after_login,
    _nul_in_path_after_login,
    _handshake_never_completed,
    _half_open_handshake_times_out,
    _idle_timeout_after_login,
    _three_wrong_passwords,
    _oversized_plaintext,
    _refused_for_max_cons_per_ip,
    _implicit_garbage,
]


def test_every_way_a_session_ends_gives_back_its_counts(make_server) -> None:
    server = make_server(
        max_connections_per_ip=4, idle_timeout=3, ban_after_failures=0, login_failure_delay=0.0
    )
    for way in WAYS:
        way(server)
        assert wait_counted_zero(server) == ZERO, way.__name__
    # And the behaviour that depends on it: the per-IP limit (4) still admits 4 sessions at once.
    held = [login(server, "alice", PASSWORDS["alice"]) for _ in range(4)]
    for sock, _conn in held:
        sock.close()


def test_banned_at_connect_takes_nothing(make_server) -> None:
    server = make_server(ban_after_failures=1, login_failure_delay=0.0)
    sock, conn = starttls(server)
    command(conn, "USER alice")
    assert command(conn, "PASS wrong")[:3] in (b"421", b"530")
    sock.close()
    for _ in range(5):
        sock = connect(server)
        assert read_reply(sock).startswith(b"421")
        sock.close()
    assert wait_counted_zero(server) == ZERO


def test_worker_death_releases_its_sessions(make_server) -> None:
    server = make_server(workers=2, max_connections_per_ip=0, ban_after_failures=0)
    held = [login(server, "alice", PASSWORDS["alice"]) for _ in range(8)]
    info = wait_counted(server, {**ZERO, "sessions": 8, "logins": 8, "per_ip": 8, "per_user": 8})
    assert info["sessions"] == 8
    workers = status(server)["workers"]
    victim = next(w for w in workers if w["counted"].get("sessions"))
    os.kill(victim["pid"], signal.SIGKILL)
    server.wait_log("died")
    for sock, _conn in held:
        sock.close()
    assert wait_counted_zero(server) == ZERO
    # The replacement serves, and the survivor's counts were never disturbed.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if status(server)["served_matches_deployed"]:
            break
        time.sleep(0.2)
    ftp = server.client()
    ftp.quit()


# -- Bans -----------------------------------------------------------------------------------


def _pre_opened(server: Server, count: int) -> list[tuple[socket.socket, SSL.Connection]]:
    sessions = []
    for _ in range(count):
        sock, conn = starttls(server)
        assert command(conn, "USER alice").startswith(b"331")
        sessions.append((sock, conn))
    return sessions


def test_ban_applies_at_pass_on_sessions_opened_before_it(make_server) -> None:
    """Issue 11 row 6: 15 sessions opened before the ban tried 35 passwords; the right one got in."""
    server = make_server(ban_after_failures=5, login_failure_delay=0.0, max_connections_per_ip=0)
    sessions = _pre_opened(server, 15)
    checked = 0
    for _sock, conn in sessions[:-1]:
        for _ in range(3):
            try:
                reply = command(conn, "PASS wrong")
            except SSL.Error:
                break
            if reply.startswith(b"530"):
                checked += 1
                command(conn, "USER alice")
            else:
                break
    assert checked <= 4  # the fifth failure bans (421), every later PASS is refused unchecked
    # The right password on a session opened before the ban: refused, not 230.
    reply = command(sessions[-1][1], f"PASS {PASSWORDS['alice']}")
    assert reply.startswith(b"421"), reply
    log = server.wait_log("banned ip=127.0.0.1")
    assert log.count("login failed user=alice") <= 5
    for sock, _conn in sessions:
        sock.close()


def test_concurrent_password_attempts_bounded(make_server) -> None:
    """Passwords sent at once on many sessions (across workers) still get at most
    ban_after_failures checks: attempts are reserved before the hash is computed."""
    server = make_server(workers=2, ban_after_failures=5, login_failure_delay=0.0, max_connections_per_ip=0)
    sessions = _pre_opened(server, 15)
    for _sock, conn in sessions:
        conn.sendall(b"PASS wrong\r\n")
    replies = [read_reply(conn)[:3] for _sock, conn in sessions]
    assert replies.count(b"530") + replies.count(b"421") == 15
    assert replies.count(b"530") <= 5, replies
    time.sleep(0.5)
    assert server.log().count("login failed user=alice") <= 5
    for sock, _conn in sessions:
        sock.close()


# -- Logs -----------------------------------------------------------------------------------

FORGED = "ftpsd[1] INFO ftpsd.auth: login ok user=admin ip=203.0.113.9"


def test_client_text_cannot_forge_log_lines_or_replies(make_server) -> None:
    """Issue 11 row 7: ``USER x\\nftpsd[1] INFO ftpsd.auth: login ok ...`` forged a log line."""
    server = make_server(ban_after_failures=0, login_failure_delay=0.0)
    for name in (f"x\n{FORGED}", f"y\r{FORGED}", f"z\u2028{FORGED}", "w\x1b[31mred\x00\x7f\x85"):
        sock, conn = starttls(server)
        command(conn, f"USER {name}")
        command(conn, "PASS wrong")
        sock.close()
    log = server.wait_log("login failed user=w", timeout=15)
    assert not re.search(r"^(<\d>)?ftpsd\[1\] INFO", log, re.MULTILINE)
    assert "\x1b" not in log and "\x00" not in log and "\u2028" not in log and "\x85" not in log
    assert "login failed user=x\\x0aftpsd[1] INFO" in log
    assert "user=w\\x1b[31mred\\x00\\x7f\\x85" in log
    # Replies quoting client text stay one line each, with no terminal escapes. Clients cannot make
    # such names (553, issue 22 rows 3 and 9); a local account can, and CWD quotes the path.
    (server.homes["alice"] / "d\x1b[2Jx\n226 fake").mkdir()
    sock, conn = login(server, "alice", PASSWORDS["alice"])
    assert command(conn, "MKD e\x1b[2Jx\n226 fake").startswith(b"553 ")
    reply = command(conn, "CWD d\x1b[2Jx\n226 fake").decode()
    assert reply.startswith("250") and reply.count("\r\n") == 1, reply
    assert "\x1b" not in reply and "\\x1b[2Jx\\x0a226 fake" in reply
    sock.close()


# -- Passive ports --------------------------------------------------------------------------


def test_passive_ports_never_leave_the_range(make_server) -> None:
    """Issue 11 row 11: PASV without connecting, more sessions than ports: 425, not a port outside."""
    server = make_server(max_connections_per_ip=0)
    low, high = (
        int(p) for p in re.findall(r"passive_ports = \[(\d+), (\d+)\]", server.config_path.read_text())[0]
    )
    size = high - low + 1
    held, answers = [], []
    for _ in range(size + 6):
        sock, conn = login(server, "alice", PASSWORDS["alice"])
        assert command(conn, "PBSZ 0").startswith(b"200")
        assert command(conn, "PROT P").startswith(b"200")
        answers.append(command(conn, "EPSV").decode())
        held.append(sock)
    ports = [int(m.group(1)) for a in answers if (m := re.search(r"\|\|\|(\d+)\|", a))]
    assert all(low <= port <= high for port in ports), (low, high, ports)
    refused = [a for a in answers if a.startswith("425")]
    assert len(ports) <= size and len(ports) + len(refused) == len(answers)
    assert refused
    for sock in held:
        sock.close()


# -- STARTTLS -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pipelined", [b"PBSZ 0\r\nPROT P\r\n", b"USER alice\r\n", b"PBSZ 0\r\nPROT P\r\nUSER alice\r\nPASS x\r\n"]
)
def test_plaintext_pipelined_after_auth_tls_is_never_run(server: Server, pipelined: bytes) -> None:
    """Issue 11 row 15 (CVE-2011-0411 class): bytes sent in plaintext with ``AUTH TLS`` must not
    run after the handshake as if they had come over TLS."""
    sock, conn = starttls(server, pipelined=pipelined)
    # The first reply over TLS answers our first TLS command: nothing injected ran before it...
    assert command(conn, "SYST").startswith(b"215")
    # ... no USER from the plaintext is pending ...
    assert command(conn, f"PASS {PASSWORDS['alice']}").startswith(b"503")
    # ... and PROT P from the plaintext did not take effect.
    assert command(conn, "USER alice").startswith(b"331")
    assert command(conn, f"PASS {PASSWORDS['alice']}").startswith(b"230")
    assert command(conn, "EPSV").startswith(b"521")
    sock.close()
    server.wait_log("plaintext bytes pipelined after AUTH TLS")
    ftp = server.client()
    ftp.quit()
