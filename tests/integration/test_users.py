"""Logins, bans, limits, the jail and per-user permissions against a running ftpsd."""

from __future__ import annotations

import ftplib
import io
import os
import re
import select
import signal
import socket
import time

import pytest

from ftpskit_common.client import (
    FTPSClient,
)
from tests.integration.conftest import PASSWORDS, Server


def test_wrong_password_refused_and_logged(server: Server) -> None:
    ftp = server.client(login=False)
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        ftp.login("alice", "wrong")
    # The same connection can still log in with the right password (3 attempts per connection).
    ftp.login("alice", PASSWORDS["alice"])
    ftp.quit()
    log = server.wait_log("login ok user=alice")
    assert "login failed user=alice ip=127.0.0.1" in log


def test_unknown_user_and_anonymous_refused(server: Server) -> None:
    for user, password in (("mallory", "x"), ("anonymous", "guest@"), ("ftp", "")):
        ftp = server.client(login=False)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login(user, password)
        ftp.close()


def test_failed_login_reply_is_delayed(make_server) -> None:
    """The 530 comes after login_failure_delay; meanwhile the session reads no commands."""
    server = make_server(login_failure_delay=1.5)
    ftp = server.client(login=False)
    ftp.auth()
    ftp.sendcmd("USER alice")
    ftp.putcmd("PASS wrong")
    # Nothing arrives well before the delay has passed (no wall-clock assertion: absence of a reply).
    readable, _, _ = select.select([ftp.sock], [], [], 0.5)
    assert readable == []
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        ftp.getresp()
    ftp.close()


def test_ban_after_failures(make_server) -> None:
    server = make_server(ban_after_failures=3, ban_seconds=600, login_failure_delay=0.0)
    for _ in range(2):
        ftp = server.client(login=False)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login("alice", "wrong")
        ftp.close()
    ftp = server.client(login=False)
    with pytest.raises((ftplib.error_temp, EOFError, OSError)) as info:
        ftp.login("alice", "wrong")
    if isinstance(info.value, ftplib.Error):
        assert str(info.value).startswith("421")
    ftp.close()
    server.wait_log("banned ip=127.0.0.1")
    # Banned: even the right password cannot get in; the greeting itself is a 421.
    with pytest.raises((ftplib.error_temp, EOFError, OSError)):
        server.client()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert sock.makefile("rb").readline().startswith(b"421")


def test_ban_expires(make_server) -> None:
    server = make_server(ban_after_failures=1, ban_seconds=1, login_failure_delay=0.0)
    ftp = server.client(login=False)
    with pytest.raises((ftplib.error_temp, ftplib.error_perm, EOFError, OSError)):
        ftp.login("alice", "wrong")
    ftp.close()
    server.wait_log("banned ip=127.0.0.1")
    time.sleep(1.5)
    server.client().quit()


def test_max_connections_per_ip(make_server) -> None:
    server = make_server(max_connections_per_ip=2)
    first = server.client()
    second = server.client()
    with pytest.raises((ftplib.error_temp, EOFError, OSError)) as info:
        server.client()
    if isinstance(info.value, ftplib.Error):
        assert str(info.value).startswith("421")
    first.quit()
    second.quit()


def test_max_connections(make_server) -> None:
    server = make_server(max_connections=1, max_connections_per_ip=1)
    first = server.client()
    with pytest.raises((ftplib.error_temp, EOFError, OSError)):
        server.client()
    first.quit()


