"""TLS policy of ftpsd, driven by real clients: Python FTPSClient, curl, lftp, openssl s_client."""

from __future__ import annotations

import ftplib
import hashlib
import io
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from tests.integration.conftest import PASSWORDS, Server


def _reply(sock_file) -> str:
    line = sock_file.readline().decode()
    while line[3:4] == "-":
        line = sock_file.readline().decode()
    return line.strip()


def test_plaintext_user_refused_before_auth_tls(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        f = sock.makefile("rb")
        assert _reply(f).startswith("220")
        sock.sendall(b"USER alice\r\n")
        assert _reply(f).startswith("530")
        sock.sendall(b"PASS alice-pw\r\n")
        assert _reply(f).startswith("530")
        sock.sendall(b"PASV\r\n")
        assert _reply(f)[:1] == "5"
    assert "login ok" not in server.log()


def test_prot_c_refused(server: Server) -> None:
    ftp = server.client(login=False)
    ftp.login("alice", PASSWORDS["alice"])
    ftp.sendcmd("PBSZ 0")
    with pytest.raises(ftplib.error_perm, match=r"^534"):
        ftp.sendcmd("PROT C")
    ftp.quit()


def test_data_command_refused_without_prot_p(server: Server) -> None:
    ftp = server.client(login=False)
    ftp.login("alice", PASSWORDS["alice"])
    with pytest.raises(ftplib.error_perm, match=r"^521"):
        ftp.sendcmd("PASV")
    ftp.quit()


def test_session_reusing_client_transfers_and_log_says_reused(server: Server) -> None:
    (server.homes["alice"] / "f.txt").write_bytes(b"payload\n")
    ftp = server.client()
    buf = io.BytesIO()
    ftp.retrbinary("RETR f.txt", buf.write)
    assert buf.getvalue() == b"payload\n"
    assert ftp.data_sessions_reused == [True]
    ftp.quit()
    log = server.wait_log("data TLS")
    assert "user=alice data TLS TLSv1.3" in log
    assert "session_reused=yes" in log
    assert "control TLS TLSv1.3" in log


def test_client_without_session_reuse_refused_on_data(server: Server) -> None:
    """Not one byte reaches a data connection that did not resume the control session.

    Repeated: whether the server's first write races the handshake (TLS 1.3 allows server data
    right after its Finished) depends on timing, so one attempt could pass by luck.
    """
    (server.homes["alice"] / "f.txt").write_bytes(b"secret\n")
    for attempt in range(15):
        ftp = server.client(reuse_session=False)
        for command in ("RETR f.txt", "LIST"):
            buf = io.BytesIO()
            with pytest.raises((ftplib.error_temp, ftplib.error_perm, ssl.SSLError, OSError)) as info:
                ftp.retrbinary(command, buf.write)
            assert buf.getvalue() == b"", (attempt, command)
            if isinstance(info.value, ftplib.Error):
                assert str(info.value).startswith("522")
        ftp.close()
    assert "session_reused=no" in server.wait_log("session_reused=no")
    server.wait_log("TLS session reuse required on the data connection")


def test_session_reuse_can_be_disabled(make_server) -> None:
    server = make_server(require_session_reuse=False)
    (server.homes["alice"] / "f.txt").write_bytes(b"x" * 1000)
    ftp = server.client(reuse_session=False)
    buf = io.BytesIO()
    ftp.retrbinary("RETR f.txt", buf.write)
    assert buf.getvalue() == b"x" * 1000
    ftp.quit()


def test_implicit_ftps_python_client(server: Server) -> None:
    (server.homes["alice"] / "i.bin").write_bytes(b"implicit" * 1000)
    ftp = server.client(implicit=True)
    buf = io.BytesIO()
    ftp.retrbinary("RETR i.bin", buf.write)
    assert buf.getvalue() == b"implicit" * 1000
    ftp.storbinary("STOR up.bin", io.BytesIO(b"up" * 5000))
    ftp.quit()
    assert (server.homes["alice"] / "up.bin").read_bytes() == b"up" * 5000


def test_implicit_port_speaks_tls_first(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.implicit_port), timeout=10) as raw:
        raw.settimeout(2)
        # A plaintext client waiting for a 220 gets nothing: the server waits for a ClientHello.
        with pytest.raises(TimeoutError):
            raw.recv(100)


