"""Data connections are bound to their own control connection's TLS session, and TLS 1.3 data
connections carry no session tickets (docs/ftpsd.md, "Binding of data connections" and "TLS 1.3
session tickets").

The attacker in these tests shares the victim's address (127.0.0.1, as behind a NAT), so the
"data connections only from the control peer" rule does not stop it: only the TLS binding does.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import io
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from ftpskit_common.client import FTPSClient
from tests.integration.conftest import Server

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _context(server: Server, version: str) -> ssl.SSLContext:
    ctx = server.context()
    ctx.minimum_version = ctx.maximum_version = TLS_VERSIONS[version]
    return ctx


def _victim(server: Server, version: str, ctx: ssl.SSLContext | None = None) -> FTPSClient:
    ctx = ctx or _context(server, version)
    ftp = FTPSClient("127.0.0.1", server.port, context=ctx, timeout=20)
    ftp.login("alice", "alice-pw")
    ftp.prot_p()
    ftp.voidcmd("TYPE I")
    return ftp


def _attacker_session(server: Server, version: str) -> tuple[FTPSClient, ssl.SSLSession]:
    """A control connection that never logs in: AUTH TLS only, then its own TLS session."""
    ftp = FTPSClient("127.0.0.1", server.port, context=_context(server, version), timeout=20)
    ftp.auth()
    ftp.voidcmd("NOOP")  # TLS 1.3: the tickets arrive after the handshake; read past them
    assert ftp.sock.session is not None
    return ftp, ftp.sock.session


def _pasv_port(ftp: FTPSClient) -> int:
    return ftp.makepasv()[1]


def _tls_connect(ctx: ssl.SSLContext, port: int, session: ssl.SSLSession | None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)


def _final_reply(ftp: FTPSClient) -> str:
    """The reply that ends a transfer command (past any 1xx preliminary reply)."""
    while True:
        try:
            reply = ftp.getresp()
        except ftplib.Error as exc:
            return str(exc)
        if not reply.startswith("1"):
            return reply


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("command", ["RETR", "STOR", "APPE"])
def test_attacker_cannot_use_its_own_session_on_the_victims_data_port(
    server: Server, version: str, command: str
) -> None:
    """Row 5: same address, own TLS session, the victim's PASV port -> refused, nothing moves."""
    home = server.homes["alice"]
    secret = os.urandom(100_000)
    (home / "secret.bin").write_bytes(secret)
    victim = _victim(server, version)
    attacker, session = _attacker_session(server, version)
    port = _pasv_port(victim)
    victim.putcmd(f"{command} secret.bin")
    got = b""
    resumed = None
    with contextlib.suppress(OSError):
        conn = _tls_connect(attacker.context, port, session)
        resumed = conn.session_reused
        if command in ("STOR", "APPE"):
            conn.sendall(b"injected by the attacker")
            conn.unwrap()
        else:
            while chunk := conn.recv(65536):
                got += chunk
        conn.close()
    reply = _final_reply(victim)
    assert got == b"", "the attacker received the victim's download"
    assert resumed is None, f"the data handshake completed for the attacker (resumed={resumed})"
    assert reply.startswith("522"), reply
    if command == "APPE":  # an in-place write says what it did to the file: nothing
        assert reply.endswith("nothing was written."), reply
    assert (home / "secret.bin").read_bytes() == secret
    # The victim itself, on its own session, still transfers (and resumes).
    data = io.BytesIO()
    victim.retrbinary("RETR secret.bin", data.write)
    assert data.getvalue() == secret
    victim.storbinary("STOR mine.bin", io.BytesIO(b"victim's own"))
    assert (home / "mine.bin").read_bytes() == b"victim's own"
    victim.quit()
    attacker.quit()
    assert f"data TLS TLSv{version} " in server.log()


def test_binding_holds_with_several_workers(make_server) -> None:
    """Whichever worker the attacker's control connection lands in, its session is not the
    victim's: with two workers, several attempts, every one refused."""
    server = make_server(workers=2)
    for _ in range(4):
        test_attacker_cannot_use_its_own_session_on_the_victims_data_port(server, "1.3", "RETR")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_refused_data_handshake_leaves_no_resumable_session(server: Server, version: str) -> None:
    """A full handshake on a data port must not mint a session of the victim's TLS context:
    otherwise an attacker takes one data connection (refused, 522) to get a session, then resumes
    it on the victim's next data connection."""
    home = server.homes["alice"]
    (home / "secret.bin").write_bytes(b"s" * 50_000)
    victim = _victim(server, version)
    minted = None
    attacker = _context(server, version)
    port = _pasv_port(victim)
    victim.putcmd("RETR secret.bin")
    with contextlib.suppress(OSError):
        conn = _tls_connect(attacker, port, None)
        with contextlib.suppress(OSError):
            conn.recv(65536)
        minted = conn.session
        conn.close()
    assert _final_reply(victim).startswith("522")
    assert "data TLS refused: the handshake did not resume" in server.wait_log("data TLS refused")
    if minted is not None:  # the handshake completed after all: the session must be useless
        port = _pasv_port(victim)
        victim.putcmd("RETR secret.bin")
        got, resumed = b"", None
        with contextlib.suppress(OSError):
            conn = _tls_connect(attacker, port, minted)
            resumed = conn.session_reused
            while chunk := conn.recv(65536):
                got += chunk
            conn.close()
        assert (got, resumed in (None, False)) == (b"", True)
        assert _final_reply(victim).startswith(("425", "522"))
    victim.quit()


