"""Log lines carry the journald priority of their level when stderr is the journal."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from ftpsd.journal import PriorityFormatter, priority, stderr_is_journal


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
        (logging.INFO + 5, 6),
        (logging.WARNING + 1, 4),
        (1, 7),
    ],
)
def test_priority(level: int, expected: int) -> None:
    assert priority(level) == expected


def _record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("ftpsd", level, __file__, 1, msg, (), None)


def test_prefix_on_every_line_and_fields_kept() -> None:
    formatter = PriorityFormatter("%(levelname)s %(message)s")
    line = formatter.format(_record(logging.WARNING, "login refused user=alice ip=127.0.0.1"))
    assert line == "<4>WARNING login refused user=alice ip=127.0.0.1"
    # A message is one line (client text escaped, ftpsd.safetext); a traceback keeps its lines,
    # each with the prefix.
    assert formatter.format(_record(logging.ERROR, "a\nb")) == "<3>ERROR a\\x0ab"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("ftpsd", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert lines[0] == "<3>ERROR failed" and len(lines) > 2
    assert all(line.startswith("<3>  ") for line in lines[1:])


def test_stderr_is_journal(tmp_path, monkeypatch) -> None:
    with open(tmp_path / "stream", "w") as handle:
        st = os.fstat(handle.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert stderr_is_journal(handle.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not stderr_is_journal(handle.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", "garbage")
        assert not stderr_is_journal(handle.fileno())
        monkeypatch.delenv("JOURNAL_STREAM")
        assert not stderr_is_journal(handle.fileno())
