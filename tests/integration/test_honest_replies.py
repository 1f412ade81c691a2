"""Every transfer ends with exactly one final reply, and it tells the truth about the disk
(docs/ftpsd.md, "Honest replies")."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator

import pytest

from ftpskit_common.client import FTPSClient
from tests.integration.conftest import Server


def final_replies(ftp: FTPSClient, wait: float = 10.0) -> list[str]:
    """The final (2xx/4xx/5xx) replies that ended the transfer just made.

    Waits up to ``wait`` seconds for the first final reply (none -> ``[]``, and the connection is
    unusable after that timeout), then sends NOOP and collects every further reply sent before
    NOOP's own: a transfer answered twice shows up as two.
    """
    replies: list[str] = []
    timeout = ftp.sock.gettimeout()
    ftp.sock.settimeout(wait)
    try:
        while not replies or replies[-1][:1] not in "245":
            replies.append(ftp.getmultiline())
    except TimeoutError:
        return [r for r in replies if r[:1] in "245"]
    finally:
        ftp.sock.settimeout(timeout)
    ftp.putcmd("NOOP")
    while not (reply := ftp.getmultiline()).startswith("200 "):
        replies.append(reply)
    return [r for r in replies if r[:1] in "245"]


def _parts(home: pathlib.Path) -> list[str]:
    return [p.name for p in home.iterdir() if p.name.endswith(".ftpsd-part")]


def _cut(conn) -> None:
    """End the data connection without TLS close_notify (a FIN only: a killed client, a cut)."""
    conn.close()


def _session(server: Server) -> FTPSClient:
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    return ftp


@pytest.mark.parametrize("how", ["APPE", "REST+STOR"])
def test_in_place_upload_cut_by_fin_reports_the_file_size(server: Server, how: str) -> None:
    """Row 9: an in-place write that is cut cannot be "discarded": the reply says what is on disk."""
    home = server.homes["alice"]
    original = os.urandom(100_000)
    (home / "log.bin").write_bytes(original)
    sent = os.urandom(150_000)
    ftp = _session(server)
    if how == "APPE":
        conn = ftp.transfercmd("APPE log.bin")
        expected = original + sent
    else:
        conn = ftp.transfercmd("STOR log.bin", rest=40_000)
        expected = original[:40_000] + sent
    conn.sendall(sent)
    _cut(conn)
    replies = final_replies(ftp)
    ftp.quit()
    assert len(replies) == 1, replies
    assert replies[0].startswith("426 "), replies
    assert "discarded" not in replies[0]
    on_disk = (home / "log.bin").read_bytes()
    assert on_disk == expected
    assert f"the file is now {len(on_disk)} bytes" in replies[0]


def test_temporary_upload_cut_by_fin_is_discarded_with_one_reply(server: Server) -> None:
    home = server.homes["alice"]
    (home / "keep.bin").write_bytes(b"original")
    ftp = _session(server)
    conn = ftp.transfercmd("STOR keep.bin")
    conn.sendall(os.urandom(150_000))
    _cut(conn)
    replies = final_replies(ftp)
    ftp.quit()
    assert len(replies) == 1, replies
    assert replies[0].startswith("426 ") and replies[0].endswith("upload discarded."), replies
    assert (home / "keep.bin").read_bytes() == b"original"


@pytest.mark.parametrize("command", ["STOR", "APPE", "RETR", "LIST"])
def test_complete_transfer_gets_exactly_one_226(server: Server, command: str) -> None:
    home = server.homes["alice"]
    (home / "f.bin").write_bytes(b"f" * 70_000)
    ftp = _session(server)
    conn = ftp.transfercmd(f"{command} f.bin" if command != "LIST" else "LIST")
    if command in ("STOR", "APPE"):
        conn.sendall(b"g" * 50_000)
    else:
        while conn.recv(65536):
            pass
    conn.unwrap()
    conn.close()
    replies = final_replies(ftp)
    ftp.quit()
    assert len(replies) == 1 and replies[0].startswith("226 "), replies


# -- a small disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(server: Server) -> Iterator[pathlib.Path]:
    """alice's home on a 1 MiB tmpfs (needs CAP_SYS_ADMIN: skipped where mount is refused)."""
    home = server.homes["alice"]
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "ftpsd-test", str(home)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield home
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(home)], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.2)


