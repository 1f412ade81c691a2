"""The same two clients for every server: the session-reusing ``ftpskit_common.client.FTPSClient`` and curl.

Every transfer lands on tmpfs and is checksummed after the clock stops, so hashing costs neither
side anything while timed.
"""

from __future__ import annotations

import contextlib
import resource
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ftpskit_common.client import (
    FTPSClient,
)
from tests.bench.env import sha256_file

HOST = "127.0.0.1"
BLOCK = 256 * 1024


@dataclass
class Target:
    name: str
    port: int
    user: str
    password: str
    ca: Path
    timeout: float = 120.0

    def url(self, remote: str) -> str:
        return f"ftp://{HOST}:{self.port}/{remote}"


class TransferError(RuntimeError):
    pass


# Where one small download's time goes, as the client sees it (it waits on the server in each):
# PASV + connect + RETR until the 150 reply; the data connection's TLS handshake; the data until
# the server's close_notify; the client's close_notify and the 226 reply.
STEPS = ("open", "tls", "data", "close")
Steps = dict[str, list[float]]


# -- Python client ----------------------------------------------------------------------------
def py_session(t: Target) -> FTPSClient:
    ctx = ssl.create_default_context(cafile=str(t.ca))
    ftp = FTPSClient(HOST, t.port, context=ctx, timeout=t.timeout)
    ftp.login(t.user, t.password)
    ftp.prot_p()
    ftp.voidcmd("TYPE I")
    return ftp


def _close_data(conn) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.unwrap()
    conn.close()


def py_get(ftp: FTPSClient, remote: str, local: Path, buf: bytearray, steps: Steps | None = None) -> int:
    view = memoryview(buf)
    total = 0
    conn = ftp.transfercmd("RETR " + remote)
    received = time.perf_counter()
    with local.open("wb", buffering=0) as out:
        while n := conn.recv_into(buf):
            out.write(view[:n])
            total += n
    closing = time.perf_counter()
    _close_data(conn)
    ftp.voidresp()
    if steps is not None:
        opened, tls = ftp.last_data_setup
        done = time.perf_counter()
        for step, seconds in zip(STEPS, (opened, tls, closing - received, done - closing), strict=True):
            steps.setdefault(step, []).append(seconds)
    return total


def py_put(ftp: FTPSClient, local: Path, remote: str, buf: bytearray) -> int:
    view = memoryview(buf)
    total = 0
    conn = ftp.transfercmd("STOR " + remote)
    with local.open("rb", buffering=0) as src:
        while n := src.readinto(buf):
            conn.sendall(view[:n])
            total += n
    _close_data(conn)
    ftp.voidresp()
    return total


def py_download(t: Target, remote: str, local: Path) -> int:
    ftp = py_session(t)
    try:
        return py_get(ftp, remote, local, bytearray(BLOCK))
    finally:
        with contextlib.suppress(Exception):
            ftp.quit()
        ftp.close()


class PyTransfer:
    """A logged-in session whose transfer alone is timed (login and QUIT stay outside the clock)."""

    def __init__(self, t: Target) -> None:
        self.ftp = py_session(t)
        self.buf = bytearray(BLOCK)

    def get(self, remote: str, local: Path) -> float:
        t0 = time.perf_counter()
        py_get(self.ftp, remote, local, self.buf)
        return time.perf_counter() - t0

    def put(self, local: Path, remote: str) -> float:
        t0 = time.perf_counter()
        py_put(self.ftp, local, remote, self.buf)
        return time.perf_counter() - t0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ftp.quit()
        self.ftp.close()


def py_many(t: Target, remotes: list[str], outdir: Path, steps: Steps | None = None) -> int:
    """Every file over one control session (one TLS-resumed data connection each)."""
    ftp = py_session(t)
    buf = bytearray(BLOCK)
    try:
        return sum(py_get(ftp, r, outdir / r, buf, steps) for r in remotes)
    finally:
        with contextlib.suppress(Exception):
            ftp.quit()
        ftp.close()


# -- curl ---------------------------------------------------------------------------------------
def curl_base(t: Target) -> list[str]:
    return [
        "curl", "--silent", "--show-error", "--fail", "--ssl-reqd", "--cacert", str(t.ca),
        "--user", f"{t.user}:{t.password}", "--max-time", str(int(t.timeout)),
    ]  # fmt: skip


