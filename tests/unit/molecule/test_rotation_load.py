"""molecule/rotation/files/rotation_load.py, the load of the rotation, ca-rollover and faults scenarios.

A server that ``podman stop`` and ``podman start`` brought back has a new address on the lab
network: every new connection must resolve the name again (the ``faults`` scenario's load failed
with "No route to host" on the old address), and a resolver failure must fall back to the last
address instead of failing the transfer. The resolver and the FTPS client are fakes: no network.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import socket
from pathlib import Path

import pytest

from tests.paths import ROOT

LOAD = ROOT / "molecule" / "rotation" / "files" / "rotation_load.py"


@pytest.fixture
def load_module():
    spec = importlib.util.spec_from_file_location("rotation_load", LOAD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Resolver:
    """getaddrinfo's stand-in: the answers in order (the last one repeats); an exception is raised."""

    def __init__(self, *answers: str | OSError) -> None:
        self.answers, self.calls = list(answers), 0

    def __call__(self, host, port, *args, **kwargs):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, OSError):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port))]


def fake_client(connected: list[str]):
    class Client:
        """FTPSClient's stand-in: notes the address, then fails as an unreachable host does."""

        def __init__(self, **kwargs) -> None:
            pass

        def connect(self, host: str, port: int) -> None:
            connected.append(host)
            raise OSError(errno.EHOSTUNREACH, "No route to host")

        def close(self) -> None:
            pass

    return Client


def args(tmp_path: Path, transfers: int) -> argparse.Namespace:
    return argparse.Namespace(
        servers=["srv"],
        user="alice",
        port=21,
        implicit_port=990,
        stop_file=str(tmp_path / "stop"),
        out=str(tmp_path / "out.json"),
        max_seconds=60,
        pin_file="",
        max_transfers=transfers,
        size=16,
        pause=0,
        long_size=16,
        long_pause=0,
    )


def test_each_new_session_resolves_the_name_again(load_module, tmp_path, monkeypatch):
    """The address at the start (10.0.0.10) changed (10.0.0.20): every later session uses the new one."""
    connected: list[str] = []
    monkeypatch.setattr(load_module.socket, "getaddrinfo", Resolver("10.0.0.10", "10.0.0.20"))
    monkeypatch.setattr(load_module, "FTPSClient", fake_client(connected))
    load = load_module.Load(args(tmp_path, 3), "pw")
    load.sessions("srv")
    assert connected == ["10.0.0.20"] * 3
    assert [(e["address"], e["ok"]) for e in load.events] == [("10.0.0.20", False)] * 3


def test_the_long_session_reconnects_to_the_new_address(load_module, tmp_path, monkeypatch):
    """The long-lived session's reconnection after a failure resolves the name again."""
    connected: list[str] = []
    monkeypatch.setattr(load_module.socket, "getaddrinfo", Resolver("10.0.0.10", "10.0.0.10", "10.0.0.20"))
    monkeypatch.setattr(load_module, "FTPSClient", fake_client(connected))
    load = load_module.Load(args(tmp_path, 3), "pw")
    load.long("srv")
    assert connected == ["10.0.0.10", "10.0.0.20", "10.0.0.20"]
    assert [e["address"] for e in load.events] == connected


def test_a_resolver_failure_uses_the_last_address_and_is_counted(load_module, tmp_path, monkeypatch):
    """A DNS blip is not the server's downtime: the last address it gave, and the run says how often."""
    connected: list[str] = []
    monkeypatch.setattr(
        load_module.socket,
        "getaddrinfo",
        Resolver("10.0.0.10", "10.0.0.20", socket.gaierror(socket.EAI_AGAIN, "Temporary failure")),
    )
    monkeypatch.setattr(load_module, "FTPSClient", fake_client(connected))
    load = load_module.Load(args(tmp_path, 3), "pw")
    load.sessions("srv")
    assert connected == ["10.0.0.20", "10.0.0.20", "10.0.0.20"]
    result = load.run()  # both threads, stopped by max_transfers; the resolver still fails
    assert result["resolve_failures"] == 2 + 6
    assert result["addresses"] == {"srv": ["10.0.0.10", "10.0.0.20"]}
    assert result["failed"] == result["transfers"] == 3 + 6
