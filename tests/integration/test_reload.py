"""SIGHUP reload (certificate, users, TLS policy), worker processes, clean SIGTERM."""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import io
import json
import os
import pathlib
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ftpsd.pages import droppable
from tests.certs import Issued
from tests.integration.conftest import PASSWORDS, Server
from tests.integration.sessions import wait_counted_zero


def _write_random(path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]  # every MiB differs
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _reload_and_wait(server: Server, new: Issued) -> None:
    count = server.log().count("reloaded: certificate")
    server.reload()
    server.wait_log(f"reloaded: certificate sha256={new.fingerprint}", count=1)
    server.wait_log("reloaded: certificate", count=count + server.workers)


def _retr_with_reload(server: Server, size_mb: int) -> None:
    expected = _write_random(server.homes["alice"] / "big.bin", size_mb * 1024 * 1024)
    old = server.cert
    ftp = server.client()
    digest = hashlib.sha256()
    state = {"bytes": 0, "reloaded": None}

    def on_chunk(chunk: bytes) -> None:
        digest.update(chunk)
        state["bytes"] += len(chunk)
        if state["reloaded"] is None and state["bytes"] >= 8 * 1024 * 1024:
            new = server.rotate()
            _reload_and_wait(server, new)
            # While this transfer is still running, a new session already sees the new cert.
            assert server.served_fingerprint() == new.fingerprint
            state["reloaded"] = new

    ftp.retrbinary("RETR big.bin", on_chunk, blocksize=256 * 1024)
    assert state["reloaded"] is not None, "the reload did not happen mid-transfer"
    assert state["bytes"] == size_mb * 1024 * 1024
    assert digest.hexdigest() == expected
    # The in-flight session keeps working on its old TLS context (data connections resume it).
    assert ftp.sock.getpeercert(binary_form=True) is not None
    assert hashlib.sha256(ftp.sock.getpeercert(binary_form=True)).hexdigest() == old.fingerprint
    buf = io.BytesIO()
    (server.homes["alice"] / "small.txt").write_bytes(b"after reload")
    ftp.retrbinary("RETR small.txt", buf.write)
    assert buf.getvalue() == b"after reload"
    assert all(ftp.data_sessions_reused)
    ftp.quit()


@pytest.mark.slow
def test_reload_during_200mb_download(server: Server) -> None:
    _retr_with_reload(server, 200)


def test_reload_during_upload(server: Server) -> None:
    size = 48 * 1024 * 1024
    data = os.urandom(1024 * 1024) * 48
    ftp = server.client()
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR up.bin")
    new = None
    for offset in range(0, size, 1024 * 1024):
        conn.sendall(data[offset : offset + 1024 * 1024])
        if offset == 8 * 1024 * 1024:
            new = server.rotate()
            _reload_and_wait(server, new)
    conn.unwrap()
    conn.close()
    ftp.voidresp()
    ftp.quit()
    assert new is not None
    assert (
        hashlib.sha256((server.homes["alice"] / "up.bin").read_bytes()).digest()
        == hashlib.sha256(data).digest()
    )
    assert server.served_fingerprint() == new.fingerprint


def _broken(server: Server, kind: str) -> Issued:
    if kind == "key-mismatch":
        return server.rotate(server.ca.issue(), key_from=server.ca.issue())
    if kind == "expired":
        return server.rotate(server.ca.issue(expired=True))
    if kind == "garbage-cert":
        issued = server.rotate()
        (server.pki / "current" / "cert.pem").write_text("not a certificate\n")
        return issued
    if kind == "missing-key":
        issued = server.rotate()
        (server.pki / "current" / "key.pem").unlink()
        return issued
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["key-mismatch", "expired", "garbage-cert", "missing-key"])
def test_broken_certificate_at_reload_keeps_old(server: Server, kind: str) -> None:
    old = server.cert
    session = server.client()
    failures = server.log().count("reload failed")
    _broken(server, kind)
    server.reload()
    log = server.wait_log("reload failed", count=failures + 1)
    assert re.search(r"reload failed, keeping the current configuration: tls\.", log)
    assert server.served_fingerprint() == old.fingerprint
    session.retrlines("LIST", lambda _: None)  # sessions in flight unaffected
    session.quit()
    # Fixing the material and reloading again works.
    good = server.rotate()
    _reload_and_wait(server, good)
    assert server.served_fingerprint() == good.fingerprint


