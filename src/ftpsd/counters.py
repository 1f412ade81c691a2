"""What one worker counts for the operator's metrics (``ftpsd metrics``, docs/metrics.md).

Plain integers in the worker's own memory, one increment where each event is decided (a
transfer in ``log_transfer``, a login in ``_settle_login`` / ``_refuse_banned``, a refused
session in ``handle_accepted`` / ``handle``, a reload in ``Worker.reload``); the worker writes
them into its status file (``worker-<index>.json``, :mod:`ftpsd.status`) within a second of a
change, and ``ftpsd metrics`` exports them as counters labelled ``worker``. A replacement worker
starts from 0: a counter reset, which Prometheus' ``rate()``/``increase()`` handle.

No label carries client-chosen text (user names, paths, addresses): the label values are the
fixed vocabularies below, so the number of series is bounded and nothing personal is exported.
"""

from __future__ import annotations

DIRECTIONS = ("upload", "download")
TRANSFER_RESULTS = ("ok", "failed")
# ok: logged in; failed: wrong user or password; banned: refused (address banned, or out of
# login attempts for the ban window); refused: right password, the user's max_connections reached.
LOGIN_RESULTS = ("ok", "failed", "banned", "refused")
# Sessions refused before any command: banned address, max_connections, max_connections_per_ip,
# no slot in the shared limits table.
SESSION_REFUSALS = ("banned", "total", "per_ip", "untracked")
RELOAD_RESULTS = ("ok", "failed")
# Logins decided with a client certificate involved (ftpsd.clientcert.REFUSALS has the texts):
# ok, or why the certificate logged nobody in.
CLIENT_CERT_RESULTS = (
    "ok",
    "none",
    "untrusted",
    "revoked",
    "expired",
    "crl",
    "no_client_auth",
    "chain_too_long",
    "no_user",
    "ambiguous",
    "not_allowed",
    "mismatch",
    "data_mismatch",
)


def empty() -> dict[str, int]:
    """Every counter at 0 (all series exist from the start, so ``increase()`` sees the first)."""
    keys = [f"transfers/{d}/{r}" for d in DIRECTIONS for r in TRANSFER_RESULTS]
    keys += [f"bytes/{d}/{r}" for d in DIRECTIONS for r in TRANSFER_RESULTS]
    keys += [f"logins/{r}" for r in LOGIN_RESULTS]
    keys += ["bans"]
    keys += [f"sessions_refused/{r}" for r in SESSION_REFUSALS]
    keys += [f"reloads/{r}" for r in RELOAD_RESULTS]
    keys += [f"client_certs/{r}" for r in CLIENT_CERT_RESULTS]
    return dict.fromkeys(keys, 0)


class Counters:
    """One worker's counts; ``changes`` tells the worker's loop that its report is stale."""

    def __init__(self) -> None:
        self.values = empty()
        self.changes = 0

    def add(self, key: str, amount: int = 1) -> None:
        self.values[key] += amount  # KeyError on a key outside the vocabulary: a bug, loudly
        self.changes += 1

    def transfer(self, upload: bool, ok: bool, size: int) -> None:
        direction = "upload" if upload else "download"
        result = "ok" if ok else "failed"
        self.add(f"transfers/{direction}/{result}")
        self.add(f"bytes/{direction}/{result}", max(0, int(size)))
