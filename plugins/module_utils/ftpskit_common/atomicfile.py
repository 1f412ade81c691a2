"""Atomic file writes: the one implementation for the daemon, the client and our modules.

Standard library only, part of the shared package ``ftpskit_common``: Ansible ships it to hosts
beside the modules that use it, and the daemon imports it from the ``ftpskit-common`` wheel.
"""

from __future__ import annotations

import os
import tempfile


def atomic_write(path: str, data: bytes, mode: int, gid: int = -1) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    A temp file in the same directory gets the mode (and, as root, owner root and group ``gid``)
    before any byte is written, is fsynced, then renamed over ``path``. On any error the temp
    file is removed and ``path`` is untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        if gid >= 0:
            os.fchown(fd, 0 if os.geteuid() == 0 else -1, gid)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