def test_broken_config_at_reload_keeps_old(server: Server) -> None:
    original = server.config_path.read_text()
    server.config_path.write_text(original.replace("[server]", "[server]\nbogus = 1"))
    server.reload()
    assert "server.bogus: unknown key" in server.wait_log("server.bogus: unknown key")
    server.client().quit()
    server.config_path.write_text(original)


def test_reload_users(server: Server) -> None:
    bob = server.client("bob")
    alice_session = server.client("alice")
    users_path = server.root / "users.json"
    doc = json.loads(users_path.read_text())
    alice = next(u for u in doc["users"] if u["name"] == "alice")
    doc["users"] = [u for u in doc["users"] if u["name"] != "bob"]
    doc["users"].append(dict(alice, name="erin"))
    users_path.write_text(json.dumps(doc))
    server.reload()
    server.wait_log("reloaded: certificate")
    ftp = server.client(login=False)
    ftp.login("erin", PASSWORDS["alice"])  # new user works
    ftp.quit()
    ftp = server.client(login=False)
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        ftp.login("bob", PASSWORDS["bob"])  # removed user refused
    ftp.close()
    # bob's session in flight ends at its next command: a removed account keeps no session.
    with pytest.raises(ftplib.error_temp, match=r"^421 Your account changed: log in again\.$"):
        bob.retrlines("LIST", lambda _: None)
    assert "session ended user=bob ip=127.0.0.1: account removed by a reload" in server.log()
    # alice's account did not change: her session goes on, under the new users file.
    alice_session.retrlines("LIST", lambda _: None)
    alice_session.quit()


@pytest.mark.parametrize("change", ["password", "perm", "home", "unchanged"])
def test_a_changed_account_ends_its_sessions_at_their_next_command(server: Server, change: str) -> None:
    """Whatever changed in the account's entry (its password, rights or home), every session of
    it ends with 421 at its next command after the reload, before the command runs: the operator
    who changes a leaked password or takes a right away does not leave a session using the old
    one. Other accounts' sessions, and an account whose entry did not change, go on."""
    (server.homes["dave"] / "keep.txt").write_bytes(b"keep")
    dave = server.client("dave")
    dave_too = server.client("dave")
    carol = server.client("carol")
    users_path = server.root / "users.json"
    doc = json.loads(users_path.read_text())
    entry = next(u for u in doc["users"] if u["name"] == "dave")
    if change == "password":
        entry["hash"] = next(u for u in doc["users"] if u["name"] == "alice")["hash"]
    elif change == "perm":
        entry["perm"] = "ro"
    elif change == "home":
        other = server.root / "dave-new-home"
        other.mkdir()
        entry["home"] = str(other)
    users_path.write_text(json.dumps(doc))
    done = server.reload_command()
    assert done.returncode == 0, done.stdout + done.stderr
    if change == "unchanged":
        assert dave.sendcmd("NOOP").startswith("200")
        dave.delete("keep.txt")  # still allowed: nothing changed
        dave_too.quit()
    else:
        # The DELE, and what is pipelined behind it, never runs: one 421, then the end.
        dave.sock.sendall(b"DELE keep.txt\r\nDELE keep.txt\r\nNOOP\r\n")
        assert dave.getline() == "421 Your account changed: log in again."
        assert dave.file.read() == ""  # nothing more: the session ended
        assert (server.homes["dave"] / "keep.txt").exists()
        with pytest.raises(ftplib.error_temp, match=r"^421 "):
            dave_too.sendcmd("PWD")
        assert server.log().count("session ended user=dave ip=127.0.0.1: account changed by a reload") == 2
        # A new login gets what the file says now.
        if change == "password":
            fresh = server.client(login=False)
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                fresh.login("dave", PASSWORDS["dave"])
            fresh.close()
    assert carol.sendcmd("NOOP").startswith("200")
    carol.quit()
    # Every session's accounting was released: the counts come back to zero.
    wait_counted_zero(server)


def test_reload_tls_policy(server: Server) -> None:
    assert server.client().sock.version() == "TLSv1.3"
    text = server.config_path.read_text()
    server.config_path.write_text(text.replace("[tls]\n", "[tls]\ntls13 = false\n"))
    server.reload()
    server.wait_log("tls13=False")
    ftp = server.client()
    assert ftp.sock.version() == "TLSv1.2"
    buf = io.BytesIO()
    (server.homes["alice"] / "x").write_bytes(b"x")
    ftp.retrbinary("RETR x", buf.write)
    assert ftp.data_sessions_reused == [True]  # TLS 1.2 session-id resumption works too
    ftp.quit()


