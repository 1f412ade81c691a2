"""Partial uploads left behind by a killed daemon or a dead worker, removed after the next start
and after the supervisor restarts a worker.

``STOR`` writes to ``.<name>.<12 hex>.ftpsd-part`` in the target directory and renames it over
the real name once complete (:meth:`ftpsd.handlers.FtpsdHandler.ftp_STOR`); a daemon killed with
SIGKILL, or one worker that dies, cannot discard those files. :class:`LeftoverSweep` walks every
user's home and removes the regular files named exactly so whose modification time is older
than its ``started`` (the daemon's start, or the moment a worker's death was noticed) and that
nobody holds a lock on: an upload in progress keeps its temporary file open and locked
(``flock``, taken by :class:`ftpsd.homefs.HomeFS` when it opens one) until it has been renamed to
its real name or removed, and the kernel drops the lock of a process that dies.

The walk never follows a symlink and never leaves a home: every directory is opened from the
home's descriptor by :func:`ftpsd.homefs.open_beneath` (no symlink followed in any position,
the same resolution the sessions use), and every check and removal is relative to that
directory's descriptor (``dir_fd``, ``follow_symlinks=False``). It runs in slices of :data:`STEP_SECONDS` (the
supervisor steps it between its other duties; the single-process daemon runs it in a thread),
so it never holds up serving, however large the homes are.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator

# The names themselves live with the filesystem sessions see (it hides them from listings).
from ftpsd.homefs import LIST_FLAGS, PART_NAME, UPLOAD_SUFFIX, final_name, open_beneath, part_name

__all__ = ["PART_NAME", "UPLOAD_SUFFIX", "LeftoverSweep", "final_name", "part_name"]

log = logging.getLogger("ftpsd")
# Opening a leftover to test its lock: never a link (checked again on the descriptor), never
# blocking (a FIFO swapped in), never a controlling terminal.
_PROBE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

STEP_SECONDS = 0.05  # one slice of work
PAUSE_SECONDS = 0.2  # between slices: at most a fifth of a core


def _outermost(homes: Iterable[str]) -> list[str]:
    """Existing homes, symlinks resolved, without the ones inside another (walked with it)."""
    kept: list[str] = []
    for home in sorted({os.path.realpath(h) for h in homes}, key=lambda p: p.split(os.sep)):
        if not os.path.isdir(home):
            continue  # the authorizer already warned: that user cannot log in
        if kept and (home + os.sep).startswith(kept[-1].rstrip(os.sep) + os.sep):
            continue
        kept.append(home)
    return kept


def _unreadable(path: str, err: OSError) -> None:
    log.warning("leftover sweep: cannot read %s: %s", path, err.strerror or err)


def _walk_beneath(home: str) -> Iterator[tuple[str, list[str], int]]:
    """(path, names of non-directories, directory descriptor) for every directory under ``home``.

    Each directory is opened from the home's descriptor with :func:`ftpsd.homefs.open_beneath`
    (no symlink followed in any position), so a directory swapped for a link while the sweep
    runs is skipped, never entered. One descriptor open at a time; breadth first.
    """
    try:
        homefd = os.open(home, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        _unreadable(home, err)
        return
    try:
        pending: collections.deque[tuple[str, ...]] = collections.deque([()])
        while pending:
            parts = pending.popleft()
            path = os.path.join(home, *parts)
            try:
                dirfd = open_beneath(homefd, parts, LIST_FLAGS)
            except OSError as err:
                _unreadable(path, err)
                continue
            try:
                names = []
                with os.scandir(dirfd) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append((*parts, entry.name))
                        else:
                            names.append(entry.name)
                yield path, names, dirfd
            except OSError as err:
                _unreadable(path, err)
            finally:
                os.close(dirfd)
    finally:
        os.close(homefd)


class LeftoverSweep:
    """Remove leftover partial uploads under ``homes`` older than ``started`` (a ``time.time()``).

    File times come from the kernel's coarse clock, at most a tick behind ``time.time()``; no
    upload can begin within a tick of ``started`` (taken before the configuration is even read).
    """

    def __init__(self, homes: Iterable[str], started: float) -> None:
        self.started = started
        self.removed = 0
        self._work = self._sweep(_outermost(homes))

    def step(self, seconds: float = STEP_SECONDS) -> bool:
        """Work for about ``seconds``; True once every home is done."""
        deadline = time.monotonic() + seconds
        for _ in self._work:
            if time.monotonic() >= deadline:
                break
        else:
            return True
        return False

    def run(self) -> None:
        """The whole sweep at a bounded pace (the body of a background thread)."""
        while not self.step():
            time.sleep(PAUSE_SECONDS)

    def _sweep(self, homes: list[str]) -> Iterator[None]:
        began = time.monotonic()
        touched = 0
        for home in homes:
            removed = 0
            for path, names, dirfd in _walk_beneath(home):
                for name in names:
                    if PART_NAME.fullmatch(name) and self._remove(path, name, dirfd):
                        removed += 1
                    yield
                yield
            if removed:
                touched += 1
                self.removed += removed
                log.info("leftover sweep: removed %d partial upload(s) under %s", removed, home)
        log.info(
            "leftover sweep done: removed %d partial upload(s) in %d of %d home(s) (%.1f s)",
            self.removed,
            touched,
            len(homes),
            time.monotonic() - began,
        )

    def _remove(self, path: str, name: str, dirfd: int) -> bool:
        fd = -1
        try:
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= self.started:
                return False
            # A live upload holds a lock on its file while it is open (ftpsd.homefs.HomeFS); only
            # an unlocked one is left over (its process died, and the kernel dropped the lock).
            fd = os.open(name, _PROBE_FLAGS, dir_fd=dirfd)
            if os.fstat(fd).st_ino != st.st_ino:
                return False  # replaced meanwhile: left for the next sweep
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # an upload in progress
            os.unlink(name, dir_fd=dirfd)
        except FileNotFoundError:
            return False
        except OSError as err:
            log.warning("leftover sweep: cannot remove %s: %s", os.path.join(path, name), err.strerror or err)
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        return True
