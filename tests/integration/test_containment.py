"""Containment (docs/ftpsd.md, "Security model"): no command reaches an inode outside the home.

One regression test per row of issue 11 that concerns the filesystem (2, 3, 4, 8, 13 and the
NUL byte), each written as the attacker did it, plus a bounded randomized rename-race harness.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ftpskit_common.client import FTPSClient
from tests.integration.conftest import Server


def _retr(ftp: FTPSClient, path: str) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


def _outside(server: Server) -> tuple[pathlib.Path, bytes]:
    """A directory out of every home holding a secret with unique content."""
    outside = server.root / "outside"
    outside.mkdir(exist_ok=True)
    secret = f"OUTSIDE-SECRET-{uuid.uuid4().hex}".encode()
    (outside / "secret").write_bytes(secret * 100)  # 4 kB+: a size no link has
    return outside, secret


# -- row 2: STOU ----------------------------------------------------------------------------------


def test_stou_through_a_symlinked_directory_stays_inside(server: Server) -> None:
    outside, _ = _outside(server)
    os.symlink(outside, server.homes["alice"] / "out")
    before = sorted(outside.iterdir())
    ftp = server.client()
    with pytest.raises(ftplib.Error, match=r"^(450|550)"):
        ftp.storbinary("STOU out/x", io.BytesIO(b"escaped"))
    ftp.quit()
    assert sorted(outside.iterdir()) == before


def test_stou_after_cwd_into_a_directory_then_swapped_stays_inside(server: Server) -> None:
    outside, _ = _outside(server)
    home = server.homes["alice"]
    (home / "sub").mkdir()
    before = sorted(outside.iterdir())
    ftp = server.client()
    ftp.cwd("sub")
    (home / "sub").rename(home / "sub.away")
    os.symlink(outside, home / "sub")  # the directory the session stands in is now a link out
    with pytest.raises(ftplib.Error, match=r"^(450|550)"):
        ftp.storbinary("STOU", io.BytesIO(b"escaped"))
    ftp.quit()
    assert sorted(outside.iterdir()) == before


def test_stou_still_works_and_never_replaces(server: Server) -> None:
    ftp = server.client()
    ftp.mkd("d")
    names = set()
    for i in range(5):
        reply = ftp.storbinary("STOU d/up", io.BytesIO(b"%d" % i))
        assert reply.startswith("226")
    ftp.quit()
    names = {p.name for p in (server.homes["alice"] / "d").iterdir()}
    assert len(names) == 5 and all(n.startswith("up.") for n in names)


def test_stou_refused_to_a_readonly_user_without_creating_anything(server: Server) -> None:
    ftp = server.client("bob")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOU", io.BytesIO(b"x"))
    ftp.quit()
    assert list(server.homes["bob"].iterdir()) == []


# -- row 3: RNFR/RNTO across a swap -------------------------------------------------------------------


def test_rnto_after_a_swap_never_moves_an_outside_file_in(server: Server) -> None:
    outside, secret = _outside(server)
    home = server.homes["alice"]
    (home / "sub" / "link").mkdir(parents=True)
    (home / "sub" / "link" / "secret").write_bytes(b"decoy")
    (home / "evil").mkdir()
    os.symlink(outside, home / "evil" / "link")
    a = server.client()
    b = server.client()
    a.sendcmd("RNFR sub/link/secret")  # 350: sub is the harmless decoy now
    b.rename("sub", "decoy")  # session B swaps the real "sub" (holding a link out) in
    b.rename("evil", "sub")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        a.sendcmd("RNTO loot")
    a.quit()
    b.quit()
    assert (outside / "secret").read_bytes() == secret * 100
    assert not (home / "loot").exists()


def test_rnto_refuses_when_the_name_now_means_another_file(server: Server) -> None:
    home = server.homes["alice"]
    (home / "a.txt").write_text("first")
    ftp = server.client()
    ftp.sendcmd("RNFR a.txt")
    (home / "a.new").write_text("second")
    (home / "a.new").replace(home / "a.txt")  # same name, another inode
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.sendcmd("RNTO b.txt")
    ftp.sendcmd("RNFR a.txt")
    assert ftp.sendcmd("RNTO b.txt").startswith("250")
    ftp.quit()
    assert (home / "b.txt").read_text() == "second"


# -- row 8: upload-only never replaces, even a concurrent upload of another session ---------------


def test_upload_only_concurrent_store_never_replaces(server: Server) -> None:
    home = server.homes["carol"]
    a = server.client("carol")
    b = server.client("carol")
    conn = a.transfercmd("STOR new.txt")  # A starts: new.txt does not exist yet
    conn.sendall(b"from A " * 1000)
    b.storbinary("STOR new.txt", io.BytesIO(b"from B"))  # B stores the same name and finishes
    conn.sendall(b"more from A")
    conn.unwrap().close()
    with pytest.raises(ftplib.Error, match=r"^(553|550)"):
        a.voidresp()
    a.quit()
    b.quit()
    assert (home / "new.txt").read_bytes() == b"from B"
    assert [p.name for p in home.iterdir()] == ["new.txt"]  # A's temporary file is gone too


def test_upload_only_cannot_resume_into_a_file(server: Server) -> None:
    ftp = server.client("carol")
    ftp.sendcmd("TYPE I")
    ftp.sendcmd("REST 3")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOR r.txt", io.BytesIO(b"abc"))
    ftp.storbinary("STOR r.txt", io.BytesIO(b"whole"))  # the REST is gone with the refusal
    ftp.quit()
    assert (server.homes["carol"] / "r.txt").read_bytes() == b"whole"


# -- row 13: metadata of a link's target ------------------------------------------------------------


def _target_facts(outside: pathlib.Path) -> list[str]:
    st = os.stat(outside / "secret")
    return [f"size={st.st_size};", f"unique={st.st_dev:x}g{st.st_ino:x}", str(outside)]


def test_listings_never_describe_a_link_target(server: Server) -> None:
    outside, _ = _outside(server)
    home = server.homes["alice"]
    os.symlink(outside / "secret", home / "link")
    (home / "plain.txt").write_text("p")
    ftp = server.client()
    ftp.sendcmd("OPTS MLST type;size;modify;perm;unique;unix.mode;unix.uid;unix.gid;")
    mlsd: list[str] = []
    ftp.retrlines("MLSD", mlsd.append)
    listing: list[str] = []
    ftp.retrlines("LIST", listing.append)
    for fact in _target_facts(outside):  # row 13: MLSD described the target (size, inode...)
        assert fact not in "\n".join(mlsd + listing)
    replies = [ftp.sendcmd("MLST link"), ftp.sendcmd("STAT link")]
    for command in ("SIZE link", "MDTM link"):
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.sendcmd(command)
    ftp.quit()
    text = "\n".join(mlsd + listing + replies)
    for fact in _target_facts(outside):
        assert fact not in text
    link_line = next(line for line in mlsd if line.endswith(" link"))
    assert "type=OS.unix=slink;" in link_line
    assert f"size={len(str(outside / 'secret'))};" in link_line  # the link's own size
    assert any(line.startswith("l") and line.endswith(" link") for line in listing)


def test_a_link_to_a_directory_is_neither_listed_nor_entered(server: Server) -> None:
    outside, _ = _outside(server)
    os.symlink(outside, server.homes["alice"] / "dirlink")
    ftp = server.client()
    with pytest.raises(ftplib.error_perm, match=r"^501"):
        ftp.retrlines("MLSD dirlink", lambda _: None)
    # LIST and NLST of a link describe the link itself, never the directory it points to.
    assert ftp.nlst("dirlink/") == ["dirlink"]
    lines: list[str] = []
    ftp.retrlines("LIST dirlink/", lines.append)
    assert len(lines) == 1 and lines[0].startswith("l") and lines[0].endswith(" dirlink")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.cwd("dirlink")
    ftp.quit()


# -- NUL byte in a path ---------------------------------------------------------------------------

NUL_COMMANDS = [
    "CWD a\0b",
    "MKD a\0b",
    "RMD a\0b",
    "DELE a\0b",
    "SIZE a\0b",
    "MDTM a\0b",
    "MLST a\0b",
    "STAT a\0b",
    "RNFR a\0b",
    "MFMT 20200101000000 a\0b",
]


def test_nul_byte_in_a_path_is_a_clean_refusal(server: Server) -> None:
    ftp = server.client()
    for command in NUL_COMMANDS:
        with pytest.raises(ftplib.error_perm, match=r"^5(01|50)"):
            ftp.sendcmd(command)
        assert ftp.sendcmd("NOOP").startswith("200")  # the session survived
    for command in ("RETR a\0b", "STOR a\0b", "STOU a\0b", "LIST a\0b", "MLSD a\0b"):
        with pytest.raises(ftplib.Error, match=r"^(4|5)"):
            ftp.retrbinary(command, lambda _: None) if command[:4] in (
                "RETR",
                "LIST",
                "MLSD",
            ) else ftp.storbinary(command, io.BytesIO(b"x"))
        assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()
    assert list(server.homes["alice"].iterdir()) == []


# -- bounded randomized rename race -------------------------------------------------------------------

RACE_SECONDS = 12.0  # per run; each worker also stops after RACE_OPS operations
RACE_OPS = 4000

_SWAPPER = r"""
import ctypes, os, random, stat, sys, time
home, outside, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
rng = random.Random(seed)
deadline = time.monotonic() + seconds
os.chdir(home)

