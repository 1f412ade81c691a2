"""systemd readiness notification (``Type=notify``): sd_notify(3) with the standard library.

One datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named in ``$NOTIFY_SOCKET`` (a path,
or ``@name`` for the abstract namespace). Without ``$NOTIFY_SOCKET`` (not run by systemd, or
``Type=simple``) every call does nothing. Errors are logged once and never stop the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("ftpsd")


def notify(*lines: str) -> bool:
    """Send ``lines`` (e.g. ``"READY=1"``); True if a datagram was sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or not lines:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as err:
        log.warning("cannot notify systemd on %s: %s", os.environ.get("NOTIFY_SOCKET"), err)
        return False
    return True


def ready(status: str) -> bool:
    return notify("READY=1", f"STATUS={status}")


def reloading(status: str) -> bool:
    """Before a reload; systemd ≥ 253 wants MONOTONIC_USEC with RELOADING=1 (older ones ignore it)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}")


def stopping() -> bool:
    return notify("STOPPING=1")
