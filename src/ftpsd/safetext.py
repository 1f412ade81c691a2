"""One way to make client-supplied text harmless before it is logged or echoed back.

Anything a client sent (user names, paths, command lines) may carry CR/LF, ESC, NUL, DEL, C1
controls, Unicode line/paragraph separators or other non-printables. Written raw, they forge log
lines (``USER x\\nftpsd[1] INFO ftpsd.auth: login ok ...`` breaks fail2ban-style parsing),
drive a terminal reading the log, or add lines to a reply. :func:`escape` writes every
non-printable character as a Python-style escape (``\\x0a``, ``\\u2028``); in logs a backslash
is doubled too, so an escape a client typed cannot pass for one the daemon wrote.

Used by :class:`EscapingFormatter` (every log record of the daemon, pyftpdlib's included), by
``FtpsdHandler.push`` (every reply line) and by the xferlog writer.
"""

from __future__ import annotations

import logging


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, *, backslash: bool = True) -> str:
    """``text`` with every non-printable character escaped (and ``\\`` doubled if ``backslash``).

    The result is one printable line: no CR, LF, ESC, NUL, DEL, C1, U+2028/U+2029, bidi
    controls or lone surrogates (undecodable bytes) survive. The space is kept.
    """
    if text.isprintable() and (not backslash or "\\" not in text):
        return text
    out = []
    for ch in text:
        if ch == "\\" and backslash:
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def escape_reply(data: str) -> str:
    """A reply (one or several ``\\r\\n``-terminated lines): each line escaped, terminators kept.

    Backslashes stay single: a reply quotes paths back (``257 "/a\\b"``) and the client must be
    able to use them as they are.
    """
    if data.isprintable():
        return data
    return "\r\n".join(escape(line, backslash=False) for line in data.split("\r\n"))


def escape_name(name: str) -> str:
    """A file name as it appears in a listing (LIST, NLST, MLSD, STAT): one line, usable as is.

    Every non-printable character is escaped as :func:`escape` does (CR, LF, ESC, ...: a name
    cannot add or fake entries); backslashes stay single and undecodable bytes (lone surrogates)
    are left to the reply encoding, which writes them as ``?`` as before.
    """
    if name.isprintable():
        return name
    return "".join(ch if ch.isprintable() or "\ud800" <= ch <= "\udfff" else _escape_char(ch) for ch in name)


class EscapingFormatter(logging.Formatter):
    """A formatter whose message is always one escaped line.

    The message (``msg % args``) is escaped as a whole, so no argument can add a line. A
    traceback keeps its lines (it is the daemon's, not the client's), each escaped and indented,
    so none of its lines can pass for a record either.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:
        text = super().formatException(ei)
        return "\n".join("  " + escape(line) for line in text.split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  " + escape(line) for line in stack_info.split("\n"))