def test_curl_explicit_and_implicit(server: Server, tmp_path) -> None:
    if not shutil.which("curl"):
        pytest.fail("curl missing: apt-get install -y curl (lab/host-packages.txt)")
    data = bytes(range(256)) * 4096
    (server.homes["alice"] / "c.bin").write_bytes(data)
    out = tmp_path / "c.out"
    base = ["curl", "-sS", "--ssl-reqd", "--cacert", str(server.cafile), "--user", "alice:alice-pw"]
    subprocess.run([*base, "-o", str(out), f"ftp://127.0.0.1:{server.port}/c.bin"], check=True, timeout=60)
    assert out.read_bytes() == data
    out.unlink()
    subprocess.run(
        [*base, "-o", str(out), f"ftps://127.0.0.1:{server.implicit_port}/c.bin"], check=True, timeout=60
    )
    assert out.read_bytes() == data
    src = tmp_path / "u.bin"
    src.write_bytes(data[::-1])
    target = server.homes["alice"] / "u.bin"
    # Over TLS 1.3 a client that closes the data connection with the server's session ticket
    # unread makes its kernel send a reset, which can swallow its close_notify: ftpsd then
    # cannot tell the upload from a cut one and answers 426 without touching the target
    # (docs/ftpsd.md, "Nothing lost"). A client retries; what must never happen is a partial
    # file under the real name, or a 226 for a file that is not whole.
    for _attempt in range(3):
        upload = subprocess.run(
            [*base, "-T", str(src), f"ftp://127.0.0.1:{server.port}/u.bin"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if upload.returncode == 0:
            break
        assert not target.exists(), "a refused upload left a file under the real name"
    assert upload.returncode == 0, upload.stderr
    assert target.read_bytes() == data[::-1]


def test_curl_rejects_server_with_unknown_ca(server: Server, tmp_path) -> None:
    other = tmp_path / "other-ca.pem"
    from tests.certs import TestCA

    TestCA("other").write_root(other)
    result = subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "--cacert", str(other), "--user", "alice:alice-pw",
         f"ftp://127.0.0.1:{server.port}/"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def _lftp(server: Server, commands: str, *settings: str) -> subprocess.CompletedProcess:
    if not shutil.which("lftp"):
        pytest.fail("lftp missing: apt-get install -y lftp (lab/host-packages.txt)")
    script = "; ".join(
        [
            f"set ssl:ca-file {server.cafile}",
            "set ssl:verify-certificate yes",
            "set ftp:ssl-force yes",
            "set ftp:ssl-protect-data yes",
            "set net:max-retries 1",
            "set net:timeout 20",
            *settings,
            f"open -u alice,alice-pw ftp://127.0.0.1:{server.port}",
            commands,
            "bye",
        ]
    )
    return subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=120, check=False)


def test_lftp_verified_download(server: Server, tmp_path) -> None:
    data = hashlib.sha256(b"lftp").digest() * 20000
    (server.homes["alice"] / "l.bin").write_bytes(data)
    result = _lftp(server, f"get l.bin -o {tmp_path}/l.out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "l.out").read_bytes() == data
    assert "data TLS TLSv1.3" in server.log()


def test_lftp_verified_upload_tls12(server: Server, tmp_path) -> None:
    """lftp (GnuTLS) uploads over TLS 1.2 (over TLS 1.3: tests/integration/test_data_binding.py)."""
    data = hashlib.sha256(b"lftp").digest()[::-1] * 20000
    src = tmp_path / "lu.bin"
    src.write_bytes(data)
    result = _lftp(server, f"put {src} -o lu.bin", "set ssl:priority NORMAL:-VERS-TLS1.3")
    assert result.returncode == 0, result.stderr
    assert (server.homes["alice"] / "lu.bin").read_bytes() == data
    assert "data TLS TLSv1.2" in server.log()


def _s_client(server: Server, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{server.port}",
         "-CAfile", str(server.cafile), "-verify_return_error", "-showcerts", *extra],
        input="QUIT\r\n", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _handshake_ok(result: subprocess.CompletedProcess) -> bool:
    out = result.stdout
    return "Verify return code: 0 (ok)" in out and "Cipher is (NONE)" not in out and ", Cipher is " in out


def test_openssl_starttls_full_chain_and_verification(server: Server) -> None:
    result = _s_client(server)
    assert "Verify return code: 0 (ok)" in result.stdout, result.stdout + result.stderr
    # Leaf and intermediate are both sent (the full chain).
    assert result.stdout.count("-----BEGIN CERTIFICATE-----") == 2


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"), True),
        (("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"), True),
        (("-tls1_3",), True),
        (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"), False),  # CBC: not in the policy
        (("-tls1_2", "-cipher", "AES128-GCM-SHA256"), False),  # no forward secrecy
        (("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), False),  # below the TLS 1.2 minimum
    ],
)
def test_openssl_protocol_and_cipher_policy(server: Server, args: tuple[str, ...], accepted: bool) -> None:
    result = _s_client(server, *args)
    assert _handshake_ok(result) is accepted, result.stdout[-2000:] + result.stderr[-2000:]


def test_tls13_can_be_turned_off(make_server) -> None:
    server = make_server(tls13=False)
    assert not _handshake_ok(_s_client(server, "-tls1_3"))
    assert "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES256-GCM-SHA384" in _s_client(server).stdout


def test_renegotiation_refused(server: Server) -> None:
    """Client-initiated renegotiation (TLS 1.2) is refused outright: OP_NO_RENEGOTIATION."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{server.port}",
         "-CAfile", str(server.cafile), "-tls1_2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # let the handshake finish before asking to renegotiate
        assert proc.stdin is not None
        proc.stdin.write("R\n")
        proc.stdin.flush()
        time.sleep(1.0)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "RENEGOTIATING" in out
    assert "no renegotiation" in out


@pytest.mark.parametrize("tls_max", ["1.2", "1.3"])
def test_curl_resumes_session_on_data_with_each_tls_version(server: Server, tmp_path, tls_max: str) -> None:
    """TLS 1.2 resumes by session cache, TLS 1.3 by tickets issued on the control connection."""
    (server.homes["alice"] / "v.bin").write_bytes(b"v" * 70_000)
    out = tmp_path / "v.out"
    subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "--cacert", str(server.cafile), "--tls-max", tls_max,
         "--user", "alice:alice-pw", "-o", str(out), f"ftp://127.0.0.1:{server.port}/v.bin"],
        check=True, timeout=60,
    )  # fmt: skip
    assert out.read_bytes() == b"v" * 70_000
    log = server.wait_log("data TLS")
    assert f"data TLS TLSv{tls_max} " in log
    assert "session_reused=yes" in log