def test_workers_all_reload_and_serve(make_server) -> None:
    server = make_server(workers=2)
    log = server.log()
    pids = set(re.findall(r"ftpsd\[(\d+)\] INFO ftpsd: listening on", log))
    assert len(pids) == 2
    new = server.rotate()
    server.reload()
    log = server.wait_log("reloaded: certificate", count=2)
    reloaded = set(
        re.findall(rf"ftpsd\[(\d+)\] INFO ftpsd: reloaded: certificate sha256={new.fingerprint}", log)
    )
    assert reloaded == pids
    for _ in range(6):
        assert server.served_fingerprint() == new.fingerprint
    ftp = server.client()
    buf = io.BytesIO()
    (server.homes["alice"] / "w").write_bytes(b"w" * 100_000)
    ftp.retrbinary("RETR w", buf.write)
    assert buf.getvalue() == b"w" * 100_000
    ftp.quit()
    assert server.stop() == 0


def test_sigterm_clean_shutdown(server: Server) -> None:
    ftp = server.client()
    assert server.stop() == 0
    assert "shutting down" in server.log()
    with pytest.raises((EOFError, OSError, ssl.SSLError, ftplib.Error)):
        ftp.voidcmd("NOOP")


def test_start_refuses_bad_material(make_server, tmp_path) -> None:
    from tests.integration.conftest import build_server

    server = build_server(tmp_path / "bad")
    server.rotate(server.ca.issue(expired=True))
    with pytest.raises(RuntimeError, match="expired"):
        server.start()
    server.stop()
    assert server.proc is not None
    assert server.proc.returncode == 1
    time.sleep(0)


def test_default_one_worker_per_core(make_server) -> None:
    server = make_server(workers=0)
    cores = len(os.sched_getaffinity(0))
    log = server.wait_log("listening on", count=2 * cores)
    if cores > 1:
        assert f": {cores} workers [" in log
    assert len(set(re.findall(r"ftpsd\[(\d+)\] INFO ftpsd: listening on", log))) == cores
    server.client().quit()


# --- `ftpsd reload`: synchronous and truthful ------------------------------------------------
def _worker_pid(server: Server, index: int) -> int:
    return json.loads((server.runtime_dir / f"worker-{index}.json").read_text())["pid"]


@contextlib.contextmanager
def _only_worker(server: Server, index: int) -> Iterator[None]:
    """Every other worker stopped (SIGSTOP): new connections can only be accepted by ``index``."""
    others = [_worker_pid(server, i) for i in range(server.workers) if i != index]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_command_returns_once_every_worker_serves_the_new_certificate(
    make_server, workers: int
) -> None:
    server = make_server(workers=workers)
    new = server.rotate()
    result = server.reload_command()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ftpsd: reloaded generation 1 on {workers} worker")
    assert f"certificate sha256={new.fingerprint} from {server.pki / 'gen-2'}" in result.stdout
    # Right after the command returns, no retry: fresh sessions on each worker get the new cert.
    for index in range(workers):
        with _only_worker(server, index):
            assert [server.served_fingerprint() for _ in range(3)] == [new.fingerprint] * 3


@pytest.mark.parametrize("kind", ["key-mismatch", "expired", "garbage-cert", "missing-key"])
def test_reload_command_fails_on_a_broken_certificate_and_the_old_one_stays(make_server, kind: str) -> None:
    server = make_server(workers=2)
    old = server.cert
    _broken(server, kind)
    result = server.reload_command()
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    prefix = f"ftpsd: reload refused by workers 0, 1, still serving certificate sha256={old.fingerprint}: "
    assert lines, result.stderr
    assert all(line.startswith(prefix + "tls.") for line in lines), result.stderr
    for index in range(2):
        with _only_worker(server, index):
            assert server.served_fingerprint() == old.fingerprint
    good = server.rotate()
    assert server.reload_command().returncode == 0
    assert server.served_fingerprint() == good.fingerprint


