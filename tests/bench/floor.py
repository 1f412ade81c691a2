"""The floors the servers are measured against, on this machine, in the same run.

* **Per small file**: a resumed TLS 1.3 handshake plus TCP accept, close_notify both ways and
  close, served by ``openssl s_server`` (OpenSSL's own loop, no FTP) to a Python ``ssl`` client
  that resumes the previous connection's session, as the FTP clients resume the control
  session on each data connection. The figure is s_server's CPU (its own cgroup) per
  connection; no FTP server can serve a file over a fresh TLS data connection for less.
* **Bulk**: one core's AEAD throughput, ``openssl speed -evp <cipher> -bytes 16384`` (a full
  TLS record), for AES-256-GCM (what TLS 1.3 negotiates here) and ChaCha20-Poly1305.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.env import BenchError, CpuCgroup, run

HOST = "127.0.0.1"
FLOOR_PORT = 20621
CIPHERS = ("aes-256-gcm", "chacha20-poly1305")


@dataclass
class Floors:
    handshake_ms: float  # s_server CPU per resumed connection, median over batches
    handshake_spread: tuple[float, float]
    resumed: int  # connections that did resume (of `connections`)
    connections: int
    ceilings: dict[str, float]  # cipher -> MB/s on one core


# -- AEAD ceiling ---------------------------------------------------------------------------------
def parse_speed(output: str, cipher: str) -> float:
    """MB/s (10^6 bytes) from ``openssl speed -evp CIPHER -bytes N`` output (one block size).

    The result line is the cipher's name (OpenSSL's spelling, e.g. ``AES-256-GCM``,
    ``ChaCha20-Poly1305``) followed by thousands of bytes per second with a ``k`` suffix.
    """
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lower() == cipher.lower() and parts[-1].endswith("k"):
            try:
                return float(parts[-1][:-1]) * 1000 / 1e6
            except ValueError:
                break
    raise BenchError(f"cannot parse `openssl speed -evp {cipher}` output: {output.strip()[-200:]!r}")


def cipher_ceiling(cipher: str, seconds: int = 1) -> float:
    """One core's throughput of cipher at 16 KiB blocks (a TLS record), MB/s."""
    argv = ["openssl", "speed", "-evp", cipher, "-seconds", str(seconds), "-bytes", "16384"]
    return parse_speed(run(argv, timeout=60).stdout, cipher)


# -- resumed handshake ----------------------------------------------------------------------------
def s_server_argv(pki: dict[str, Path], port: int, naccept: int) -> list[str]:
    """``openssl s_server`` serving TLS 1.3 with the benchmark's certificate, quietly, for
    naccept connections (then it exits)."""
    return [
        "openssl", "s_server", "-accept", f"{HOST}:{port}", "-naccept", str(naccept), "-quiet",
        "-tls1_3", "-cert", str(pki["cert"]), "-key", str(pki["key"]), "-cert_chain", str(pki["chain"]),
    ]  # fmt: skip


def _drive(sock: socket.socket, obj: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, op):
    """Run op (a step of obj) to completion over sock, flushing obj's records each round."""
    while True:
        try:
            result = op()
        except ssl.SSLWantReadError:
            if outgoing.pending:
                sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                incoming.write_eof()
            else:
                incoming.write(data)
            continue
        if outgoing.pending:
            sock.sendall(outgoing.read())
        return result


def _connect(ctx: ssl.SSLContext, port: int, session: ssl.SSLSession | None) -> tuple[ssl.SSLSession, bool]:
    """One connection: handshake (resuming session if given), close_notify both ways, close.
    Returns the session to resume next (TLS 1.3 tickets arrive after the handshake; the shutdown
    reads them) and whether this one resumed. Memory BIOs, so the session outlives the shutdown."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost", session=session)
        _drive(sock, obj, incoming, outgoing, obj.do_handshake)
        reused = obj.session_reused
        _drive(sock, obj, incoming, outgoing, obj.unwrap)
        return obj.session or session, reused


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"openssl s_server exited with status {proc.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.1)
    raise BenchError(f"openssl s_server not listening on {HOST}:{port} after {timeout:.0f} s")


def resumed_handshake_ms(
    pki: dict[str, Path], batches: int = 3, per_batch: int = 300, port: int = FLOOR_PORT
) -> tuple[list[float], int]:
    """s_server's CPU per resumed connection (ms) for each batch, and how many resumed."""
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    total = 1 + batches * per_batch + 1  # +1 full handshake first, +1 the probe of _wait_listening
    cgroup = CpuCgroup("floor")
    # stdin stays an open pipe: s_server ends a connection when its stdin reaches EOF.
    proc = subprocess.Popen(
        cgroup.wrap(s_server_argv(pki, port, total)), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    per_conn: list[float] = []
    resumed = 0
    try:
        _wait_listening(port, proc)
        session, _ = _connect(ctx, port, None)  # the full handshake, not counted
        for _ in range(batches):
            cpu0 = cgroup.usage_seconds()
            for _ in range(per_batch):
                session, reused = _connect(ctx, port, session)
                resumed += reused
            per_conn.append((cgroup.usage_seconds() - cpu0) / per_batch * 1000)
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        cgroup.close()
    return per_conn, resumed


def measure(pki: dict[str, Path], batches: int = 3, per_batch: int = 300) -> Floors:
    per_conn, resumed = resumed_handshake_ms(pki, batches, per_batch)
    return Floors(
        handshake_ms=statistics.median(per_conn),
        handshake_spread=(min(per_conn), max(per_conn)),
        resumed=resumed,
        connections=batches * per_batch,
        ceilings={c: cipher_ceiling(c) for c in CIPHERS},
    )


# -- distances --------------------------------------------------------------------------------------
def distances(med: dict[tuple[str, str, str], float], servers: list[str], floors: Floors) -> list[list[str]]:
    """Rows [server, CPU per small file / floor, download MB/s / AES-GCM ceiling, server CPU per
    GiB down / the cipher's CPU per GiB] from the run's medians (Python client); "—" where a
    figure is missing."""
    aes = floors.ceilings.get("aes-256-gcm")
    aes_s_per_gib = (1 << 30) / (aes * 1e6) if aes else None
    rows = []
    hs = floors.handshake_ms
    for s in servers:
        small_cpu = med.get(("small_cpu", "py", s))
        dl = med.get(("dl", "py", s))
        dl_cpu = med.get(("dl_cpu", "py", s))
        rows.append([
            s,
            f"{small_cpu / hs:.1f}x" if small_cpu is not None and hs else "—",
            f"{dl / aes:.0%}" if dl is not None and aes else "—",
            f"{dl_cpu / aes_s_per_gib:.1f}x" if dl_cpu is not None and aes_s_per_gib else "—",
        ])  # fmt: skip
    return rows
