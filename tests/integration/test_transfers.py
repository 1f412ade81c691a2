"""Transfers: integrity, atomic uploads, interrupted uploads, disk full, the xferlog."""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import io
import os
import pathlib
import re
import socket
import subprocess
import time

import pytest

from tests.integration.conftest import Server


def _parts(home) -> list[str]:
    return [p.name for p in home.iterdir() if p.name.endswith(".ftpsd-part")]


def _epsv(ftp) -> int:
    from tests.integration.sessions import epsv_port

    return epsv_port(ftp)


def _send_data(ftp, port: int, data: bytes) -> None:
    from tests.integration.sessions import data_connect

    conn = data_connect(ftp, port)
    conn.sendall(data)
    conn.unwrap()
    conn.close()


def _wait_no_parts(home, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _parts(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _parts(home) == []


def test_round_trip_checksums(server: Server) -> None:
    data = os.urandom(8 * 1024 * 1024 + 123)
    ftp = server.client()
    ftp.storbinary("STOR blob.bin", io.BytesIO(data))
    got = io.BytesIO()
    ftp.retrbinary("RETR blob.bin", got.write)
    ftp.quit()
    assert hashlib.sha256(got.getvalue()).digest() == hashlib.sha256(data).digest()
    assert (server.homes["alice"] / "blob.bin").read_bytes() == data
    assert _parts(server.homes["alice"]) == []


def test_upload_lands_under_a_temporary_name_until_complete(server: Server) -> None:
    home = server.homes["alice"]
    (home / "doc.bin").write_bytes(b"old version")
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR doc.bin")
    conn.sendall(b"n" * 200_000)
    deadline = time.monotonic() + 10
    while not _parts(home) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Mid-upload: the real name still holds the old file; the new bytes go to a temp name.
    assert (home / "doc.bin").read_bytes() == b"old version"
    assert len(_parts(home)) == 1
    conn.sendall(b"n" * 100_000)
    conn.unwrap()
    conn.close()
    ftp.voidresp()
    ftp.quit()
    assert (home / "doc.bin").read_bytes() == b"n" * 300_000
    assert _parts(home) == []


@pytest.mark.parametrize("how", ["data-connection-cut", "whole-client-gone", "tcp-fin-only"])
def test_interrupted_upload_keeps_original(server: Server, how: str) -> None:
    home = server.homes["alice"]
    original = os.urandom(50_000)
    (home / "keep.bin").write_bytes(original)
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR keep.bin")
    conn.sendall(os.urandom(150_000))
    if how == "tcp-fin-only":
        # A clean TCP end without TLS close_notify (what a forged FIN looks like): the server
        # must not take it for the end of the upload.
        conn.shutdown(socket.SHUT_WR)
        with pytest.raises(ftplib.error_temp, match=r"^426"):
            ftp.voidresp()
        conn.close()
        ftp.quit()
        _wait_no_parts(home)
        assert (home / "keep.bin").read_bytes() == original
        return
    # No TLS close_notify: the connection just ends, as when a client is killed.
    conn.close()
    if how == "data-connection-cut":
        with pytest.raises(ftplib.error_temp, match=r"^426"):
            ftp.voidresp()
        ftp.quit()
    else:
        ftp.sock.close()
    _wait_no_parts(home)
    server.wait_log("incomplete upload discarded")
    assert (home / "keep.bin").read_bytes() == original


def test_interrupted_new_upload_leaves_nothing(server: Server) -> None:
    home = server.homes["alice"]
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR fresh.bin")
    conn.sendall(b"x" * 100_000)
    conn.close()
    with pytest.raises(ftplib.error_temp, match=r"^426"):
        ftp.voidresp()
    ftp.quit()
    _wait_no_parts(home)
    assert not (home / "fresh.bin").exists()


def test_disk_full_gives_452_and_no_partial_file(server: Server) -> None:
    home = server.homes["alice"]
    (home / "keep.bin").write_bytes(b"original")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "ftpsd-test", str(home)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (home / "keep.bin").write_bytes(b"original")
        ftp = server.client()
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR keep.bin")
        # The server drops the data connection when the disk fills; the client may see a reset.
        with contextlib.suppress(OSError):
            for _ in range(48):
                conn.sendall(os.urandom(64 * 1024))
            conn.unwrap()
        conn.close()
        with pytest.raises(ftplib.error_temp, match=r"^452"):
            ftp.voidresp()
        ftp.quit()
        _wait_no_parts(home)
        assert (home / "keep.bin").read_bytes() == b"original"
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(home)], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.2)


