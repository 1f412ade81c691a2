"""TLS read/write events without a generator context manager per event (docs/benchmark.md item 21).

ftpsd's handlers take pyftpdlib's ``SSLConnectionMixin.handle_read_event``/``handle_write_event``
apart from its ``_handle_ssl_want_rw`` context manager. Every combination of the mixin's state
flags and of what the step raises must end in the same calls, flags and exception as pyftpdlib's
own methods."""

from __future__ import annotations

import itertools
import types

import pytest
from OpenSSL import SSL
from pyftpdlib.handlers.ftps.ssl import SSLConnectionMixin

from ftpsd.dtp import FtpsdDTPHandler
from ftpsd.handlers import FtpsdHandler, FtpsdImplicitHandler, ReuseGatedDTPHandler

_OUTCOMES = (None, SSL.WantReadError, SSL.WantWriteError, ValueError, "flags-read", "flags-write")


class _Below:
    """What the mixin's ``super()`` reaches: the plain (non-TLS) event handlers."""

    def _step(self, name: str) -> None:
        self.calls.append(name)
        outcome = self.outcome
        if outcome == "flags-read":  # what _do_ssl_handshake does on SSL_ERROR_WANT_READ
            self._ssl_want_read = True
        elif outcome == "flags-write":
            self._ssl_want_write = True
        elif outcome is not None:
            raise outcome()

    def handle_read_event(self) -> None:
        self._step("plain-read")

    def handle_write_event(self) -> None:
        self._step("plain-write")


class _Stock(SSLConnectionMixin, _Below):
    """pyftpdlib's methods, on a stand-in connection."""

    ioloop = types.SimpleNamespace(READ=1, WRITE=4)
    _wanted_io_events = 1

    def __init__(self, flags: tuple[bool, ...], outcome) -> None:
        self.calls: list = []
        self.outcome = outcome
        (
            self._ssl_requested,
            self._ssl_accepting,
            self._ssl_closing,
            self._ssl_want_read,
            self._ssl_want_write,
        ) = flags

    def _do_ssl_handshake(self) -> None:
        self._step("handshake")

    def _do_ssl_shutdown(self) -> None:
        self._step("shutdown")

    def modify_ioloop_events(self, events: int, logdebug: bool = False) -> None:
        self.calls.append(("events", events, logdebug))

    def state(self) -> tuple:
        return (self.calls, self._ssl_want_read, self._ssl_want_write)


def _run(obj: _Stock, event: str):
    try:
        getattr(obj, event)()
    except Exception as exc:
        return (*obj.state(), type(exc))
    return (*obj.state(), None)


@pytest.mark.parametrize(
    "handler", [FtpsdHandler, FtpsdImplicitHandler, FtpsdDTPHandler, ReuseGatedDTPHandler]
)
def test_tls_events_do_what_pyftpdlibs_do_without_a_context_manager(handler, monkeypatch) -> None:
    """The handlers' event methods, run on the stand-in, against pyftpdlib's for all 2^5 flag
    states x 6 outcomes x both events; pyftpdlib's context manager made to fail, so a method that
    still uses it fails here (the old code: the handlers inherited pyftpdlib's methods)."""

    class Ours(_Stock):
        handle_read_event = handler.handle_read_event
        handle_write_event = handler.handle_write_event

    expected = {}
    for flags, outcome, event in itertools.product(
        itertools.product((False, True), repeat=5), _OUTCOMES, ("handle_read_event", "handle_write_event")
    ):
        expected[flags, outcome, event] = _run(_Stock(flags, outcome), event)

    def forbidden(self):
        raise AssertionError("a generator context manager per TLS event")

    monkeypatch.setattr(SSLConnectionMixin, "_handle_ssl_want_rw", forbidden)
    for (flags, outcome, event), want in expected.items():
        assert _run(Ours(flags, outcome), event) == want, (flags, outcome, event)