def _curl(argv: list[str], timeout: float) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, check=False)
    if res.returncode != 0:
        raise TransferError(f"curl exit {res.returncode}: {res.stderr.strip()[:200]}")


# curl 7.88 sometimes idles 0.2 s or 1 s before connecting a data connection (its own timer;
# seen against every server), so a transfer is timed by curl itself: total - pretransfer.
TIMING = ["--write-out", "%{time_pretransfer} %{time_total}"]


def _curl_timed(argv: list[str], timeout: float) -> float:
    res = subprocess.run([*argv, *TIMING], capture_output=True, text=True, timeout=timeout + 10, check=False)
    if res.returncode != 0:
        raise TransferError(f"curl exit {res.returncode}: {res.stderr.strip()[:200]}")
    pre, total = (float(x) for x in res.stdout.split()[-2:])
    return total - pre


def curl_download(t: Target, remote: str, local: Path) -> float:
    return _curl_timed([*curl_base(t), t.url(remote), "--output", str(local)], t.timeout)


def curl_upload(t: Target, local: Path, remote: str) -> float:
    return _curl_timed([*curl_base(t), "--upload-file", str(local), t.url(remote)], t.timeout)


def curl_many(t: Target, remotes: list[str], outdir: Path) -> int:
    """One curl run, many URLs: curl keeps the control connection (one session) for all of them."""
    cfg = outdir / "curl.cfg"
    cfg.write_text("".join(f'url = "{t.url(r)}"\noutput = "{outdir / r}"\n' for r in remotes))
    _curl([*curl_base(t), "--config", str(cfg)], t.timeout)
    cfg.unlink()
    return sum((outdir / r).stat().st_size for r in remotes)


# -- concurrency --------------------------------------------------------------------------------
def concurrent(t: Target, client: str, remote: str, outdir: Path, *, sessions: int, expect: str) -> dict:
    """``sessions`` sessions at once, each logging in and downloading ``remote``.

    Wall time runs from the first connect to the last 226, so logins count (the password hash
    cost is part of serving 50 clients). Failures: errors plus checksum mismatches.
    """
    outs = [outdir / f"c{i}.bin" for i in range(sessions)]
    failures: list[str] = []
    lock = threading.Lock()
    cpu0 = _client_cpu()
    start = time.perf_counter()
    if client == "py":

        def one(i: int) -> None:
            try:
                py_download(t, remote, outs[i])
            except Exception as exc:
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}"[:200])

        with ThreadPoolExecutor(max_workers=sessions) as pool:
            list(pool.map(one, range(sessions)))
    else:
        procs = [
            subprocess.Popen([*curl_base(t), t.url(remote), "--output", str(o)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
            for o in outs
        ]  # fmt: skip
        for p in procs:
            try:
                _, err = p.communicate(timeout=t.timeout + 10)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if p.returncode != 0:
                failures.append(f"curl exit {p.returncode}: {err.strip()[:200]}")
    wall = time.perf_counter() - start
    client_cpu = _client_cpu() - cpu0
    good = 0
    for o in outs:
        if o.exists():
            if sha256_file(o) == expect:
                good += 1
            o.unlink()
    failures.extend(["checksum mismatch or missing file"] * max(0, sessions - good - len(failures)))
    return {"wall": wall, "good": good, "failures": failures, "client_cpu": client_cpu}


def _client_cpu() -> float:
    """CPU seconds of this process (the Python clients' threads) and of reaped children (curl)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# -- idle sessions ------------------------------------------------------------------------------
def open_idle(t: Target, n: int) -> tuple[list[FTPSClient], list[float]]:
    """``n`` logged-in TLS sessions (PROT P set), left idle; also each session's setup time."""
    sessions, setup = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        sessions.append(py_session(t))
        setup.append(time.perf_counter() - t0)
    return sessions, setup


def close_all(sessions: list[FTPSClient]) -> None:
    for s in sessions:
        with contextlib.suppress(Exception):
            s.quit()
        with contextlib.suppress(Exception):
            s.close()
