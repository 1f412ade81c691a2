"""ftpskit_common.client.open_tcp: the one TCP connect of the shared FTPS client (probe, health
gate, ftps-trust). A resolver that answers "temporary failure" (EAI_AGAIN) is asked again, at most
RESOLVE_ATTEMPTS times in all; any other failure is raised at once. No network: the connect is a fake."""

from __future__ import annotations

import socket

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common import client


@pytest.fixture
def calls(monkeypatch):
    made: list = []
    monkeypatch.setattr(client, "RESOLVE_PAUSE", 0)
    monkeypatch.setattr(client.time, "sleep", lambda s: made.append(("sleep", s)))
    return made


def _fake(monkeypatch, calls, outcomes):
    def create_connection(address, timeout, source_address=None):
        calls.append(("connect", address, timeout, source_address))
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(client.socket, "create_connection", create_connection)


def _again():
    return socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


def test_a_temporary_resolver_failure_is_asked_again(monkeypatch, calls):
    sock = object()
    _fake(monkeypatch, calls, [_again(), _again(), sock])
    assert client.open_tcp(("ftp1", 21), 5.0, ("10.0.0.1", 0)) is sock
    connects = [c for c in calls if c[0] == "connect"]
    assert connects == [("connect", ("ftp1", 21), 5.0, ("10.0.0.1", 0))] * 3
    assert [c for c in calls if c[0] == "sleep"] == [("sleep", 0)] * 2


def test_the_attempts_are_bounded(monkeypatch, calls):
    _fake(monkeypatch, calls, [_again() for _ in range(client.RESOLVE_ATTEMPTS + 5)])
    with pytest.raises(socket.gaierror) as info:
        client.open_tcp(("ftp1", 21), 5.0)
    assert info.value.errno == socket.EAI_AGAIN
    assert len([c for c in calls if c[0] == "connect"]) == client.RESOLVE_ATTEMPTS == 3


@pytest.mark.parametrize(
    "failure",
    [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
    ids=["no-such-name", "refused", "timeout"],
)
def test_any_other_failure_is_raised_at_once(monkeypatch, calls, failure):
    _fake(monkeypatch, calls, [failure, object()])
    with pytest.raises(type(failure)):
        client.open_tcp(("ftp1", 21), 5.0)
    assert calls == [("connect", ("ftp1", 21), 5.0, None)]


def test_every_connect_of_the_client_goes_through_it():
    import inspect

    text = inspect.getsource(client)
    assert text.count("socket.create_connection(") == 2  # open_tcp's own two calls
