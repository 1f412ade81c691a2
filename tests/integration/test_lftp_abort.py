"""lftp (the real client) aborts a download (``cat big | head``: it closes the data connection and
sends ``ABOR``), then runs the next command on the same session (``ls``). lftp pairs replies with
its commands by reading them: a ``426`` whose text contains "ABOR" it takes for the ABOR's own
answer, so pyftpdlib's "426 Transfer aborted via ABOR." made it drop one reply ("server bug: 426
reply missed"), pair every later reply with the wrong command, and reconnect after its timeout.
The session must go on answering: one login (one FEAT), and no traceback in the daemon's log."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration.conftest import PASSWORDS, Server

pytestmark = pytest.mark.skipif(shutil.which("lftp") is None, reason="needs lftp")


def test_lftp_abort_then_next_command_on_the_same_session(server: Server) -> None:
    (server.homes["alice"] / "big.bin").write_bytes(os.urandom(1 << 20) * 40)
    (server.homes["alice"] / "small.txt").write_bytes(b"x")
    script = (
        f"set ssl:ca-file {server.cafile}; set ssl:verify-certificate yes; set ftp:ssl-force true;"
        " set ftp:ssl-protect-data true; set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes;"
        " set net:limit-rate 200000;"
        f" open -u alice,{PASSWORDS['alice']} -p {server.port} localhost;"
        " cat big.bin | head -c 1000 >/dev/null; ls"
    )
    result = subprocess.run(["lftp", "-d", "-c", script], capture_output=True, timeout=90, check=False)
    sent = [line for line in result.stderr.decode("latin-1").splitlines() if line.startswith("---> ")]
    assert sent.count("---> FEAT") == 1, "lftp had to reconnect: the session stopped answering"
    assert "Traceback" not in server.log(), server.log()[-3000:]
