"""The passive listener (issue 11 row 11): it never leaves ``passive_ports``, also when another
worker wins the race for the same port (SO_REUSEADDR lets both bind; only one listen() wins)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import ClassVar

import pytest
from pyftpdlib.handlers.ftp import dispatchers
from pyftpdlib.ioloop import IOLoop

from ftpsd.handlers import PassivePortsCapped, PassivePortsExhausted, RangedPassiveDTP, Runtime
from ftpsd.limits import SharedLimits


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
    username = "alice"
    max_passive_ports_per_user = 0

    def __init__(self, ioloop, ports: list[int], family: int = socket.AF_INET) -> None:
        self.ioloop = ioloop
        self.passive_ports = ports
        self.replies: list[str] = []
        self.runtime = Runtime(limits=SharedLimits(slots=16))
        self.socket = socket.socket(family)
        self.socket.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.server = type("S", (), {"socket": self.socket, "backlog": 5})()

    def local_ip(self) -> str:
        return self.socket.getsockname()[0]

    def local_family(self) -> int:
        return self.socket.family

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


def test_ipv6_listener_binds_within_the_range(ioloop) -> None:
    """Issue 22 row 8: on IPv6, pyftpdlib probed the family with a bind to port 0, which the
    range check refused: every EPSV on IPv6 ended the session. Now the port is in the range."""
    ports = _free_ports(3)
    channel = _Channel(ioloop, ports, socket.AF_INET6)
    try:
        dtp = RangedPassiveDTP(channel, extmode=True)
        port = dtp.socket.getsockname()[1]
        assert dtp.socket.family == socket.AF_INET6 and port in ports
        assert channel.replies == [f"229 Entering extended passive mode (|||{port}|)."]
        assert channel.runtime.limits.passive("alice") == 1
        dtp.close()
        dtp.close()  # the count is given back once
        assert channel.runtime.limits.passive("alice") == 0
    finally:
        channel.socket.close()


def test_listeners_per_user_are_capped(ioloop) -> None:
    ports = _free_ports(4)
    channel = _Channel(ioloop, ports)
    channel.max_passive_ports_per_user = 2
    try:
        first = RangedPassiveDTP(channel, extmode=True)
        second = RangedPassiveDTP(channel, extmode=True)
        with pytest.raises(PassivePortsCapped):
            RangedPassiveDTP(channel, extmode=True)
        assert len(channel.replies) == 2  # the refused one answered nothing itself
        first.close()
        third = RangedPassiveDTP(channel, extmode=True)
        for dtp in (second, third):
            dtp.close()
        assert channel.runtime.limits.passive("alice") == 0
    finally:
        channel.socket.close()


class _CountingRange(Sequence):
    """A port range that counts how often it is walked whole (``list(ports)`` walks it)."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self.walks = 0

    def __len__(self) -> int:
        return len(self._ports)

    def __getitem__(self, index):
        return self._ports[index]

    def __iter__(self):
        self.walks += 1
        return iter(self._ports)


def test_a_pasv_draws_its_port_without_copying_the_range(ioloop) -> None:
    """pyftpdlib copied the whole range into a new list on every PASV/EPSV (work growing with the
    range); the listener draws its port from the range as it is. Same reply, port in the range.
    Fails on the old code (the range is walked once per listener)."""
    ports = _CountingRange(_free_ports(8))
    channel = _Channel(ioloop, ports)
    try:
        for extmode in (False, True, False):
            dtp = RangedPassiveDTP(channel, extmode=extmode)
            port = dtp.socket.getsockname()[1]
            assert port in ports._ports
            dtp.close()
        assert ports.walks == 0
        second = int(channel.replies[1].split("|||")[1].split("|")[0])
        for reply in (channel.replies[0], channel.replies[2]):
            head, _, tail = reply.partition("(")
            assert head == "227 Entering passive mode "
            numbers = [int(x) for x in tail.rstrip(").").split(",")]
            assert numbers[:4] == [127, 0, 0, 1] and numbers[4] * 256 + numbers[5] in ports._ports
            assert reply.endswith(").")
        assert channel.replies[1] == f"229 Entering extended passive mode (|||{second}|)."
    finally:
        channel.socket.close()


@pytest.mark.parametrize("attempt", range(6))  # the draws are random: several tries
def test_every_free_port_of_the_range_is_found_before_a_refusal(ioloop, attempt: int) -> None:
    """With all but one port of the range taken (more than the random draws can be expected to
    hit), the listener still finds the free one; with none free it refuses (425 upstream),
    replying nothing itself and never leaving the range."""
    ports = _free_ports(40)
    taken = []
    try:
        for port in ports[1:]:
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
            taken.append(sock)
        channel = _Channel(ioloop, list(ports))
        try:
            dtp = RangedPassiveDTP(channel, extmode=True)
            assert dtp.socket.getsockname()[1] == ports[0]
            dtp.close()
            channel.replies.clear()
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", ports[0]))
            blocker.listen(1)
            taken.append(blocker)
            with pytest.raises(PassivePortsExhausted):
                RangedPassiveDTP(channel, extmode=True)
            assert channel.replies == []
            assert channel.runtime.limits.passive("alice") == 0
        finally:
            channel.socket.close()
    finally:
        for sock in taken:
            sock.close()
