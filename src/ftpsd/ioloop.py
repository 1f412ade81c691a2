"""The IO loop ftpsd serves on: pyftpdlib's, with a scheduler whose deadlines cannot be starved.

pyftpdlib's ``_Scheduler`` keeps its calls in a heap ordered by ``call.timeout``, and
``_CallLater.reset()`` (every command resets the session's idle timer, every data event the
data timer) changes that key *in place*. The heap invariant breaks: a call reset later stays
at the top, and ``poll()`` only looks at the top, so one chatty session (a NOOP every second)
holds back every deadline filed after it: idle, data, passive and login timeouts of the other
sessions of that worker never fire (issue 22 row 2).

:class:`DeadlineScheduler` files each call under the deadline it had *when it was filed*, a key
that never changes. ``reset()`` still only moves ``call.timeout`` (cheap, on the hot path) and
only ever later (``timer()`` is monotonic and a call's delay is fixed); when the filed key comes
due, a call whose ``timeout`` moved is filed again under its new deadline instead of run. Every
call therefore runs at the first ``poll()`` at or after its current deadline, whatever the other
calls do; a call is re-filed at most once per reset that moved it past its key (at most once per
delay period), so the work per poll stays proportional to the calls that came due.

The calls that come due in one ``poll()`` run in the order of their current deadlines (filing
order among equal ones), not of their keys: a session's idle timer, filed long ago and reset by
its last command, must not run before a passive listener's deadline that fell earlier, or a
client waiting for its data connection gets ``421`` where its ``425`` was due first.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import traceback

from pyftpdlib.ioloop import IOLoop, timer
from pyftpdlib.log import logger

# Cancelled entries are dropped in one pass when there are more of them than this and than half
# the heap (pyftpdlib's own rule).
_REHEAPIFY_AFTER = 512
_CURRENT_DEADLINE = operator.attrgetter("timeout")


class DeadlineScheduler:
    """A drop-in for pyftpdlib's ``_Scheduler`` (same methods, ``_tasks`` holds the heap)."""

    def __init__(self) -> None:
        self._tasks: list[tuple[float, int, object]] = []  # (deadline when filed, order, call)
        self._order = itertools.count()
        self._cancellations = 0

    def register(self, call) -> None:
        """File ``call`` under its current deadline (pyftpdlib calls this when a call is made)."""
        heapq.heappush(self._tasks, (call.timeout, next(self._order), call))

    def unregister(self, call) -> None:
        """Count a cancellation; the entry is dropped when it comes due or at the next reheapify."""
        self._cancellations += 1

    def poll(self) -> float | None:
        """Run every call whose current deadline has passed, earliest deadline first; seconds until
        the next key, or None."""
        now = timer()
        tasks = self._tasks
        due = []
        while tasks and tasks[0][0] <= now:
            call = heapq.heappop(tasks)[2]
            if call.cancelled:
                self._cancellations -= 1
                continue
            call._repush = False  # pyftpdlib's reset() flag; the key comparison replaces it
            if call.timeout > now:  # reset() moved it: file it again under its new deadline
                heapq.heappush(tasks, (call.timeout, next(self._order), call))
                continue
            due.append(call)
        if len(due) > 1:
            due.sort(key=_CURRENT_DEADLINE)  # stable: filing order among equal deadlines
        for call in due:
            if call.cancelled:  # cancelled by a call that ran before it in this turn
                continue
            try:
                call.call()
            except Exception:
                logger.error(traceback.format_exc())
        if self._cancellations > _REHEAPIFY_AFTER and self._cancellations > (len(tasks) >> 1):
            self.reheapify()
        if not self._tasks:
            return None
        return max(0.0, self._tasks[0][0] - now)

    def reheapify(self) -> None:
        """Drop cancelled calls and rebuild the heap."""
        self._cancellations = 0
        self._tasks = [entry for entry in self._tasks if not entry[2].cancelled]
        heapq.heapify(self._tasks)

    def close(self) -> None:
        for _key, _order, call in self._tasks:
            try:
                if not call.cancelled:
                    call.cancel()
            except Exception:
                logger.error(traceback.format_exc())
        del self._tasks[:]
        self._cancellations = 0


class FtpsdIOLoop(IOLoop):
    """pyftpdlib's best IO loop for the platform (epoll on Linux) with :class:`DeadlineScheduler`.

    Make one with ``FtpsdIOLoop()`` and pass it to every server and handler explicitly
    (``instance()`` would share pyftpdlib's singleton slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.sched = DeadlineScheduler()