def _count_tickets(ctx: ssl.SSLContext, counter: list[int]) -> None:
    """Count NewSessionTicket messages read on connections of ``ctx``."""

    def callback(conn, direction, version, content_type, msg_type, data) -> None:  # noqa: PLR0917 - ssl's API
        if (
            direction == "read"
            and content_type == ssl._TLSContentType.HANDSHAKE
            and msg_type == ssl._TLSMessageType.NEWSESSION_TICKET
        ):
            counter.append(1)

    ctx._msg_callback = callback


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_no_session_ticket_on_data_connections(server: Server, version: str) -> None:
    """The control connection gets its tickets; a data connection gets none (so a client that
    closes the data connection without reading cannot lose its close_notify to a reset)."""
    (server.homes["alice"] / "d.bin").write_bytes(b"d" * 10_000)
    ctx = _context(server, version)
    tickets: list[int] = []
    _count_tickets(ctx, tickets)
    victim = _victim(server, version, ctx)
    victim.voidcmd("NOOP")
    # The counter works: TLS 1.3 tickets arrive on the control connection (TLS 1.2 ones are
    # part of the handshake, which Python's message callback also sees).
    assert tickets, "no ticket seen on the control connection"
    tickets.clear()
    for _ in range(3):
        victim.retrbinary("RETR d.bin", lambda _: None)
        victim.storbinary("STOR u.bin", io.BytesIO(b"u" * 10_000))
    victim.quit()
    assert tickets == []
    assert server.log().count("session_reused=yes") >= 6


# -- TLS 1.3 uploads from real clients -------------------------------------------------------------

_REPLY_426 = re.compile(r"(?<!\d)426 ")
_ROUNDS = 30  # each: one upload of 300 kB; lftp failed about every second one before


def _xferlog_uploads(server: Server, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            lines = [line for line in server.xferlog.read_text().splitlines() if " i r alice " in line]
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def test_lftp_uploads_over_tls13_all_complete(server: Server, tmp_path) -> None:
    if not shutil.which("lftp"):
        pytest.fail("lftp missing: apt-get install -y lftp (lab/host-packages.txt)")
    data = os.urandom(300_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    puts = "; ".join(f"put {src} -o up{i}.bin" for i in range(_ROUNDS))
    script = "; ".join(
        [
            f"set ssl:ca-file {server.cafile}",
            "set ssl:verify-certificate yes",
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set ssl:priority NORMAL:-VERS-ALL:+VERS-TLS1.3",
            "set net:max-retries 1",
            "set net:reconnect-interval-base 1",
            "set net:timeout 20",
            f"open -u alice,alice-pw ftp://127.0.0.1:{server.port}",
            puts,
            "bye",
        ]
    )
    result = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=300, check=False)
    lines = _xferlog_uploads(server, _ROUNDS)
    assert _REPLY_426.search(result.stderr) is None, result.stderr
    assert len(lines) == _ROUNDS and all(line.endswith(" c") for line in lines), lines
    digest = hashlib.sha256(data).digest()
    for i in range(_ROUNDS):
        assert hashlib.sha256((server.homes["alice"] / f"up{i}.bin").read_bytes()).digest() == digest
    assert "data TLS TLSv1.3" in server.log()
    assert "data TLS TLSv1.2" not in server.log()


def test_curl_uploads_over_tls13_all_complete(server: Server, tmp_path) -> None:
    if not shutil.which("curl"):
        pytest.fail("curl missing: apt-get install -y curl (lab/host-packages.txt)")
    data = os.urandom(300_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    failures = []
    for i in range(_ROUNDS):
        result = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "--cacert", str(server.cafile), "--tlsv1.3",
             "--user", "alice:alice-pw", "-T", str(src), f"ftp://127.0.0.1:{server.port}/cu{i}.bin"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            failures.append((i, result.returncode, result.stderr))
    assert failures == []
    lines = _xferlog_uploads(server, _ROUNDS)
    assert len(lines) == _ROUNDS and all(line.endswith(" c") for line in lines), lines
    digest = hashlib.sha256(data).digest()
    for i in range(_ROUNDS):
        assert hashlib.sha256((server.homes["alice"] / f"cu{i}.bin").read_bytes()).digest() == digest


@pytest.mark.parametrize("squat", ["before-the-command", "after-the-command"])
def test_a_silent_connection_on_the_victims_data_port_costs_it_seconds_not_its_session(
    server: Server, squat: str
) -> None:
    """Another host behind the victim's NAT (or a port scanner there) connects to the victim's
    passive port and says nothing. pyftpdlib's listener is closed at the first accept, so that
    connection was the transfer's: it waited for a handshake until ``data_timeout`` (60 s here)
    found it stalled twice, then the victim's whole session got ``421`` and was closed. Now a
    data connection must complete its TLS handshake within 10 s: the victim's transfer gets one
    ``425`` and its session goes on (the next transfer works)."""
    from tests.integration.sessions import epsv_port

    (server.homes["alice"] / "f").write_bytes(b"payload")
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    port = epsv_port(ftp)
    if squat == "after-the-command":
        ftp.putcmd("RETR f")
        assert ftp.getresp().startswith("150")
    squatter = socket.create_connection(("127.0.0.1", port))
    try:
        if squat == "before-the-command":
            time.sleep(0.2)
            ftp.putcmd("RETR f")
            assert ftp.getline()[:3] in ("125", "150")
        started = time.monotonic()
        ftp.sock.settimeout(25)
        final = ftp.getline()
        assert final.startswith("425"), final
        assert time.monotonic() - started < 15
        assert ftp.voidcmd("NOOP").startswith("200")  # the session lives
        got = io.BytesIO()
        ftp.retrbinary("RETR f", got.write)
        assert got.getvalue() == b"payload"
    finally:
        squatter.close()
    ftp.quit()
    assert "no TLS handshake within 10" in server.log()
    assert "Traceback" not in server.log()
