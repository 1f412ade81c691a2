"""Log priorities journald understands: ``<N>`` sd-daemon(3) prefixes on stderr.

Under systemd (stderr is the journal stream named in ``$JOURNAL_STREAM``), every line gets the
syslog priority of its record, so ``journalctl -u ftpsd -p warning`` shows warnings and errors
only (``SyslogLevelPrefix=yes`` is systemd's default). A multi-line record (a traceback) has the
prefix on every line, so no continuation line falls back to the unit's default priority.
Elsewhere (a terminal, a test's log file) lines are written without a prefix.
The message text, with its ``user=`` / ``ip=`` fields, is unchanged either way.
"""

from __future__ import annotations

import logging
import os

from ftpsd.safetext import EscapingFormatter

# logging level → syslog priority (sd-daemon.h: SD_DEBUG 7 … SD_CRIT 2)
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def priority(levelno: int) -> int:
    """The syslog priority for a logging level (levels between two take the more severe one)."""
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return 7


def stderr_is_journal(fd: int = 2) -> bool:
    """Whether ``fd`` is the journal stream systemd connected (``$JOURNAL_STREAM`` = dev:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


class PriorityFormatter(EscapingFormatter):
    """Prefix each line of a formatted record with ``<N>`` (client text escaped, as everywhere)."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))
