"""Client-certificate login (issue 26), against a real ftpsd on 127.0.0.1 with real curl and lftp.

Users: alice ``certificate`` (alice@example.org), bob ``certificate+password`` (bob@example.org),
carol ``password`` with an identity (carol@example.org: her certificate must never log her in),
dave ``password``. The client CA is a CA of its own (tests/person_certs.py); the server
certificate's CA (tests/certs.py) is trusted by the clients and never by the daemon for clients.

On the code before issue 26 every test here fails: ``tls.client_ca_file`` and the users' ``auth``
/ ``certificate_identity`` are unknown keys, so the daemon refuses to start.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import json
import pathlib
import shutil
import ssl
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes

from ftpskit_common import trust
from ftpskit_common.client import FTPSClient, make_context, probe
from tests.certs import ClientCA, Issued
from tests.integration.conftest import PASSWORDS, Server

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("lftp") is None, reason="needs curl and lftp"
)

USERS = {
    "alice": {"auth": "certificate", "certificate_identity": "alice@example.org"},
    "bob": {"auth": "certificate+password", "certificate_identity": "bob@example.org"},
    "carol": {"certificate_identity": "carol@example.org"},
}


class Lab:
    def __init__(self, tmp: pathlib.Path, server: Server, ca: ClientCA) -> None:
        self.tmp, self.server, self.ca = tmp, server, ca
        self.count = 0

    def files(self, person: Issued) -> tuple[pathlib.Path, pathlib.Path]:
        self.count += 1
        return person.write(self.tmp / "people", f"p{self.count}")

    def context(self, person: Issued | None) -> ssl.SSLContext:
        ctx = self.server.context()
        if person is not None:
            cert, key = self.files(person)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def client(self, person: Issued | None, *, implicit: bool = False, **kwargs) -> FTPSClient:
        port = self.server.implicit_port if implicit else self.server.port
        return FTPSClient(
            "127.0.0.1", port, context=self.context(person), implicit=implicit, timeout=20, **kwargs
        )

    def login(self, person: Issued | None, user: str, password: str = "", **kwargs) -> str:
        """The final reply of the login (USER, and PASS if asked for); raises on 4xx/5xx."""
        ftp = self.client(person, **kwargs)
        try:
            return ftp.login(user, password)
        finally:
            ftp.close()

    def refusal(self, person: Issued | None, user: str, password: str = "", **kwargs) -> str:
        with pytest.raises(ftplib.error_perm) as info:
            self.login(person, user, password, **kwargs)
        return str(info.value)

    def counters(self, expected: dict[str, int]) -> dict[str, int]:
        """The worker's counters once they hold ``expected`` (the status file follows within a
        second of a change), or as they are after 10 s."""
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError, ValueError):
                counters = json.loads((self.server.runtime_dir / "worker-0.json").read_text())["counters"]
                if all(counters.get(k) == v for k, v in expected.items()) or time.monotonic() > deadline:
                    return counters
            time.sleep(0.1)


def _lab(tmp_path: pathlib.Path, make_server, **options) -> Lab:
    ca = ClientCA()
    ca_file, crl_file = ca.write(tmp_path / "client")
    options = {
        "client_ca_file": str(ca_file),
        "client_crl_file": str(crl_file),
        "users": USERS,
        "ban_after_failures": 0,  # the refusals below come from one address
        **options,
    }
    server = make_server(**options)
    (server.homes["alice"] / "a.txt").write_text("alice's file\n")
    (server.homes["bob"] / "b.txt").write_text("bob's file\n")
    return Lab(tmp_path, server, ca)


@pytest.fixture
def lab(tmp_path: pathlib.Path, make_server) -> Lab:
    return _lab(tmp_path, make_server)


# -- real clients ---------------------------------------------------------------------------


def _curl(
    lab: Lab, user: str, password: str, person: Issued | None, path: str
) -> subprocess.CompletedProcess:
    command = ["curl", "-sS", "-v", "--ssl-reqd", "--max-time", "30", "--cacert", str(lab.server.cafile)]
    if person is not None:
        cert, key = lab.files(person)
        command += ["--cert", str(cert), "--key", str(key)]
    command += ["-u", f"{user}:{password}", f"ftp://localhost:{lab.server.port}/{path}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def _replies(result: subprocess.CompletedProcess) -> list[str]:
    return [line[2:] for line in result.stderr.splitlines() if line.startswith("< ")]


def _lftp(lab: Lab, user: str, password: str, person: Issued, command: str) -> subprocess.CompletedProcess:
    cert, key = lab.files(person)
    script = (
        f"set ssl:ca-file {lab.server.cafile}; set ssl:verify-certificate yes; set ftp:ssl-force true;"
        f" set ftp:ssl-protect-data true; set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes;"
        f" set ssl:cert-file {cert}; set ssl:key-file {key};"
        f" open -u {user},{password} -p {lab.server.port} localhost; {command}"
    )
    return subprocess.run(
        ["lftp", "-d", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_curl_certificate_only_login(lab: Lab) -> None:
    alice = lab.ca.issue(email=("alice@example.org",))
    result = _curl(lab, "alice", "", alice, "a.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "alice's file\n"
    replies = _replies(result)
    assert "232 Login successful (client certificate)." in replies
    assert not any(r.startswith("331") for r in replies)  # no password asked for
    # Without her certificate, the same command is refused with its reason.
    result = _curl(lab, "alice", "", None, "a.txt")
    assert result.returncode != 0
    assert "530 Client certificate required; none was presented." in _replies(result)


def test_curl_certificate_and_password(lab: Lab) -> None:
    bob = lab.ca.issue(email=("bob@example.org",))
    result = _curl(lab, "bob", PASSWORDS["bob"], bob, "b.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "bob's file\n"
    assert "230 Login successful." in _replies(result)
    # Each alone is refused: the password without the certificate, the certificate with a wrong one.
    refused = _curl(lab, "bob", PASSWORDS["bob"], None, "b.txt")
    assert "530 Client certificate required; none was presented." in _replies(refused)
    refused = _curl(lab, "bob", "wrong", bob, "b.txt")
    assert "530 Authentication failed." in _replies(refused)


def test_lftp_certificate_only_and_certificate_and_password(lab: Lab) -> None:
    alice = lab.ca.issue(email=("alice@example.org",))
    upload = lab.tmp / "upload.bin"
    upload.write_bytes(bytes(range(256)) * 1000)
    result = _lftp(lab, "alice", "", alice, f"put {upload} -o up.bin; cat a.txt")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "alice's file\n"
    assert "<--- 232 Login successful (client certificate)." in result.stderr
    assert (lab.server.homes["alice"] / "up.bin").read_bytes() == upload.read_bytes()
    bob = lab.ca.issue(email=("bob@example.org",))
    result = _lftp(lab, "bob", PASSWORDS["bob"], bob, "cat b.txt")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "bob's file\n"
    assert "<--- 230 Login successful." in result.stderr


# -- refusals, each with its reply, log line and counter --------------------------------------


def test_refusals_have_their_reply_log_and_counter(lab: Lab) -> None:
    ca = lab.ca
    other_ca = ClientCA("another client CA")
    revoked = ca.issue(email=("alice@example.org",))
    ca.revoke(revoked)
    ca.write(lab.tmp / "client")
    assert lab.server.reload_command().returncode == 0
    cases = [
        # (person, user, password, 530 text, counter)
        (None, "alice", "", "Client certificate required; none was presented.", "none"),
        (revoked, "alice", "", "Client certificate revoked.", "revoked"),
        (
            ca.issue(email=("alice@example.org",), expired=True),
            "alice",
            "",
            "expired or not yet valid",
            "expired",
        ),
        (other_ca.issue(email=("alice@example.org",)), "alice", "", "not issued by the client", "untrusted"),
        (ca.issue(email=("zed@example.org",)), "alice", "", "maps to no user.", "no_user"),
        (
            ca.issue(email=("alice@example.org",)),
            "bob",
            PASSWORDS["bob"],
            "belongs to another user",
            "mismatch",
        ),
        (
            ca.issue(email=("carol@example.org",)),
            "carol",
            "",
            "may not log in with a certificate",
            "not_allowed",
        ),
        # the client CA's certificate for a server (serverAuth only): never a login
        (
            ca.issue(email=("alice@example.org",), eku=(ssl_oid("serverAuth"),)),
            "alice",
            "",
            "not made for client authentication",
            "no_client_auth",
        ),
        (
            ca.issue(email=("alice@example.org",), eku=None),
            "alice",
            "",
            "not made for client",
            "no_client_auth",
        ),
        # a SAN naming two users, a very long chain
        (
            ca.issue(email=("alice@example.org", "bob@example.org")),
            "alice",
            "",
            "maps to more than one user",
            "ambiguous",
        ),
        (
            ca.issue(email=("alice@example.org",), intermediates=5),
            "alice",
            "",
            "chain too long",
            "chain_too_long",
        ),
    ]
    for person, user, password, text, counter in cases:
        reply = lab.refusal(person, user, password)
        assert reply.startswith("530 "), (counter, reply)
        assert text.lower() in reply.lower(), (counter, reply)
    # The server CA's own certificates (serverAuth, another CA) log nobody in.
    server_cert = lab.server.cert
    ctx = lab.server.context()
    gen = lab.server.pki / "current"
    ctx.load_cert_chain(str(gen / "fullchain.pem"), str(gen / "key.pem"))
    ftp = FTPSClient("127.0.0.1", lab.server.port, context=ctx, timeout=20)
    with pytest.raises(ftplib.error_perm, match="530 Client certificate not issued by the client"):
        ftp.login("alice", "")
    ftp.close()
    assert server_cert is not None
    expected = {"none": 1, "revoked": 1, "expired": 1, "untrusted": 2, "no_user": 1, "mismatch": 1}
    expected |= {"not_allowed": 1, "no_client_auth": 2, "ambiguous": 1, "chain_too_long": 1, "ok": 0}
    expected = {f"client_certs/{reason}": count for reason, count in expected.items()}
    counters = lab.counters(expected)
    assert {k: counters[k] for k in expected} == expected
    log = lab.server.log()
    assert "login failed user=alice ip=127.0.0.1: client certificate revoked sha256=" in log
    # Password logins still work for everybody whose auth allows it, certificate or not.
    assert lab.login(None, "dave", PASSWORDS["dave"]).startswith("230")
    assert lab.login(ca.issue(email=("carol@example.org",)), "carol", PASSWORDS["carol"]).startswith("230")


def ssl_oid(name: str):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    return {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH}[name]


def test_hostile_subjects_map_to_nobody(tmp_path: pathlib.Path, make_server) -> None:
    """Mapped by CN: a CN is compared whole and exactly, never parsed or cleaned into a name."""
    users = {
        "alice": {"auth": "certificate", "certificate_identity": "alice"},
        "bob": {"auth": "certificate", "certificate_identity": "bob"},
    }
    lab = _lab(tmp_path, make_server, client_cert_field="cn", users=users)
    for cn in ("alice/..", "../alice", "alice\x00", "alice/bob", "ALICE", " alice", "alice@example.org"):
        reply = lab.refusal(lab.ca.issue(cn=cn), "alice")
        assert reply == "530 Client certificate maps to no user.", (cn, reply)
    reply = lab.refusal(lab.ca.issue(cn=("alice", "bob")), "alice")
    assert reply == "530 Client certificate maps to more than one user."
    assert lab.login(lab.ca.issue(cn="alice"), "alice").startswith("232")


def test_require_listener_refuses_without_certificate(tmp_path: pathlib.Path, make_server) -> None:
    lab = _lab(tmp_path, make_server, client_cert_implicit="require")
    # dave (password) logs in on the explicit port without a certificate, not on the implicit one
    assert lab.login(None, "dave", PASSWORDS["dave"]).startswith("230")
    reply = lab.refusal(None, "dave", PASSWORDS["dave"], implicit=True)
    assert reply == "530 Client certificate required; none was presented."
    alice = lab.ca.issue(email=("alice@example.org",))
    assert lab.login(alice, "alice", implicit=True).startswith("232")
    # any valid client certificate lets a password user log in there with the password
    assert lab.login(alice, "dave", PASSWORDS["dave"], implicit=True).startswith("230")


# -- revocation: CRL re-read on reload, transfers in flight unharmed ---------------------------


def test_revocation_on_reload_keeps_the_transfer_in_flight_then_ends_the_session(lab: Lab) -> None:
    alice = lab.ca.issue(email=("alice@example.org",))
    payload = bytes(range(256)) * 4096 * 8  # 8 MiB
    (lab.server.homes["alice"] / "big.bin").write_bytes(payload)
    ftp = lab.client(alice)
    assert ftp.login("alice", "").startswith("232")
    ftp.prot_p()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    received = bytearray(conn.recv(65536))
    # Revoke while the download runs; `ftpsd reload` returns when the worker applied it.
    lab.ca.revoke(alice)
    lab.ca.write(lab.tmp / "client")
    done = lab.server.reload_command()
    assert done.returncode == 0, done.stdout + done.stderr
    lab.server.wait_log("(1 revoked)")
    # New logins with the revoked certificate are refused, with curl too ...
    assert lab.refusal(alice, "alice") == "530 Client certificate revoked."
    assert "530 Client certificate revoked." in _replies(_curl(lab, "alice", "", alice, "a.txt"))
    # ... while the download started before completes, byte for byte.
    while chunk := conn.recv(65536):
        received += chunk
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert bytes(received) == payload
    # ... and the session ends at its next command: the revoked certificate keeps no session.
    with pytest.raises(ftplib.error_temp, match=r"^421 Your account changed: log in again\.$"):
        ftp.sendcmd("PWD")
    assert "session ended user=alice ip=127.0.0.1: client certificate revoked by a reload" in lab.server.log()


# -- data connections bound to the control connection's certificate ---------------------------


class _OtherDataCert(FTPSClient):
    """Wraps its data connections with another context (another client certificate, no reuse)."""

    data_context: ssl.SSLContext | None = None

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - wrapped in TLS here
        return self.data_context.wrap_socket(conn, server_hostname=self.tls_name), size


def test_data_connection_with_another_certificate_is_refused(tmp_path: pathlib.Path, make_server) -> None:
    # Without the session-reuse gate a data connection makes a full handshake and could present
    # any certificate: it must present the control connection's.
    lab = _lab(tmp_path, make_server, require_session_reuse=False)
    alice = lab.ca.issue(email=("alice@example.org",))
    for other in (lab.ca.issue(email=("bob@example.org",)), None):
        ftp = _OtherDataCert("127.0.0.1", lab.server.port, context=lab.context(alice), timeout=20)
        ftp.data_context = lab.context(other)
        assert ftp.login("alice", "").startswith("232")
        ftp.prot_p()
        with pytest.raises((ftplib.error_temp, ssl.SSLError, OSError)) as info:
            ftp.retrbinary("RETR a.txt", lambda _data: None)
        reply = str(info.value) if isinstance(info.value, ftplib.error_temp) else ftp.getresp()
        ftp.close()
        assert reply == "425 Data connection refused: its client certificate is not the control connection's."
    # The same certificate on the data connection (here: a full handshake too) is served.
    ftp = _OtherDataCert("127.0.0.1", lab.server.port, context=lab.context(alice), timeout=20)
    ftp.data_context = ftp.context
    assert ftp.login("alice", "").startswith("232")
    ftp.prot_p()
    chunks: list[bytes] = []
    ftp.retrbinary("RETR a.txt", chunks.append)
    assert b"".join(chunks) == b"alice's file\n"
    ftp.quit()
    assert lab.counters({"client_certs/data_mismatch": 2})["client_certs/data_mismatch"] == 2


# -- the kit's own clients ----------------------------------------------------------------------


def test_kit_probe_logs_in_with_a_client_certificate(lab: Lab) -> None:
    alice = lab.ca.issue(email=("alice@example.org",))
    cert, key = lab.files(alice)
    common = {"ca_file": str(lab.server.cafile), "server_hostname": "localhost", "username": "alice"}
    result = probe("127.0.0.1", lab.server.port, client_cert=str(cert), client_key=str(key), **common)
    assert result["data_session_reused"] is True
    with pytest.raises(Exception, match="530 Client certificate required"):
        probe("127.0.0.1", lab.server.port, **common)
    ctx = make_context(ca_file=str(lab.server.cafile), client_cert=str(cert), client_key=str(key))
    ftp = FTPSClient("127.0.0.1", lab.server.port, context=ctx, server_hostname="localhost", timeout=20)
    assert ftp.login("alice").startswith("232")
    ftp.quit()


def test_ftps_trust_presents_the_client_certificate(lab: Lab, capsys) -> None:
    alice = lab.ca.issue(email=("alice@example.org",))
    cert, key = lab.files(alice)
    common = [f"127.0.0.1:{lab.server.port}", "--ca", str(lab.server.cafile), "--servername", "localhost"]
    common += ["--pin-file", str(lab.tmp / "pins.json"), "--system-pin-file", ""]
    code = trust.main([*common, "--client-cert", str(cert), "--client-key", str(key)], stdin=io.StringIO(""))
    assert code == trust.EXIT_TRUSTED
    fingerprint = alice.cert.fingerprint(hashes.SHA256()).hex()
    lab.server.wait_log(f"client certificate ok sha256={fingerprint}")
    code = trust.main([*common, "--client-cert", str(lab.tmp / "missing.crt")], stdin=io.StringIO(""))
    assert code == trust.EXIT_UNREACHABLE
    assert "cannot load the client certificate" in capsys.readouterr().err


def test_concurrent_certificate_logins_stay_apart(lab: Lab) -> None:
    """Two sessions at once, each mapped by its own certificate (the verdict is per session)."""
    alice = lab.ca.issue(email=("alice@example.org",))
    bob = lab.ca.issue(email=("bob@example.org",))
    errors: list[BaseException] = []

    def run(person: Issued, user: str, password: str) -> None:
        try:
            for _ in range(3):
                assert lab.login(person, user, password)[:3] in ("230", "232")
                assert lab.refusal(person, "bob" if user == "alice" else "alice", PASSWORDS["bob"])
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(alice, "alice", "")),
        threading.Thread(target=run, args=(bob, "bob", PASSWORDS["bob"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