def exchange(a, b, fd=-100):  # atomic swap of two names; never loses one
    libc.renameat2(fd, a.encode(), fd, b.encode(), RENAME_EXCHANGE)

for i in range(200000):
    if time.monotonic() > deadline:
        break
    time.sleep(rng.random() * 0.002)  # jitter: windows of every length
    move = rng.randrange(3)
    if move == 0:  # the decoy "sub" and the evil one (link -> outside) trade places
        exchange("sub", "evil")
        if rng.randrange(2):
            exchange("sub", "evil")
        continue
    try:
        fd = os.open("sub", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        continue  # an FTP session holds the name right now
    try:
        st = os.stat("link", dir_fd=fd, follow_symlinks=False)
        if move == 1 and stat.S_ISDIR(st.st_mode):
            # The directory on the path becomes a link out for a moment, then comes back.
            os.symlink(outside, "flip", dir_fd=fd)
            exchange("link", "flip", fd)
            exchange("link", "flip", fd)
            os.unlink("flip", dir_fd=fd)
        elif move == 2 and stat.S_ISDIR(st.st_mode):
            # The file itself becomes a link out for a moment (or is put back if renamed away).
            lfd = os.open("link", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                if not os.path.lexists(f"/proc/self/fd/{lfd}/secret"):
                    w = os.open("secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=lfd)
                    os.write(w, b"decoy")
                    os.close(w)
                os.symlink(outside + "/secret", "flip", dir_fd=lfd)
                exchange("secret", "flip", lfd)
                exchange("secret", "flip", lfd)
                os.unlink("flip", dir_fd=lfd)
            finally:
                os.close(lfd)
    except OSError:
        pass
    finally:
        os.close(fd)
"""


def _race_layout(home: pathlib.Path, outside: pathlib.Path) -> None:
    (home / "sub" / "link").mkdir(parents=True)
    (home / "sub" / "link" / "secret").write_bytes(b"decoy")
    (home / "evil").mkdir()
    os.symlink(outside, home / "evil" / "link")


def _attack_once(ftp: FTPSClient, rng: random.Random, tag: str, seen: list[str]) -> None:
    """One operation through the racing path; what the server sent back goes to ``seen``."""
    op = rng.randrange(7)
    if op == 0:
        seen.append(_retr(ftp, "sub/link/secret").decode(errors="replace"))
    elif op == 1:
        ftp.retrlines(rng.choice(["LIST", "MLSD", "NLST"]) + " sub/link", seen.append)
    elif op == 2:
        ftp.storbinary(f"STOR sub/link/w{tag}", io.BytesIO(b"w"))
    elif op == 3:
        ftp.storbinary("STOU sub/link/u", io.BytesIO(b"u"))
    elif op == 4:
        ftp.sendcmd("RNFR sub/link/secret")
        ftp.sendcmd(f"RNTO loot{tag}")
        seen.append(_retr(ftp, f"loot{tag}").decode(errors="replace"))
        ftp.sendcmd(f"RNFR loot{tag}")
        ftp.sendcmd("RNTO sub/link/secret")
    elif op == 5:
        seen.append(ftp.sendcmd(rng.choice(["SIZE", "MDTM", "MLST", "STAT"]) + " sub/link/secret"))
    else:
        ftp.cwd("/sub/link")
        seen.append(_retr(ftp, "secret").decode(errors="replace"))


def _attacker(server: Server, seed: int, deadline: float, seen: list[str], errors: list[str]) -> None:
    """One session: RETR, LIST, MLSD, STOR, STOU, RNFR/RNTO, SIZE through the racing path.

    A session the server drops is recorded (it must not happen) and replaced, at most 20 times,
    so the attack goes on for the whole run either way.
    """
    rng = random.Random(seed)
    ftp = None
    for i in range(RACE_OPS):
        if time.monotonic() > deadline or len(errors) > 20:
            break
        try:
            if ftp is None:
                ftp = server.client()
            with contextlib.suppress(ftplib.Error):  # refused: what containment is for
                _attack_once(ftp, rng, f"-{seed}-{i}", seen)
            ftp.cwd("/")
        except (OSError, EOFError, ftplib.Error) as err:
            errors.append(f"session {seed} dropped: {err!r}")
            with contextlib.suppress(Exception):
                ftp.close()
            ftp = None
    if ftp is not None:
        with contextlib.suppress(Exception):  # best effort at the end of a race
            ftp.quit()


@pytest.mark.parametrize("workers", [1, 4])
def test_rename_race_never_reaches_outside(make_server, workers: int) -> None:
    """Sessions and a local process rename and swap directories and links; nothing leaks out."""
    server = make_server(workers=workers, max_connections_per_ip=32)
    outside, secret = _outside(server)
    home = server.homes["alice"]
    _race_layout(home, outside)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    before_stat = os.stat(outside / "secret")
    deadline = time.monotonic() + RACE_SECONDS
    swapper = subprocess.Popen(
        [sys.executable, "-c", _SWAPPER, str(home), str(outside), str(RACE_SECONDS), "1"],
    )
    seen: list[str] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_attacker, args=(server, seed, deadline, seen, errors)) for seed in range(3)
    ]
    # An FTP session of the same user renames too (the swap of issue 11 row 3).
    threads.append(threading.Thread(target=_ftp_swapper, args=(server, deadline, errors)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RACE_SECONDS + 60)
    swapper.wait(timeout=60)
    assert not [t for t in threads if t.is_alive()]
    text = "\n".join(seen)
    assert secret.decode() not in text  # no outside content was read
    size, unique, path = _target_facts(outside)
    assert size not in text and unique not in text and path not in text  # nor its metadata
    assert f"213 {before_stat.st_size}" not in text
    st = os.stat(outside / "secret")
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before  # nothing written out
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (
        before_stat.st_ino,
        before_stat.st_size,
        before_stat.st_mtime_ns,
    )
    # No session was dropped: no exception reached pyftpdlib's error handler, and no client
    # operation failed with an error (a lost passive-port race between workers is retried on
    # another port of the range: tests/unit/ftpsd/test_passive_dtp.py).
    log = server.log()
    assert re.findall(r"^(\w+Error\b.*)$", log, re.MULTILINE) == []
    assert errors == []
    assert len(seen) > 10  # the race did run: some operations succeeded on the decoy


def _ftp_swapper(server: Server, deadline: float, errors: list[str]) -> None:
    try:
        ftp = server.client()
        for _ in range(RACE_OPS):
            if time.monotonic() > deadline:
                break
            try:
                ftp.rename("sub", "tmp2")
                ftp.rename("evil", "sub")
                ftp.rename("tmp2", "evil")
            except ftplib.Error:
                pass  # the local swapper holds a name right now
        ftp.quit()
    except (OSError, EOFError) as err:
        errors.append(f"ftp swapper ended: {err!r}")


# -- real clients ------------------------------------------------------------------------------------


def test_curl_and_lftp_see_links_as_links_and_never_the_outside(
    server: Server, tmp_path: pathlib.Path
) -> None:
    """curl fetches and lists, lftp mirrors the whole home: no outside byte or name arrives."""
    for tool in ("curl", "lftp"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} missing: apt-get install -y {tool} (lab/host-packages.txt)")
    outside, secret = _outside(server)
    home = server.homes["alice"]
    (home / "sub").mkdir()
    (home / "sub" / "in.txt").write_text("inside")
    os.symlink(outside, home / "dl")
    os.symlink(outside / "secret", home / "sub" / "fl")
    curl = ["curl", "-sS", "--ssl-reqd", "--cacert", str(server.cafile), "--user", "alice:alice-pw"]
    url = f"ftp://127.0.0.1:{server.port}"
    for path in ("dl/secret", "sub/fl"):
        got = subprocess.run([*curl, f"{url}/{path}"], capture_output=True, timeout=60, check=False)
        assert got.returncode != 0 and secret not in got.stdout
    listing = subprocess.run([*curl, f"{url}/sub/"], capture_output=True, timeout=60, check=True).stdout
    lines = listing.decode().splitlines()
    assert any(line.startswith("l") and line.endswith(" fl") for line in lines), lines
    assert str(outside) not in listing.decode()
    mirror = tmp_path / "mirror"
    script = "; ".join(
        [
            f"set ssl:ca-file {server.cafile}",
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set net:max-retries 1",
            "set net:timeout 20",
            f"open -u alice,alice-pw {url}",
            f"mirror / {mirror}",
            "bye",
        ]
    )
    subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert (mirror / "sub" / "in.txt").read_text() == "inside"  # the mirror did run
    for path in mirror.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret not in path.read_bytes(), path
        assert "secret" not in path.name, path