XFERLOG = re.compile(
    r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} (?P<secs>\d+) (?P<host>\S+) (?P<bytes>\d+) (?P<file>\S+) "
    r"(?P<type>[ab]) _ (?P<dir>[oi]) r (?P<user>\S+) ftp 0 \* (?P<status>[ci])$"
)


def test_xferlog_lines(server: Server) -> None:
    home = server.homes["alice"]
    (home / "down.bin").write_bytes(b"d" * 4096)
    ftp = server.client()
    ftp.retrbinary("RETR down.bin", lambda _: None)
    ftp.storbinary("STOR my file.bin", io.BytesIO(b"u" * 1000))
    ftp.quit()
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while len(lines) < 2 and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            lines = server.xferlog.read_text().splitlines()
        time.sleep(0.05)
    matches = [XFERLOG.match(line) for line in lines]
    assert all(matches), lines
    down, up = (m.groupdict() for m in matches if m)
    assert (down["file"], down["bytes"], down["dir"], down["user"], down["status"]) == (
        str(home / "down.bin"),
        "4096",
        "o",
        "alice",
        "c",
    )
    assert (up["file"], up["bytes"], up["dir"], up["status"]) == (str(home / "my_file.bin"), "1000", "i", "c")
    assert up["host"] == "127.0.0.1"


def test_stalled_transfer_times_out_and_is_discarded(make_server) -> None:
    server = make_server(data_timeout=1)
    home = server.homes["alice"]
    (home / "keep.bin").write_bytes(b"original")
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR keep.bin")
    conn.sendall(b"partial")
    # ... and then nothing: the server gives up on the stalled data connection.
    with pytest.raises((ftplib.error_temp, EOFError, OSError)) as info:
        ftp.voidresp()
    if isinstance(info.value, ftplib.Error):
        assert str(info.value).startswith("421")
    conn.close()
    _wait_no_parts(home)
    assert (home / "keep.bin").read_bytes() == b"original"


