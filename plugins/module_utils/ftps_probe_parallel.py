# Copyright: ftps-kit contributors
# MIT License
"""Probe many FTPS listeners at once, with a bounded number in flight.

The proof at the end of site.yml and rotate.yml's health gate probe every listener of many
servers; one after the other that is ~0.6 s a listener (docs/fleet.md, section 11). Here a
thread pool of at most ``concurrency`` workers runs :func:`ftpskit_common.client.probe` per
target. Every target gets its own result, in the order the targets were given, whatever order
they finish in: a success is the probe's result; a failure is what the probe learned before it
failed plus ``error_kind`` and ``msg`` (a slow or failing target never hides the others'
results). Each socket of a probe has the probe's ``timeout``, so a target that never answers
holds one worker for a bounded time. Standard library only (the module runs on a client host).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.client import ProbeError, probe

MAX_CONCURRENCY = 256

# Keys of a target passed on to probe(); anything else in a target (e.g. a label) is kept as is.
TARGET_KEYS = ("host", "port", "implicit", "server_hostname", "pin", "round_trip")


def probe_many(
    targets: Sequence[dict[str, Any]],
    concurrency: int,
    *,
    probe_fn: Callable[..., dict[str, Any]] = probe,
    **common: Any,
) -> list[dict[str, Any]]:
    """Probe each target (``host``, ``port``, ``implicit``, ``server_hostname``, ``pin``) with
    ``common`` (``verify``, ``ca_file``, ``username``, ``password``, ``client_cert``,
    ``client_key``, ``round_trip``...).

    A target's own ``round_trip`` (not None) overrides the common one.
    Returns one dict per target, in the targets' order: ``target`` (the target as given), ``ok``,
    and the probe's fields; on failure also ``error_kind`` and ``msg``. At most ``concurrency``
    probes run at the same time (1 = one after the other).
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be from 1 to {MAX_CONCURRENCY}, not {concurrency}")
    if not targets:
        return []

    def one(target: dict[str, Any]) -> dict[str, Any]:
        args = {k: target[k] for k in TARGET_KEYS if target.get(k) is not None}
        try:
            return {"target": target, "ok": True, **probe_fn(**{**common, **args})}
        except ProbeError as exc:
            return {"target": target, "ok": False, **exc.result, "error_kind": exc.kind, "msg": exc.message}
        except Exception as exc:
            return {
                "target": target,
                "ok": False,
                "error_kind": "error",
                "msg": f"{type(exc).__name__}: {exc}",
            }

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(concurrency, len(targets))) as pool:
        return list(pool.map(one, targets))
