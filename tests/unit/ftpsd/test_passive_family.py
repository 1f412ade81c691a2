"""The passive listener against pyftpdlib's on the same control connection (real loopback sockets).

``RangedPassiveDTP._open`` re-implements pyftpdlib's ``PassiveDTP.__init__`` (docs/benchmark.md
item 19). Whatever it copies must match: for a control connection over IPv4 (127.0.0.1), IPv6
(::1) and IPv4-mapped IPv6 (a dual-stack listener on ``::`` reached via 127.0.0.1, local address
``::ffff:127.0.0.1``), ``PASV`` and ``EPSV`` run through pyftpdlib's ``FTPHandler`` and through
``FtpsdHandler`` must give a listener of the same address family, bound to the same address, and
the same 227/229 reply bytes (the drawn port aside, which is random in both and must be the bound
one, in the range). The one deliberate difference (docs/ftpsd.md, *IPv6*): ``PASV`` over pure IPv6,
which pyftpdlib answers with a 227 carrying ``::1`` that no client can parse, is refused with one
``522`` and no listener.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop

from ftpsd.handlers import FtpsdHandler, Runtime
from ftpsd.limits import SharedLimits


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


_V6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")

# kind -> (listener family, listener address, IPV6_V6ONLY, address the client connects to)
_CONTROLS = {
    "ipv4": (socket.AF_INET, "127.0.0.1", None, "127.0.0.1"),
    "ipv6": (socket.AF_INET6, "::1", 1, "::1"),  # as ftpsd binds its IPv6 listeners
    "mapped": (socket.AF_INET6, "::", 0, "127.0.0.1"),  # a dual-stack listener, IPv4 client
}
_LOCAL_IP = {"ipv4": "127.0.0.1", "ipv6": "::1", "mapped": "::ffff:127.0.0.1"}


@pytest.fixture
def ioloop() -> Iterator[IOLoop]:
    loop = IOLoop()
    yield loop
    loop.close()


@pytest.fixture
def control(request) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the server's listening socket, the server side of a real control connection)."""
    family, address, v6only, dest = _CONTROLS[request.param]
    listener = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    listener.bind((address, 0))
    listener.listen(1)
    client = socket.create_connection((dest, listener.getsockname()[1]), timeout=5)
    accepted, _ = listener.accept()
    yield listener, accepted
    for sock in (client, accepted, listener):
        sock.close()