def test_reload_command_times_out_naming_the_silent_worker(make_server) -> None:
    server = make_server(workers=2)
    new = server.rotate()
    silent = _worker_pid(server, 1)
    os.kill(silent, signal.SIGSTOP)
    try:
        # Worker 1's report of the start-up generation must not pass for an answer.
        result = server.reload_command("--timeout", "2")
    finally:
        os.kill(silent, signal.SIGCONT)
    assert result.returncode == 1
    assert result.stderr == (
        f"ftpsd: reload generation 1 not confirmed within 2 s: no answer yet from worker 1 (pid {silent});"
        " it may still be applied\n"
    )
    result = server.reload_command()
    assert result.returncode == 0, result.stderr
    assert f"sha256={new.fingerprint}" in result.stdout


def test_concurrent_reload_commands_each_get_their_own_answer(make_server) -> None:
    server = make_server(workers=2)
    first = server.rotate()
    command = [sys.executable, "-m", "ftpsd", "reload", "--config", str(server.config_path)]
    early = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = server.rotate()
    late = server.reload_command()  # started after the second rotation: must report it
    out, err = early.communicate(timeout=60)
    assert early.returncode == 0, err
    assert late.returncode == 0, late.stderr
    assert f"sha256={second.fingerprint}" in late.stdout
    assert f"sha256={first.fingerprint}" in out or f"sha256={second.fingerprint}" in out
    assert server.served_fingerprint() == second.fingerprint


def test_replacement_worker_serves_the_last_applied_state(make_server) -> None:
    server = make_server(workers=2)
    new = server.rotate()
    assert server.reload_command().returncode == 0
    _broken(server, "expired")  # on disk, not reloaded: the replacement must not fall back further
    victim = _worker_pid(server, 0)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while _worker_pid(server, 0) == victim and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _worker_pid(server, 0) != victim, server.log()[-3000:]
    with _only_worker(server, 0):
        assert server.served_fingerprint() == new.fingerprint  # not the certificate it started with
    result = server.reload_command()
    assert result.returncode == 1
    assert f"by workers 0, 1, still serving certificate sha256={new.fingerprint}: tls." in result.stderr


def _resident_kib(pid: int, library: str) -> int:
    """Rss of the mappings of ``library`` (a file name) in process ``pid`` that hold only the
    file's bytes (code, read-only data: ``ftpsd.pages.droppable``; not its relocated or
    writable data, which is the process's own)."""
    smaps = pathlib.Path(f"/proc/{pid}/smaps").read_text()
    plain = {start for start, _ in droppable(smaps)}
    total, inside = 0, False
    for line in smaps.splitlines():
        if line[:1] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
            inside = line.endswith("/" + library) and int(line.split("-", 1)[0], 16) in plain
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def _supervisor_lets_go(server: Server, library: str) -> int:
    """Rss of ``library`` in the supervisor once it dropped it (polled: it drops right after
    forking and after loading a reload)."""
    assert server.proc is not None
    deadline = time.monotonic() + 10
    while (kib := _resident_kib(server.proc.pid, library)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return kib


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/smaps")
def test_the_supervisor_keeps_no_startup_library_pages_mapped(make_server) -> None:
    """Issue 23: cryptography's Rust module (with its own OpenSSL) ran in the supervisor at start
    and at each reload, and never between; the supervisor unmaps its pages (ftpsd.pages), the
    workers keep theirs, and both serve and reload as before."""
    server = make_server(workers=2)
    server.wait_log("supervisor pid")
    with _only_worker(server, 0):
        first = server.served_fingerprint()  # a TLS session: worker 0 runs the module's code
    assert _resident_kib(_worker_pid(server, 0), "_rust.abi3.so") > 0  # the measure sees pages
    assert _supervisor_lets_go(server, "_rust.abi3.so") == 0
    new = server.rotate()
    result = server.reload_command()  # the supervisor loads the new state too (for replacements)
    assert result.returncode == 0, result.stderr
    # (It may load after the workers answered; this poll can then come first: the start is the
    # strict case, this one shows a reload leaves nothing behind once it settled.)
    assert _supervisor_lets_go(server, "_rust.abi3.so") == 0
    assert server.served_fingerprint() == new.fingerprint != first


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/smaps")
def test_a_single_worker_starts_serving_without_its_startup_library_pages(make_server) -> None:
    """With ``workers = 1`` the one process lets go of them before it serves (no session has
    run cryptography's code yet); a session maps what it runs again, and serves."""
    server = make_server(workers=1)
    assert server.proc is not None
    assert _resident_kib(server.proc.pid, "_rust.abi3.so") == 0
    assert server.served_fingerprint() == server.cert.fingerprint
    assert _resident_kib(server.proc.pid, "_rust.abi3.so") > 0