def _fill(path: pathlib.Path, leave: int = 0) -> None:
    """Fill the file system holding ``path`` until at most ``leave`` bytes are free."""
    with open(path, "wb") as handle:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                stat = os.statvfs(path.parent)
                if stat.f_bavail * stat.f_frsize <= leave:
                    break
                handle.write(chunk)
                handle.flush()


def test_appe_on_a_full_disk_reports_the_file_size(server: Server, small_disk: pathlib.Path) -> None:
    """Row 9: APPE hits ENOSPC part way: 452, and the reply says how large the file now is."""
    original = b"log line\n" * 1000
    (small_disk / "log.txt").write_bytes(original)
    _fill(small_disk / "filler", leave=200 * 1024)
    ftp = _session(server)
    conn = ftp.transfercmd("APPE log.txt")
    with contextlib.suppress(OSError):  # the server drops the data connection when the disk fills
        for _ in range(32):
            conn.sendall(b"appended\n" * 4096)
        conn.unwrap()
    conn.close()
    replies = final_replies(ftp)
    ftp.quit()
    assert len(replies) == 1, replies
    assert replies[0].startswith("452 "), replies
    assert "discarded" not in replies[0]
    on_disk = (small_disk / "log.txt").read_bytes()
    assert on_disk.startswith(original) and len(on_disk) > len(original)
    assert f"the file is now {len(on_disk)} bytes" in replies[0]


def test_small_stor_on_an_already_full_disk_gets_one_452(server: Server, small_disk: pathlib.Path) -> None:
    """Row 10: the bytes fit in a buffer and only the commit's flush fails: still one 452, no
    partial file, no file left open, and the session carries on."""
    _fill(small_disk / "filler")
    ftp = _session(server)
    conn = ftp.transfercmd("STOR small.txt")
    conn.sendall(b"x" * 100)
    conn.unwrap()
    conn.close()
    replies = final_replies(ftp)
    assert len(replies) == 1, replies
    assert replies[0].startswith("452 ") and replies[0].endswith("upload discarded."), replies
    assert _parts(small_disk) == []
    assert not (small_disk / "small.txt").exists()
    (small_disk / "filler").unlink()
    conn = ftp.transfercmd("STOR small.txt")
    conn.sendall(b"y" * 100)
    conn.unwrap()
    conn.close()
    assert final_replies(ftp)[0].startswith("226 ")
    ftp.quit()
    assert (small_disk / "small.txt").read_bytes() == b"y" * 100
    # No descriptor of the failed upload stays open in the daemon, and once the session has
    # ended (the 221 reply comes just before the close) not even the home's (HomeFS).
    assert server.proc is not None
    fds = pathlib.Path(f"/proc/{server.proc.pid}/fd")
    for _ in range(50):  # bounded wait for the session's close, not a timing assertion
        leaked = [_readlink_or_empty(fd) for fd in fds.iterdir() if str(small_disk) in _readlink_or_empty(fd)]
        if not leaked:
            break
        time.sleep(0.1)
    assert leaked == []


def _readlink_or_empty(path: pathlib.Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_stor_cut_by_full_disk_mid_stream_gets_one_452(server: Server, small_disk: pathlib.Path) -> None:
    (small_disk / "keep.bin").write_bytes(b"original")
    ftp = _session(server)
    conn = ftp.transfercmd("STOR keep.bin")
    with contextlib.suppress(OSError):
        for _ in range(48):
            conn.sendall(os.urandom(64 * 1024))
        conn.unwrap()
    conn.close()
    replies = final_replies(ftp)
    ftp.quit()
    assert len(replies) == 1, replies
    assert replies[0].startswith("452 ") and replies[0].endswith("upload discarded."), replies
    assert (small_disk / "keep.bin").read_bytes() == b"original"
    deadline = time.monotonic() + 10
    while _parts(small_disk) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _parts(small_disk) == []


def test_final_replies_helper_sees_one_none_and_two(server: Server) -> None:
    """The helper itself: one reply -> [it]; two -> both; none within the wait -> []."""
    ftp = _session(server)
    ftp.putcmd("PWD")
    assert [r[:3] for r in final_replies(ftp)] == ["257"]
    ftp.putcmd("PWD")
    ftp.putcmd("SYST")
    assert [r[:3] for r in final_replies(ftp)] == ["257", "215"]
    assert final_replies(ftp, wait=1.0) == []
    ftp.close()