def _wait_lines(path, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            lines = path.read_text().splitlines()
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def test_reload_reopens_xferlog_for_rotation(server: Server) -> None:
    (server.homes["alice"] / "a.bin").write_bytes(b"a" * 10)
    ftp = server.client()
    ftp.retrbinary("RETR a.bin", lambda _: None)
    ftp.quit()
    assert len(_wait_lines(server.xferlog, 1)) == 1
    rotated = server.xferlog.with_name("xferlog.1")
    server.xferlog.rename(rotated)  # what logrotate does before `systemctl reload ftpsd`
    server.reload()
    server.wait_log("reloaded: certificate")
    ftp = server.client()
    ftp.retrbinary("RETR a.bin", lambda _: None)
    ftp.quit()
    assert len(_wait_lines(server.xferlog, 1)) == 1
    assert len(rotated.read_text().splitlines()) == 1


@pytest.mark.parametrize("how", ["close", "tcp-fin-only"])
def test_client_dropping_a_download_gets_426_and_session_lives(server: Server, how: str) -> None:
    """A broken download is answered promptly (no TLS shutdown retried against a dead peer)."""
    (server.homes["alice"] / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    conn.recv(65536)
    if how == "tcp-fin-only":
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
    with pytest.raises(ftplib.error_temp, match=r"^426"):
        ftp.voidresp()
    ftp.voidcmd("NOOP")
    ftp.quit()


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("command", ["RETR small.bin", "LIST"])
def test_data_handshake_waits_without_spinning(server: Server, command: str) -> None:
    """While a data connection waits for the client's TLS handshake, ftpsd sleeps in epoll.

    A queued download registers the data socket for WRITE, and a connected socket is always
    writable: an IO loop that keeps that interest during the handshake calls SSL_do_handshake on
    every turn and burns a core until the client's next flight arrives. Here the client pauses
    between the 150 reply and its ClientHello; the server may spend only a sliver of that pause
    on the CPU. The transfers must still complete (the events are restored after the handshake).
    """
    payload = os.urandom(4096)
    (server.homes["alice"] / "small.bin").write_bytes(payload)
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    pause, rounds, busy = 0.3, 4, 0.0
    for _ in range(rounds):
        raw, _ = ftplib.FTP.ntransfercmd(ftp, command)  # noqa: S321 - 150 received; TLS wrapped below
        before = _cpu_seconds(server.proc.pid)
        time.sleep(pause)
        busy += _cpu_seconds(server.proc.pid) - before
        conn = ftp.context.wrap_socket(raw, server_hostname=ftp.tls_name, session=ftp.sock.session)
        assert conn.session_reused
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        with contextlib.suppress(OSError, ValueError):
            conn.unwrap()
        conn.close()
        assert ftp.voidresp().startswith("226")
        if command.startswith("RETR"):
            assert data == payload
        else:
            assert b"small.bin" in data
    ftp.quit()
    waited = pause * rounds
    assert busy < 0.25 * waited, f"ftpsd used {busy:.2f} s of CPU while waiting {waited:.1f} s"


def _an_hour_old(path) -> None:
    then = time.time() - 3600
    os.utime(path, (then, then), follow_symlinks=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_partial_upload_of_a_killed_daemon_is_removed_at_the_next_start(make_server, workers: int) -> None:
    server = make_server(workers=workers)
    home = server.homes["alice"]
    (home / "sub").mkdir()
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR sub/upload.bin")
    conn.sendall(os.urandom(200_000))
    deadline = time.monotonic() + 10
    while not _parts(home / "sub") and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()  # mid-transfer: nobody discards the temporary file
    conn.close()
    ftp.close()
    assert len(_parts(home / "sub")) == 1
    # Old files that only look like partial uploads, symlinks, and a directory out of the home.
    outside = server.root / "outside"
    outside.mkdir()
    (outside / ".o.0123456789ab.ftpsd-part").write_bytes(b"not in any home")
    lookalikes = [
        "sub.0123456789ab.ftpsd-part",
        ".sub.0123456789AB.ftpsd-part",
        ".sub.0123456789ab.ftpsd-part.keep",
        ".sub.0123456789a.ftpsd-part",
    ]
    for name in lookalikes:
        (home / name).write_bytes(b"mine")
    (home / ".link.0123456789ab.ftpsd-part").symlink_to(outside / ".o.0123456789ab.ftpsd-part")
    (home / "outside").symlink_to(outside, target_is_directory=True)
    for path in [*outside.iterdir(), *home.iterdir()]:
        _an_hour_old(path)

    server.start()
    server.wait_log("leftover sweep done", count=2)  # the first start's sweep, then this one's
    assert _parts(home / "sub") == []
    assert f"removed 1 partial upload(s) under {home}" in server.log()
    assert sorted(p.name for p in home.iterdir() if p.is_file() and not p.is_symlink()) == sorted(lookalikes)
    assert (home / ".link.0123456789ab.ftpsd-part").is_symlink()
    assert (outside / ".o.0123456789ab.ftpsd-part").read_bytes() == b"not in any home"
    server.client().quit()


@pytest.mark.parametrize("how", ["STOR", "APPE", "RNTO"])
def test_upload_temporary_names_are_reserved(server: Server, how: str) -> None:
    """A client cannot create a file named like an upload in progress (it would be taken for a
    killed daemon's leftover and removed at the next start)."""
    reserved = ".report.csv.0123456789ab.ftpsd-part"
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    if how == "RNTO":
        ftp.storbinary("STOR report.csv", io.BytesIO(b"data"))
        ftp.sendcmd("RNFR report.csv")
        with pytest.raises(ftplib.error_perm, match=r"^553"):
            ftp.sendcmd(f"RNTO {reserved}")
    else:
        with pytest.raises(ftplib.error_perm, match=r"^553"):
            ftp.storbinary(f"{how} {reserved}", io.BytesIO(b"data"))
    ftp.voidcmd("NOOP")
    ftp.quit()
    assert not (server.homes["alice"] / reserved).exists()


def test_another_session_cannot_touch_an_upload_in_progress(server: Server) -> None:
    """While session A uploads ``big``, session B (same user) sees its temporary name in a listing
    but cannot address it: RNFR + RNTO over ``big`` put the unfinished upload under the real name
    (the original gone; had A been cut, a truncated file) and A's reply said ``451 Upload not
    stored`` while ``big`` held A's data. Every path command on the name is refused now; A's upload
    commits whole with 226."""
    from tests.integration.sessions import data_connect, epsv_port

    home = server.homes["alice"]
    (home / "big").write_bytes(b"original")
    a, b = server.client(), server.client()
    for ftp in (a, b):
        ftp.voidcmd("TYPE I")
    port = epsv_port(a)
    a.sendcmd("STOR big")
    conn = data_connect(a, port)
    conn.sendall(b"N" * 100_000)
    deadline = time.monotonic() + 10
    while not _parts(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    (part,) = _parts(home)
    for command in ("SIZE", "MDTM", "MLST", "DELE", "RNFR", "CWD", "RMD", "STAT"):
        with pytest.raises(ftplib.error_perm, match=r"^550 Name reserved"):
            b.sendcmd(f"{command} {part}")
    with pytest.raises(ftplib.error_perm, match=r"^550 Name reserved"):
        b.sendcmd(f"MFMT 20200101000000 {part}")
    with pytest.raises(ftplib.error_perm, match=r"^503"):  # the refused RNFR left nothing to rename
        b.sendcmd("RNTO big")
    with pytest.raises(ftplib.error_perm, match=r"^550 Name reserved"):
        b.retrbinary(f"RETR {part}", lambda _data: None)
    assert (home / "big").read_bytes() == b"original"
    conn.sendall(b"N" * 100_000)
    conn.unwrap()
    conn.close()
    assert a.voidresp().startswith("226")
    assert (home / "big").read_bytes() == b"N" * 200_000
    assert _parts(home) == []
    b.voidcmd("NOOP")
    a.quit()
    b.quit()


@pytest.mark.parametrize(
    "between", ["APPE f.txt", "SIZE f.txt", "NOOP", "PWD", "MKD d", "DELE missing", None]
)
def test_rest_applies_only_to_the_transfer_that_follows_it(server: Server, between: str | None) -> None:
    """``REST 5``, then any command but data-connection setup or TYPE, then ``STOR``: the STOR
    replaces the file (pyftpdlib kept the marker and overwrote in place from byte 5, so a client
    whose resume was refused and that fell back to a plain upload got ``helloXYorld``). With only
    EPSV and TYPE between (``None``), REST + STOR still resumes in place."""
    home = server.homes["alice"]
    (home / "f.txt").write_bytes(b"hello world")
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("REST 5").startswith("350")
    if between is not None:
        with contextlib.suppress(ftplib.Error):  # APPE without EPSV: 425; DELE missing: 550
            ftp.sendcmd(between)
    ftp.voidcmd("TYPE I")
    port = _epsv(ftp)
    reply = ftp.sendcmd("STOR f.txt")
    assert reply.startswith("150"), reply
    _send_data(ftp, port, b"XY")
    assert ftp.voidresp().startswith("226")
    assert (home / "f.txt").read_bytes() == (b"helloXYorld" if between is None else b"XY")
    ftp.quit()


def test_uploads_in_progress_are_never_listed(server: Server) -> None:
    """An upload's temporary name is the daemon's: no listing shows it, to the uploading session
    or any other (LIST, NLST, MLSD, STAT of a directory, in the home and in a subdirectory), just
    as no command can address it. Before, every listing showed ``.big.<hex>.ftpsd-part``."""
    from tests.integration.sessions import data_connect, epsv_port

    home = server.homes["alice"]
    (home / "sub").mkdir()
    (home / "sub" / "kept.txt").write_bytes(b"k")
    a, b = server.client(), server.client()
    for ftp in (a, b):
        ftp.voidcmd("TYPE I")
    conns = []
    for session, name in ((a, "big"), (b, "sub/other")):
        port = epsv_port(session)
        session.sendcmd(f"STOR {name}")
        conn = data_connect(session, port)
        conn.sendall(b"N" * 50_000)
        conns.append((session, conn))
    deadline = time.monotonic() + 10
    while not (_parts(home) and _parts(home / "sub")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _parts(home) and _parts(home / "sub")
    # A third session, and the uploading ones through a fresh client of the same user.
    c = server.client()
    for path, expected in (("/", {"sub"}), ("/sub", {"kept.txt"})):
        names = set(c.nlst(path))
        assert {os.path.basename(n) for n in names} == expected, names
        lines: list[str] = []
        c.retrlines(f"LIST {path}", lines.append)
        assert not any(".ftpsd-part" in line for line in lines), lines
        assert len(lines) == len(expected), lines
        lines = []
        c.retrlines(f"MLSD {path}", lines.append)
        assert {line.split(" ", 1)[1] for line in lines} == expected, lines
        stat = c.sendcmd(f"STAT {path}")
        assert ".ftpsd-part" not in stat, stat
    for session, conn in conns:
        conn.sendall(b"N" * 10)
        conn.unwrap()
        conn.close()
        assert session.voidresp().startswith("226")
    assert set(c.nlst("/")) >= {"big", "sub"}
    for ftp in (a, b, c):
        ftp.quit()


def _holder(server: Server, part) -> int:
    """The pid of the worker that has ``part`` open (a child of the supervisor)."""
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != server.proc.pid:
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == str(part):
                    return int(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    return 0


def test_a_dead_workers_uploads_are_removed_when_it_is_restarted(make_server) -> None:
    """A worker that dies mid-upload left its temporary file until the daemon restarted: the
    user could not remove its directory (550, not empty) and never saw why. Now the supervisor
    sweeps after restarting it: the dead worker's file goes, while an upload in progress on the
    live worker (its file made an hour old, so only its lock protects it) is kept and commits."""
    server = make_server(workers=2, max_connections_per_ip=40)
    home = server.homes["alice"]
    (home / "doomed").mkdir()
    (home / "live").mkdir()
    uploads: dict[int, tuple] = {}  # worker pid -> (client, data connection, directory)
    for attempt in range(16):  # until one upload runs in each worker (the kernel picks)
        if len(uploads) == 2:
            break
        directory = home / ("doomed" if not uploads else "live")
        ftp = server.client()
        ftp.voidcmd("TYPE I")
        port = _epsv(ftp)
        ftp.sendcmd(f"STOR {directory.name}/f{attempt}")
        from tests.integration.sessions import data_connect

        conn = data_connect(ftp, port)
        conn.sendall(b"u" * 100_000)
        deadline = time.monotonic() + 10
        part = None
        while part is None and time.monotonic() < deadline:
            found = [p for p in directory.iterdir() if p.name.startswith(f".f{attempt}.")]
            part = found[0] if found else None
            time.sleep(0.02)
        assert part is not None
        pid = 0
        while not pid and time.monotonic() < deadline:
            pid = _holder(server, part)
        if pid in uploads:  # same worker as the first: not useful, end it cleanly
            conn.unwrap()
            conn.close()
            ftp.voidresp()
            ftp.quit()
            (directory / f"f{attempt}").unlink()
            continue
        uploads[pid] = (ftp, conn, directory)
    assert len(uploads) == 2, "the kernel put every session in one worker"
    (doomed_pid, _doomed), (live_pid, (live_ftp, live_conn, _live)) = uploads.items()
    for part in _parts(home / "live"):
        _an_hour_old(home / "live" / part)
    os.kill(doomed_pid, 9)
    server.wait_log(f"(pid {doomed_pid}) died", timeout=10)
    deadline = time.monotonic() + 15
    while _parts(home / "doomed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _parts(home / "doomed") == []
    assert len(_parts(home / "live")) == 1  # locked by the live worker: kept, although old
    live_conn.sendall(b"v" * 10)
    live_conn.unwrap()
    live_conn.close()
    assert live_ftp.voidresp().startswith("226")
    assert [p.stat().st_size for p in (home / "live").iterdir()] == [100_010]
    live_ftp.quit()
    ftp = server.client()
    ftp.rmd("doomed")  # was: 550 Directory not empty, until the daemon restarted
    ftp.quit()
    assert "Traceback" not in server.log()
    assert live_pid != doomed_pid


@pytest.mark.parametrize("length", [230, 231, 255])
def test_the_longest_names_can_be_uploaded(server: Server, length: int) -> None:
    """The temporary name adds 25 bytes to the upload's name: names of 231 to 255 bytes (which
    the filesystem takes) were refused with ``550 File name too long.``. Multi-byte characters
    are shortened whole in the temporary name; the file lands under its full name and the
    xferlog names it."""
    name = ("é" * length)[: length // 2] + "n" * (length % 2)  # 2 bytes each: `length` bytes
    assert len(name.encode()) == length
    ftp = server.client()
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"long"))
    assert ftp.nlst() == [name]
    ftp.quit()
    assert (server.homes["alice"] / name).read_bytes() == b"long"
    assert _parts(server.homes["alice"]) == []
    deadline = time.monotonic() + 5
    while name not in server.xferlog.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"{server.homes['alice']}/{name} b _ i r alice" in server.xferlog.read_text()


def test_an_upload_whose_directory_was_renamed_leaves_nothing_behind(server: Server) -> None:
    """Session B renames the directory session A is uploading into: A's commit finds no file at
    the path (451, documented), and the temporary file used to stay in the renamed directory,
    hidden and unaddressable, until the next sweep, so that directory could not be removed
    (550 not empty while every listing showed it empty): a way to fill a disk with files no
    client can see or delete. Now the upload's file is removed from the directory it was
    created in, wherever that went."""
    from tests.integration.sessions import data_connect

    home = server.homes["alice"]
    (home / "d").mkdir()
    a, b = server.client(), server.client()
    a.voidcmd("TYPE I")
    port = _epsv(a)
    a.sendcmd("STOR d/f")
    conn = data_connect(a, port)
    conn.sendall(b"x" * 100_000)
    deadline = time.monotonic() + 10
    while not _parts(home / "d") and time.monotonic() < deadline:
        time.sleep(0.02)
    b.sendcmd("RNFR d")
    b.sendcmd("RNTO e")
    conn.sendall(b"y")
    conn.unwrap()
    conn.close()
    with pytest.raises(ftplib.error_temp, match=r"^451"):
        a.voidresp()
    assert os.listdir(home / "e") == []
    b.rmd("e")
    # The same for an upload cut (discarded) after its directory moved.
    (home / "g").mkdir()
    port = _epsv(a)
    a.sendcmd("STOR g/f")
    conn = data_connect(a, port)
    conn.sendall(b"x" * 100_000)
    deadline = time.monotonic() + 10
    while not _parts(home / "g") and time.monotonic() < deadline:
        time.sleep(0.02)
    b.sendcmd("RNFR g")
    b.sendcmd("RNTO h")
    conn.close()  # no close_notify: discarded
    with pytest.raises(ftplib.error_temp, match=r"^426"):
        a.voidresp()
    _wait_no_parts(home / "h", timeout=5)  # removed right after the 426 is sent
    a.quit()
    b.quit()
