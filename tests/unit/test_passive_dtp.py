"""The passive listener (issue 11 row 11): it never leaves ``passive_ports``, also when another
worker wins the race for the same port (SO_REUSEADDR lets both bind; only one listen() wins)."""

from __future__ import annotations

import socket
from typing import ClassVar

import pytest
from pyftpdlib.handlers.ftp import dispatchers
from pyftpdlib.ioloop import IOLoop

from ftpsd.handlers import PassivePortsExhausted, RangedPassiveDTP


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _Channel:
    """What PassiveDTP reads from its control channel."""

    masquerade_address_map: ClassVar[dict] = {}
    masquerade_address = None
    remote_ip = "127.0.0.1"
    connected = True

    def __init__(self, ioloop, ports: list[int]) -> None:
        self.ioloop = ioloop
        self.passive_ports = ports
        self.replies: list[str] = []
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.server = type("S", (), {"socket": self.socket, "backlog": 5})()

    def log(self, *args, **kwargs) -> None:
        pass

    log_exception = log

    def respond(self, line: str) -> None:
        self.replies.append(line)


@pytest.fixture
def ioloop():
    loop = IOLoop()
    yield loop
    loop.close()


def _racing_dtp(competitor: socket.socket, contested: int):
    class Racing(RangedPassiveDTP):
        timeout = 0

        def bind(self, addr) -> None:
            super().bind(addr)
            if addr[1] == contested and competitor.fileno() != -1:
                competitor.listen(1)  # the other worker listens first

    return Racing


def _competitor(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def test_lost_listen_race_moves_to_another_port_in_the_range(ioloop, monkeypatch) -> None:
    first, second = _free_ports(2)
    monkeypatch.setattr(dispatchers.random, "randint", lambda lo, hi: lo)  # try `first` first
    competitor = _competitor(first)
    channel = _Channel(ioloop, [first, second])
    try:
        dtp = _racing_dtp(competitor, first)(channel, extmode=True)
        assert dtp.socket.getsockname()[1] == second
        assert channel.replies == [f"229 Entering extended passive mode (|||{second}|)."]
        dtp.close()
    finally:
        competitor.close()
        channel.socket.close()


def test_lost_listen_race_on_the_only_port_is_refused_not_moved_outside(ioloop) -> None:
    (only,) = _free_ports(1)
    competitor = _competitor(only)
    channel = _Channel(ioloop, [only])
    try:
        with pytest.raises(PassivePortsExhausted):
            _racing_dtp(competitor, only)(channel, extmode=True)
        assert channel.replies == []
    finally:
        competitor.close()
        channel.socket.close()
