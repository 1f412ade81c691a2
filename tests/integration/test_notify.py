"""systemd readiness against a real ftpsd: READY=1 once every worker serves, RELOADING=1 then
READY=1 around a reload, STOPPING=1 at shutdown (a test socket stands in for systemd's)."""

from __future__ import annotations

import socket

import pytest


def _messages(sock: socket.socket) -> list[list[str]]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode().split("\n"))
        except TimeoutError:
            return out


@pytest.mark.parametrize("workers", [1, 2])
def test_ready_reloading_stopping(make_server, tmp_path, monkeypatch, workers: int) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(3)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        server = make_server(workers=workers)  # returns once every worker logged "listening on"
        first = _messages(sock)
        assert [m[0] for m in first] == ["READY=1"], first
        assert server.reload_command().returncode == 0
        around = _messages(sock)
        assert [m[0] for m in around] == ["RELOADING=1", "READY=1"], around
        assert any(line.startswith("MONOTONIC_USEC=") for line in around[0])
        server.stop()
        assert [m[0] for m in _messages(sock)] == ["STOPPING=1"]
