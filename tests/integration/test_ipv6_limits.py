"""Issue 22, classes Limits, IPv6 passive, Hashes and Hard links against a running ftpsd.

* IPv6 (row 8): the whole client suite on ``::1``, EPSV within ``passive_ports`` (curl, lftp,
  Python's ftplib through ``FTPSClient``); PASV on IPv6 answered ``522`` (RFC 2428), once.
* Checks in flight are not failures (row 7): 10 clients behind one address log in at once with
  ``ban_after_failures = 5``; all 10 get ``230``.
* Passive ports per user: one user cannot hold more than ``max_passive_ports_per_user``
  listeners over all its sessions.
* Hard links: a file with another link (possibly outside the home) is not served by default.

Each test also passes its scenario through the shared table's counts (``ftpsd status``): all back
to 0 afterwards.
"""

from __future__ import annotations

import base64
import ftplib
import hashlib
import io
import os
import re
import shutil
import subprocess
import threading

import pytest

from ftpskit_common.client import FTPSClient
from ftpskit_common.passwd import SALT_BYTES, _scrypt
from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import ZERO, wait_counted


def _v6_client(server: Server, user: str = "alice") -> FTPSClient:
    ftp = FTPSClient("::1", server.port, context=server.context(), timeout=20)
    ftp.login(user, PASSWORDS[user])
    ftp.prot_p()
    return ftp


def _passive_range(server: Server) -> range:
    text = server.config_path.read_text()
    first, last = map(int, re.search(r"passive_ports = \[(\d+), (\d+)\]", text).groups())
    return range(first, last + 1)


@pytest.fixture
def server6(make_server) -> Server:
    return make_server(listen=["::1"])


# -- IPv6: the client suite on ::1 -------------------------------------------------------------


def test_python_ftplib_over_ipv6_uses_epsv_in_range(server6: Server) -> None:
    """Row 8: listen on ::1, log in, EPSV: the session was closed (no free port in
    passive_ports). ftplib speaks EPSV on IPv6; every data command works, ports in the range."""
    data = os.urandom(1_000_003)
    ftp = _v6_client(server6)
    assert ftp.af == __import__("socket").AF_INET6
    reply = ftp.sendcmd("EPSV")
    port = int(re.search(r"\(\|\|\|(\d+)\|\)", reply).group(1))
    assert reply.startswith("229") and port in _passive_range(server6)
    ftp.storbinary("STOR six.bin", io.BytesIO(data))
    got = io.BytesIO()
    ftp.retrbinary("RETR six.bin", got.write)
    assert hashlib.sha256(got.getvalue()).digest() == hashlib.sha256(data).digest()
    assert "six.bin" in ftp.nlst()
    assert any("six.bin" in line for line in _lines(ftp, "LIST"))
    assert any("six.bin" in line for line in _lines(ftp, "MLSD"))
    ftp.quit()
    assert (server6.homes["alice"] / "six.bin").read_bytes() == data
    assert wait_counted(server6, ZERO) == ZERO


def _lines(ftp: FTPSClient, cmd: str) -> list[str]:
    out: list[str] = []
    ftp.retrlines(cmd, out.append)
    return out


def test_pasv_on_ipv6_is_refused_with_one_522(server6: Server) -> None:
    """A 227 reply can only carry IPv4: PASV on IPv6 gets exactly one 522 and the session goes on."""
    ftp = _v6_client(server6)
    with pytest.raises(ftplib.error_perm, match=r"^522 .*EPSV"):
        ftp.sendcmd("PASV")
    assert ftp.sendcmd("NOOP").startswith("200")  # the next reply is NOOP's: nothing extra
    ftp.quit()