def test_per_user_connection_cap(make_server) -> None:
    server = make_server(users={"dave": {"max_connections": 1}})
    first = server.client("dave")
    with pytest.raises((ftplib.error_temp, EOFError, OSError)) as info:
        server.client("dave")
    if isinstance(info.value, ftplib.Error):
        assert str(info.value).startswith("421")
    server.client("alice").quit()  # other users are not affected
    first.quit()
    deadline = time.monotonic() + 10
    while True:  # the slot is free again once the server has seen the QUIT
        try:
            server.client("dave").quit()
            break
        except ftplib.error_temp:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_idle_timeout(make_server) -> None:
    server = make_server(idle_timeout=1)
    ftp = server.client()
    ftp.sock.settimeout(10)
    with pytest.raises((ftplib.error_temp, EOFError, OSError)) as info:
        ftp.getresp()  # the server speaks first: 421 on timeout
    if isinstance(info.value, ftplib.Error):
        assert str(info.value).startswith("421")


def _retr(ftp: FTPSClient, path: str) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


@pytest.mark.parametrize(
    "path",
    [
        "../bob/b.txt",
        "../../../../../../etc/hostname",
        "/../bob/b.txt",
        "..\\bob\\b.txt",
        "link-out/hostname",
    ],
)
def test_jail_retr_escapes_refused(server: Server, path: str) -> None:
    (server.homes["bob"] / "b.txt").write_text("bob's")
    os.symlink("/etc", server.homes["alice"] / "link-out")
    ftp = server.client()
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        _retr(ftp, path)
    ftp.quit()


def test_jail_absolute_path_is_inside_home(server: Server) -> None:
    (server.homes["alice"] / "etc").mkdir()
    (server.homes["alice"] / "etc" / "hostname").write_text("jailed")
    ftp = server.client()
    assert _retr(ftp, "/etc/hostname") == b"jailed"
    ftp.cwd("/")
    assert ftp.pwd() == "/"
    ftp.cwd("..")
    assert ftp.pwd() == "/"
    ftp.quit()


def test_jail_symlinks_cannot_be_entered_or_written_through(server: Server, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, server.homes["alice"] / "out")
    os.symlink(outside / "target.txt", server.homes["alice"] / "file-link")
    ftp = server.client()
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.cwd("out")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOR out/new.txt", io.BytesIO(b"escape"))
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOR file-link", io.BytesIO(b"escape"))
    # A link is an entry like any other (never followed): renaming moves the link itself.
    ftp.rename("file-link", "x")
    ftp.quit()
    assert (server.homes["alice"] / "x").is_symlink()
    assert list(outside.iterdir()) == []


def test_fxp_port_to_foreign_address_refused(server: Server) -> None:
    ftp = server.client()
    with pytest.raises(ftplib.error_perm, match=r"^50"):
        ftp.sendcmd("PORT 10,213,9,9,200,10")
    ftp.quit()


def test_data_connection_from_another_address_rejected(server: Server) -> None:
    (server.homes["alice"] / "d.bin").write_bytes(b"d" * 100)
    ftp = server.client()
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))  # noqa: S321 - parsing our own reply
    with socket.socket() as thief:
        thief.bind(("127.0.0.2", 0))
        thief.settimeout(5)
        thief.connect((host, port))
        # The server drops a data connection that does not come from the control peer.
        try:
            data = thief.recv(100)
        except (ConnectionResetError, TimeoutError):
            data = b""
        assert data == b""
    # Without a word on the control connection (issue 22 row 1: a 425 there answered no command).
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.close()
    server.wait_log("data connection from foreign address 127.0.0.2")


def test_masquerade_address_in_pasv(make_server) -> None:
    server = make_server(masquerade_address="10.213.0.5")
    ftp = server.client()
    assert ftp.sendcmd("PASV").split("(")[1].startswith("10,213,0,5,")
    ftp.quit()


def test_readonly_user(server: Server) -> None:
    (server.homes["bob"] / "r.txt").write_text("read me")
    ftp = server.client("bob")
    assert _retr(ftp, "r.txt") == b"read me"
    assert "r.txt" in ftp.nlst()
    for action in (
        lambda: ftp.storbinary("STOR new.txt", io.BytesIO(b"x")),
        lambda: ftp.delete("r.txt"),
        lambda: ftp.rename("r.txt", "s.txt"),
        lambda: ftp.mkd("dir"),
    ):
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            action()
    ftp.quit()
    assert sorted(p.name for p in server.homes["bob"].iterdir()) == ["r.txt"]


