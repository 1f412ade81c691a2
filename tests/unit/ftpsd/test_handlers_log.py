"""Session log lines (issue 23, reply path): ``FtpsdHandler.log`` formats nothing for a pyftpdlib
logger method whose level is off, and logs as before otherwise."""

from __future__ import annotations

import logging
import sys

import pytest
from pyftpdlib.log import logger

from ftpsd.handlers import FtpsdHandler


def _handler() -> FtpsdHandler:
    return object.__new__(FtpsdHandler)  # no socket: only log() is exercised


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_a_reply_logged_at_debug_is_not_formatted_when_debug_is_off(level, caplog) -> None:
    """``respond`` logs every reply with ``logger.debug``: with debug off, log() must return before
    pyftpdlib formats the session prefix (``log_prefix % self.__dict__``)."""
    handler = _handler()
    handler.__dict__.clear()  # formatting would raise KeyError: proof it did not happen
    old = logger.level
    logger.setLevel(level)
    try:
        with caplog.at_level(level, logger="pyftpdlib"):
            handler.log("226 Transfer complete.", logfun=logger.debug)
            if level > logging.INFO:  # pyftpdlib's transfer line, its logger at warning
                handler.log("RETR /f completed=1", logfun=logger.info)
    finally:
        logger.setLevel(old)
    assert not [r for r in caplog.records if r.name == "pyftpdlib"]


def test_enabled_levels_and_other_log_functions_still_log(caplog) -> None:
    handler = _handler()
    handler.__dict__.update(remote_ip="192.0.2.1", remote_port=2121, username="alice")
    seen: list[str] = []
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="pyftpdlib"):
            handler.log("425 refused", logfun=logger.warning)
            handler.log("own", logfun=seen.append)  # not a pyftpdlib logger method: always called
            handler.log("quiet", logfun=logger.info)
    finally:
        logger.setLevel(old)
    assert [r.getMessage() for r in caplog.records if r.name == "pyftpdlib"] == [
        "192.0.2.1:2121-[alice] 425 refused"
    ]
    assert seen == ["192.0.2.1:2121-[alice] own"]
    logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="pyftpdlib"):
            handler.log("226 Transfer complete.", logfun=logger.debug)
    finally:
        logger.setLevel(old)
    assert caplog.records[-1].getMessage() == "192.0.2.1:2121-[alice] 226 Transfer complete."


class _Loud:
    """A dispatcher whose repr records that it was formatted."""

    def __init__(self) -> None:
        self.formatted = 0

    def __repr__(self) -> str:
        self.formatted += 1
        return "<Loud>"


def test_pyftpdlib_debug_lines_are_formatted_only_when_written(caplog) -> None:
    """pyftpdlib's ``debug(s, inst)`` formatted ``repr(inst)`` on every call with debug logging
    off (several times per data connection); every pyftpdlib module now calls ``lazy_debug``,
    which formats nothing then and logs the same line when debug is on."""
    import pyftpdlib.handlers.ftp.dispatchers

    from ftpsd.handlers import lazy_debug

    # Every loaded pyftpdlib module with a ``debug`` of its own (imported by name).
    modules = [
        m for name, m in sorted(sys.modules.items()) if name.startswith("pyftpdlib") and hasattr(m, "debug")
    ]
    assert len(modules) >= 7
    assert all(module.debug is lazy_debug for module in modules)
    inst = _Loud()
    old = logger.level
    try:
        logger.setLevel(logging.INFO)
        with caplog.at_level(logging.INFO, logger="pyftpdlib"):
            for module in modules:
                module.debug("call: close()", inst)
        assert inst.formatted == 0
        assert not [r for r in caplog.records if r.name == "pyftpdlib"]
        logger.setLevel(logging.DEBUG)
        with caplog.at_level(logging.DEBUG, logger="pyftpdlib"):
            pyftpdlib.handlers.ftp.dispatchers.debug("call: close()", inst)
    finally:
        logger.setLevel(old)
    assert inst.formatted == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "pyftpdlib"]
    assert lines == ["[debug] call: close() (<Loud>)"]