def _free_ports(family: int, host: str, count: int) -> list[int]:
    socks = [socket.socket(family) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _stand_in(cls, ioloop: IOLoop, control: tuple[socket.socket, socket.socket], ports, masquerade):
    """A ``cls`` control channel on the accepted connection, past login and PROT P, with what
    ``ftp_PASV``/``ftp_EPSV`` and the passive listener read (no TLS: the listener never uses it)."""
    listener, accepted = control
    handler = object.__new__(cls)
    handler.ioloop = ioloop
    handler.socket = accepted
    handler.connected = True
    handler.remote_ip = accepted.getpeername()[0]
    handler.passive_ports = ports
    handler.masquerade_address, handler.masquerade_address_map = masquerade
    handler.server = type(
        "Server", (), {"socket": listener, "backlog": 5, "_accept_new_cons": lambda _s: True}
    )()
    handler.replies = []
    handler.respond = handler.replies.append
    handler.log = handler.log_exception = lambda *args, **kwargs: None
    handler.data_channel = handler._dtp_acceptor = handler._dtp_connector = None
    handler._epsvall = False
    handler.username = "alice"
    handler.runtime = Runtime(limits=SharedLimits(slots=16))
    handler.max_passive_ports_per_user = 0
    return handler


def _run(cls, command: str, ioloop, control, ports, *, masquerade=(None, {})) -> tuple:
    """(reply bytes with the port as ``<port>``, listener family, bound address) after ``command``
    (``masquerade``: the address and the map, as ``server.masquerade_address`` sets them); the port
    is checked: the bound one, in ``ports``."""
    handler = _stand_in(cls, ioloop, control, ports, masquerade)
    getattr(handler, f"ftp_{command}")("")
    assert len(handler.replies) == 1, handler.replies
    reply = (handler.replies[0] + "\r\n").encode()
    dtp = handler._dtp_acceptor
    if dtp is None:
        return reply, None, None
    try:
        host, port = dtp.socket.getsockname()[:2]
        assert port in ports
        shown = f"(|||{port}|)" if command == "EPSV" else f",{port // 256},{port % 256})"
        assert reply.count(shown.encode()) == 1, (reply, port)
        return reply.replace(shown.encode(), b"<port>"), dtp.socket.family, host
    finally:
        dtp.close()
        assert handler.runtime.limits.passive("alice") == 0  # ftpsd's count given back


_CASES = [
    pytest.param("ipv4", "PASV", id="ipv4-PASV"),
    pytest.param("ipv4", "EPSV", id="ipv4-EPSV"),
    pytest.param("ipv6", "EPSV", id="ipv6-EPSV", marks=_V6),
    pytest.param("mapped", "PASV", id="mapped-PASV", marks=_V6),
    pytest.param("mapped", "EPSV", id="mapped-EPSV", marks=_V6),
]


@pytest.mark.parametrize(("control", "command"), _CASES, indirect=["control"])
def test_listener_family_address_and_reply_are_pyftpdlibs(ioloop, control, command) -> None:
    accepted = control[1]
    local_ip = accepted.getsockname()[0]
    ports = _free_ports(accepted.family, local_ip, 8)
    stock = _run(FTPHandler, command, ioloop, control, ports)
    ours = _run(FtpsdHandler, command, ioloop, control, ports)
    assert ours == stock
    # and what that is, spelt out (so a change in pyftpdlib shows here too)
    assert local_ip in _LOCAL_IP.values()
    family = socket.AF_INET if local_ip == _LOCAL_IP["ipv4"] else socket.AF_INET6
    if command == "EPSV":
        want = b"229 Entering extended passive mode <port>.\r\n"
    else:
        want = b"227 Entering passive mode (127,0,0,1<port>.\r\n"  # ::ffff: stripped
    assert ours == (want, family, local_ip)


@_V6
@pytest.mark.parametrize("control", ["ipv6"], indirect=True)
def test_pasv_over_ipv6_is_refused_where_pyftpdlib_sends_an_unparsable_227(ioloop, control) -> None:
    """The documented difference (docs/ftpsd.md, *IPv6*): pyftpdlib answers PASV on an IPv6
    control connection with ``227 Entering passive mode (::1,p1,p2).`` and listens; ftpsd answers
    one 522 and opens nothing."""
    ports = _free_ports(socket.AF_INET6, "::1", 8)
    stock = _run(FTPHandler, "PASV", ioloop, control, ports)
    assert stock == (b"227 Entering passive mode (::1<port>.\r\n", socket.AF_INET6, "::1")
    ours = _run(FtpsdHandler, "PASV", ioloop, control, ports)
    assert ours == (b"522 PASV is IPv4 only; use EPSV on IPv6 (RFC 2428).\r\n", None, None)


_MASQUERADE_CASES = [
    pytest.param("ipv4", id="ipv4"),
    pytest.param("mapped", id="mapped", marks=_V6),
]


@pytest.mark.parametrize("control", _MASQUERADE_CASES, indirect=True)
@pytest.mark.parametrize("command", ["PASV", "EPSV"])
def test_masquerade_replies_are_pyftpdlibs(ioloop, control, command) -> None:
    """``masquerade_address`` (NAT) and the per-local-address map give pyftpdlib's replies too: the
    masqueraded address in a 227 (the map's entry for the local address first), none in a 229."""
    accepted = control[1]
    local_ip = accepted.getsockname()[0]
    ports = _free_ports(accepted.family, local_ip, 8)
    cases = {
        "203.0.113.7": ("203.0.113.7", {}),
        "198.51.100.9": ("203.0.113.7", {local_ip: "198.51.100.9", "192.0.2.1": "192.0.2.2"}),
    }
    for shown, masquerade in cases.items():
        stock = _run(FTPHandler, command, ioloop, control, ports, masquerade=masquerade)
        ours = _run(FtpsdHandler, command, ioloop, control, ports, masquerade=masquerade)
        assert ours == stock, masquerade
        if command == "PASV":
            assert ours[0] == f"227 Entering passive mode ({shown.replace('.', ',')}<port>.\r\n".encode()
