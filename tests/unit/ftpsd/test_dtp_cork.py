"""Small downloads leave corked (issue 23, data close): data, close_notify and FIN in one segment.

``FtpsdDTPHandler._cork_if_small`` sets ``TCP_CORK`` on the data socket only when everything
queued fits in one send chunk (the socket is closed right after it, which sends what is held);
a larger download, a producer of unknown size or a socket that refuses the option is sent as
before."""

from __future__ import annotations

import collections
import io
import socket

import pytest
from pyftpdlib.handlers.ftp.producers import FileProducer

from ftpsd.dtp import _FILE_CHUNK, FtpsdDTPHandler


class _Sock:
    def __init__(self, fail: bool = False) -> None:
        self.options: list[tuple[int, int, int]] = []
        self.fail = fail

    def setsockopt(self, level: int, name: int, value: int) -> None:
        if self.fail:
            raise OSError("refused")
        self.options.append((level, name, value))


def _handler(items, sock: _Sock) -> FtpsdDTPHandler:
    handler = object.__new__(FtpsdDTPHandler)  # no connection: only the decision is exercised
    handler.producer_fifo = collections.deque(items)
    handler.socket = sock
    return handler


def _file(tmp_path, size: int, skip: int = 0):
    path = tmp_path / f"f{size}"
    path.write_bytes(b"x" * size)
    handle = path.open("rb")
    handle.seek(skip)
    return handle


CORK = (socket.IPPROTO_TCP, socket.TCP_CORK, 1)


@pytest.mark.parametrize(
    ("size", "skip", "corked"),
    [
        (4096, 0, True),
        (_FILE_CHUNK, 0, True),
        (_FILE_CHUNK + 1, 0, False),
        (_FILE_CHUNK + 4096, 4096, True),  # REST: what is left to send counts
        (0, 0, True),
    ],
)
def test_a_file_download_is_corked_only_when_it_fits_in_one_chunk(tmp_path, size, skip, corked) -> None:
    sock = _Sock()
    with _file(tmp_path, size, skip) as handle:
        _handler([FileProducer(handle, "i"), None], sock)._cork_if_small()
    assert sock.options == ([CORK] if corked else [])


def test_listings_and_unknown_producers(tmp_path) -> None:
    sock = _Sock()
    _handler([b"a" * 100, b"b" * 100, None], sock)._cork_if_small()
    assert sock.options == [CORK]
    sock = _Sock()
    _handler([b"a" * (_FILE_CHUNK + 1)], sock)._cork_if_small()
    assert sock.options == []
    sock = _Sock()
    _handler([io.BytesIO(b"?")], sock)._cork_if_small()  # a producer of unknown size
    assert sock.options == []


def test_a_socket_refusing_the_option_is_sent_uncorked(tmp_path) -> None:
    with _file(tmp_path, 10) as handle:
        _handler([FileProducer(handle, "i")], _Sock(fail=True))._cork_if_small()  # no exception