def test_upload_only_user(server: Server) -> None:
    (server.homes["carol"] / "old.txt").write_text("keep")
    ftp = server.client("carol")
    ftp.storbinary("STOR drop.txt", io.BytesIO(b"dropped"))
    assert (server.homes["carol"] / "drop.txt").read_bytes() == b"dropped"
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        _retr(ftp, "drop.txt")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOR old.txt", io.BytesIO(b"overwrite"))
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.delete("old.txt")
    ftp.quit()
    assert (server.homes["carol"] / "old.txt").read_text() == "keep"


def test_readwrite_user(server: Server) -> None:
    ftp = server.client("alice")
    ftp.mkd("d")
    ftp.storbinary("STOR d/x.txt", io.BytesIO(b"one"))
    ftp.storbinary("STOR d/x.txt", io.BytesIO(b"two"))  # overwrite allowed
    ftp.rename("d/x.txt", "d/y.txt")
    assert _retr(ftp, "d/y.txt") == b"two"
    ftp.delete("d/y.txt")
    ftp.rmd("d")
    ftp.quit()
    assert list(server.homes["alice"].iterdir()) == []


def test_rate_limit(make_server) -> None:
    """A limited user still gets every byte (the limit shapes, it does not cut)."""
    server = make_server(users={"alice": {"max_rate": 100_000}})
    data = os.urandom(250_000)
    (server.homes["alice"] / "big.bin").write_bytes(data)
    ftp = server.client()
    assert _retr(ftp, "big.bin") == data
    ftp.quit()


def _refused(server: Server, user: str = "alice") -> bool:
    try:
        server.client(user).quit()
    except (ftplib.error_temp, EOFError, OSError):
        return True
    return False


def test_limits_are_daemon_wide_across_workers(make_server) -> None:
    """Connections land on either worker; the per-IP limit still counts them all."""
    server = make_server(workers=2, max_connections_per_ip=2)
    held = [server.client(), server.client()]
    assert all(_refused(server) for _ in range(4))
    for ftp in held:
        ftp.quit()


def test_ban_is_daemon_wide_across_workers(make_server) -> None:
    server = make_server(workers=2, ban_after_failures=2, login_failure_delay=0.0)
    for _ in range(2):
        ftp = server.client(login=False)
        with pytest.raises((ftplib.error_perm, ftplib.error_temp, EOFError, OSError)):
            ftp.login("alice", "wrong")
        ftp.close()
    server.wait_log("banned ip=127.0.0.1")
    assert all(_refused(server) for _ in range(4))


def test_crashed_worker_sessions_are_uncounted(make_server) -> None:
    server = make_server(workers=2, max_connections_per_ip=2)
    held = [server.client(), server.client()]
    assert _refused(server)
    # Kill a worker that owns at least one of the held sessions.
    victim = int(re.findall(r"ftpsd\[(\d+)\] INFO ftpsd.auth: login ok", server.log())[0])
    os.kill(victim, signal.SIGKILL)
    server.wait_log(f"(pid {victim}) died")
    server.wait_log("listening on", count=3 * 2)  # the replacement worker is up
    alive = []
    for ftp in held:
        try:
            ftp.voidcmd("NOOP")
            alive.append(ftp)
        except (ftplib.Error, EOFError, OSError):
            ftp.close()
    # The dead worker's sessions no longer count: exactly the free slots can be used again.
    deadline = time.monotonic() + 10
    extra = []
    while len(alive) + len(extra) < 2 and time.monotonic() < deadline:
        try:
            extra.append(server.client())
        except (ftplib.error_temp, EOFError, OSError):
            time.sleep(0.2)
    assert len(alive) + len(extra) == 2
    assert _refused(server)
    for ftp in alive + extra:
        ftp.quit()
