"""ftpsd.safetext: the one escaping function for logs and replies."""

from __future__ import annotations

import logging

import pytest

from ftpsd.safetext import EscapingFormatter, escape, escape_reply


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice", "alice"),
        ("a b/ü.txt", "a b/ü.txt"),
        ("x\nftpsd[1] INFO", "x\\x0aftpsd[1] INFO"),
        ("cr\rlf", "cr\\x0dlf"),
        ("esc\x1b[31m", "esc\\x1b[31m"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("bidi\u202e", "bidi\\u202e"),
        ("bad\udcff", "bad\\udcff"),  # an undecodable byte (surrogateescape)
        ("back\\x0a", "back\\\\x0a"),  # a typed escape cannot pass for one of ours
    ],
)
def test_escape(text: str, expected: str) -> None:
    assert escape(text) == expected
    assert escape(text).isprintable()


def test_escape_reply_keeps_line_structure_and_backslashes() -> None:
    assert escape_reply('257 "/a\\b" created.\r\n') == '257 "/a\\b" created.\r\n'
    assert escape_reply('257 "/d\n226 x" created.\r\n') == '257 "/d\\x0a226 x" created.\r\n'
    assert escape_reply("211-Features:\r\n MLST\r\n211 End\r\n") == "211-Features:\r\n MLST\r\n211 End\r\n"


def test_formatter_escapes_arguments_and_indents_tracebacks() -> None:
    formatter = EscapingFormatter("%(name)s: %(message)s")
    record = logging.LogRecord(
        "ftpsd.auth", logging.WARNING, __file__, 1, "login failed user=%s", ("x\ny",), None
    )
    assert formatter.format(record) == "ftpsd.auth: login failed user=x\\x0ay"
    try:
        raise ValueError("multi\nline")
    except ValueError:
        import sys

        record = logging.LogRecord("ftpsd", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "ftpsd: boom"
    assert all(line.startswith("  ") for line in lines[1:])
    # Even a newline inside the exception's text only makes another indented line: no traceback
    # line can pass for a record of its own.
    assert lines[-2:] == ["  ValueError: multi", "  line"]