def test_curl_over_ipv6(server6: Server, tmp_path) -> None:
    if not shutil.which("curl"):
        pytest.fail("curl missing: apt-get install -y curl (lab/host-packages.txt)")
    data = os.urandom(300_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    base = ["curl", "-sS", "--ssl-reqd", "--cacert", str(server6.cafile), "--user", "alice:alice-pw"]
    url = f"ftp://[::1]:{server6.port}"
    up = subprocess.run(
        [*base, "-T", str(src), f"{url}/curl6.bin"], capture_output=True, timeout=60, check=False
    )
    assert up.returncode == 0, up.stderr
    down = subprocess.run([*base, f"{url}/curl6.bin"], capture_output=True, timeout=60, check=False)
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(down.stdout).digest() == hashlib.sha256(data).digest()
    listing = subprocess.run(
        [*base, "-v", "--list-only", f"{url}/"], capture_output=True, timeout=60, check=False
    )
    assert listing.returncode == 0 and b"curl6.bin" in listing.stdout, listing.stderr
    assert b"> EPSV" in listing.stderr and b"< 229 " in listing.stderr
    assert wait_counted(server6, ZERO) == ZERO


def test_lftp_over_ipv6_with_epsv(server6: Server, tmp_path) -> None:
    if not shutil.which("lftp"):
        pytest.fail("lftp missing: apt-get install -y lftp (lab/host-packages.txt)")
    data = os.urandom(300_000)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    back = tmp_path / "back.bin"
    script = "; ".join(
        [
            f"set ssl:ca-file {server6.cafile}",
            "set ssl:verify-certificate yes",
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set ftp:prefer-epsv yes",
            "set net:max-retries 1",
            "set net:timeout 20",
            f"open -u alice,alice-pw ftp://[::1]:{server6.port}",
            f"put {src} -o lftp6.bin",
            f"get lftp6.bin -o {back}",
            "cls -1",
            "bye",
        ]
    )
    result = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "lftp6.bin" in result.stdout
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert wait_counted(server6, ZERO) == ZERO


# -- Row 7: checks in flight are not failures ----------------------------------------------------


def _slow_hash(password: str) -> str:
    """scrypt ln=16 (about 4x the default cost): the checks of 10 logins overlap for sure."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password.encode(), salt, ln=16, r=8, p=1, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    return f"$scrypt$ln=16,r=8,p=1${b64(salt)}${b64(digest)}"


def test_ten_logins_behind_one_address_all_succeed(make_server) -> None:
    """Row 7: 10 clients behind one NAT address log in at once, ban_after_failures = 5: 5 of 10
    got 421 Too many failed logins (checks still running counted as failures)."""
    server = make_server(ban_after_failures=5, users={"alice": {"hash": _slow_hash(PASSWORDS["alice"])}})
    clients = [FTPSClient("127.0.0.1", server.port, context=server.context(), timeout=30) for _ in range(10)]
    for ftp in clients:
        ftp.auth()
    barrier = threading.Barrier(len(clients))
    replies: list[str] = [""] * len(clients)

    def log_in(index: int) -> None:
        ftp = clients[index]
        ftp.sendcmd("USER alice")
        barrier.wait(timeout=30)
        try:
            replies[index] = ftp.sendcmd("PASS " + PASSWORDS["alice"])
        except ftplib.Error as exc:
            replies[index] = str(exc)

    threads = [threading.Thread(target=log_in, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [reply[:3] for reply in replies] == ["230"] * len(clients), replies
    for ftp in clients:
        ftp.quit()
    assert wait_counted(server, ZERO) == ZERO


# -- Passive ports per user ---------------------------------------------------------------------


def test_one_user_cannot_take_the_passive_range(server: Server) -> None:
    """Also-line: one user from two addresses took the whole passive range. Default cap: 10
    listeners per user over all its sessions; the 11th gets 425; a closed session frees one."""
    sessions = [server.client() for _ in range(11)]
    replies = []
    for ftp in sessions:
        try:
            replies.append(ftp.sendcmd("PASV"))
        except ftplib.Error as exc:
            replies.append(str(exc))
    assert [reply[:3] for reply in replies] == ["227"] * 10 + ["425"], replies
    assert "passive ports" in replies[-1]
    assert sessions[-1].sendcmd("NOOP").startswith("200")  # one reply for the refused PASV
    # Another user is not affected; a session re-PASVing holds one port, not two.
    other = server.client("dave")
    assert other.sendcmd("PASV").startswith("227")
    assert other.sendcmd("PASV").startswith("227")
    sessions[0].quit()
    assert wait_counted(
        server, {**ZERO, "sessions": 11, "logins": 11, "per_ip": 11, "per_user": 11, "passive": 10}
    )
    assert sessions[-1].sendcmd("PASV").startswith("227")
    for ftp in [*sessions[1:], other]:
        ftp.quit()
    assert wait_counted(server, ZERO) == ZERO


# -- Hard links -----------------------------------------------------------------------------------


def _planted_link(server: Server) -> tuple:
    """A local account's hard link in alice's home to a file outside it."""
    outside = server.root / "outside-secret.txt"
    outside.write_bytes(b"not for ftp\n")
    link = server.homes["alice"] / "planted.txt"
    os.link(outside, link)
    return outside, link


def test_hard_linked_files_are_not_served_by_default(server: Server) -> None:
    """Also-line: hard links made by a local account let RETR/APPE reach outside files."""
    outside, _link = _planted_link(server)
    ftp = server.client()
    with pytest.raises(ftplib.error_perm, match=r"^550 .*hard links"):
        ftp.retrbinary("RETR planted.txt", lambda _chunk: None)
    with pytest.raises(ftplib.error_perm, match=r"^550 .*hard links"):
        ftp.storbinary("APPE planted.txt", io.BytesIO(b"appended\n"))
    ftp.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_perm, match=r"^550 .*hard links"):
        ftp.storbinary("STOR planted.txt", io.BytesIO(b"resumed"), rest=3)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()
    assert outside.read_bytes() == b"not for ftp\n"
    # A plain STOR replaces the name (a new inode): the outside file is untouched.
    ftp = server.client()
    ftp.storbinary("STOR planted.txt", io.BytesIO(b"mine"))
    ftp.quit()
    assert outside.read_bytes() == b"not for ftp\n"


def test_hard_linked_files_served_when_allowed(make_server) -> None:
    server = make_server(allow_hard_links=True)
    _outside, _link = _planted_link(server)
    ftp = server.client()
    got = io.BytesIO()
    ftp.retrbinary("RETR planted.txt", got.write)
    ftp.quit()
    assert got.getvalue() == b"not for ftp\n"
