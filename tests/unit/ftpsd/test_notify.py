"""sd_notify: one datagram to $NOTIFY_SOCKET (path or abstract), nothing without it."""

from __future__ import annotations

import os
import socket

import pytest

from ftpsd import notify


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_and_reloading_datagrams(tmp_path, monkeypatch, abstract: bool) -> None:
    name = f"ftpsd-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name if abstract else name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name if abstract else name)
        assert notify.ready("serving")
        assert sock.recv(4096).decode().split("\n") == ["READY=1", "STATUS=serving"]
        assert notify.reloading("reloading")
        lines = sock.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert int(lines[1].split("=")[1]) > 0


def test_no_socket_no_send(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify.ready("x")


def test_unreachable_socket_is_not_fatal(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "missing"))
    assert not notify.ready("x")
