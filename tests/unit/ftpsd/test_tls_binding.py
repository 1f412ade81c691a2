"""ftpsd.tls building blocks of the data-connection binding, without the daemon: per-connection
contexts do not share sessions, a sealed context issues no tickets, the gate refuses full
handshakes (docs/ftpsd.md, "Security model")."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from OpenSSL import SSL

from ftpsd.config import TLSConfig
from ftpsd.tls import (
    ContextFactory,
    ResumptionGate,
    TLSMaterial,
    fingerprint,
    seal_control_context,
    session_reused,
)
from tests.certs import TestCA

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> tuple[ContextFactory, str]:
    ca = TestCA()
    issued = ca.issue()
    material = TLSMaterial(
        directory="",
        cert=issued.cert,
        key=issued.key,
        chain=(ca.intermediate,),
        fingerprint=fingerprint(issued.cert),
    )
    cafile = ca.write_root(tmp_path_factory.mktemp("ca") / "ca.pem")
    return ContextFactory(TLSConfig(), material), str(cafile)


class Client:
    """A Python ssl client context that counts the NewSessionTicket messages it reads."""

    def __init__(self, cafile: str, version: str) -> None:
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.minimum_version = self.ctx.maximum_version = VERSIONS[version]
        self.tickets = 0

        def count(conn, direction, version, content_type, msg_type, data) -> None:  # noqa: PLR0917 - ssl's API
            if direction == "read" and msg_type == ssl._TLSMessageType.NEWSESSION_TICKET:
                self.tickets += 1

        self.ctx._msg_callback = count


def handshake(
    server_ctx: SSL.Context, client: Client, session: ssl.SSLSession | None = None, *, gate: bool = False
) -> dict:
    """One connection: server side in a thread; returns what both sides saw."""
    a, b = socket.socketpair()
    seen: dict = {"session": None, "client_resumed": None, "server_resumed": None, "refused": None}

    def serve() -> None:
        conn = SSL.Connection(server_ctx, a)
        guard = ResumptionGate(conn) if gate else None
        conn.set_accept_state()
        try:
            conn.do_handshake()
            seen["server_resumed"] = session_reused(conn)
            conn.recv(16)
            conn.sendall(b"pong")
            conn.shutdown()
        except SSL.Error:
            pass
        finally:
            seen["refused"] = guard.refused if guard else None
            a.close()

    thread = threading.Thread(target=serve)
    thread.start()
    b.settimeout(10)
    try:
        tls = client.ctx.wrap_socket(b, server_hostname="127.0.0.1", session=session)
        seen["client_resumed"] = tls.session_reused
        tls.sendall(b"ping")
        tls.recv(16)  # also reads any ticket sent after the handshake
        seen["session"] = tls.session
        tls.close()
    except (OSError, ssl.SSLError):
        b.close()
    thread.join(10)
    return seen


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_a_session_resumes_only_on_the_context_that_issued_it(pki, version: str) -> None:
    factory, cafile = pki
    mine, other = factory.new_context(), factory.new_context()
    client = Client(cafile, version)
    session = handshake(mine, client)["session"]
    assert session is not None
    assert handshake(mine, client, session)["server_resumed"] is True
    assert handshake(other, client, session)["server_resumed"] is False


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_sealed_context_resumes_without_issuing_tickets(pki, version: str) -> None:
    factory, cafile = pki
    ctx = factory.new_context()
    client = Client(cafile, version)
    session = handshake(ctx, client)["session"]
    assert client.tickets >= 1  # the control connection's ticket(s): the counter sees them
    seal_control_context(ctx)
    client.tickets = 0
    for _ in range(3):
        seen = handshake(ctx, client, session, gate=True)
        assert (seen["server_resumed"], seen["refused"]) == (True, False)
    assert client.tickets == 0


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_gate_refuses_a_full_handshake_before_a_session_exists(pki, version: str) -> None:
    factory, cafile = pki
    ctx = factory.new_context()
    client = Client(cafile, version)
    handshake(ctx, client)
    seal_control_context(ctx)
    control_tickets = client.tickets
    seen = handshake(ctx, client, gate=True)  # no session: a full handshake
    assert seen["refused"] is True
    assert seen["client_resumed"] is None and seen["session"] is None  # the client got nothing
    assert client.tickets == control_tickets


def test_factory_rejects_a_key_that_does_not_match(pki) -> None:
    from ftpsd.tls import TLSMaterialError

    factory, _ = pki
    other = TestCA().issue()
    material = TLSMaterial(
        directory="",
        cert=factory.material.cert,
        key=other.key,
        chain=(),
        fingerprint="",
    )
    with pytest.raises(TLSMaterialError):
        ContextFactory(TLSConfig(), material)


def test_each_context_is_its_own_and_fully_configured(pki) -> None:
    factory, _ = pki
    contexts = [factory.new_context() for _ in range(50)]
    assert len({id(ctx._context) for ctx in contexts}) == 50
    for ctx in contexts:
        assert ctx.get_session_cache_mode() == SSL.SESS_CACHE_SERVER
        ctx.check_privatekey()  # certificate and key attached
