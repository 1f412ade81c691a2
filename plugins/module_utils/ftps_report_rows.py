# Copyright: ftps-kit contributors
# MIT License
"""The report rows kept in the kit's store: ``<dir>/rows/<host>.json``, one file per server,
written atomically, so that the runs of a sliced report.yml (AWX slices, ``--limit``) each add
their servers and the last one to finish can build the whole fleet's report (docs/report.md)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any

# An inventory name as a file name: no path separator, no leading dot.
_HOST = re.compile(r"^[A-Za-z0-9_@:\[\]-][A-Za-z0-9_.@:\[\]-]{0,252}$")
MAX_ROWS = 100_000


class RowsError(Exception):
    """A row cannot be stored or read; the message says which and why."""


def row_path(directory: str, host: str) -> str:
    if not _HOST.match(host):
        raise RowsError(f"cannot store the report row of {host!r}: not usable as a file name")
    return os.path.join(directory, "rows", f"{host}.json")


def write_rows(directory: str, rows: list[dict[str, Any]], observed: str, mode: int = 0o644) -> list[str]:
    """Write each row (``{"host": ...}``) as ``{"host", "observed", "row"}``; returns the paths."""
    paths = [row_path(directory, str(row.get("host"))) for row in rows]  # every name checked first
    os.makedirs(os.path.join(directory, "rows"), mode=0o755, exist_ok=True)
    for row, path in zip(rows, paths, strict=True):
        data = json.dumps({"host": row["host"], "observed": observed, "row": row}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".row-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(data + "\n")
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return paths


def read_rows(directory: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every stored row, sorted by host, and a sentence per file that could not be read."""
    folder = os.path.join(directory, "rows")
    if not os.path.isdir(folder):
        return [], []
    rows: list[dict[str, Any]] = []
    unreadable: list[str] = []
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))
    if len(names) > MAX_ROWS:
        raise RowsError(f"{folder} holds {len(names)} rows, more than {MAX_ROWS}: not a report store")
    for name in names:
        path = os.path.join(folder, name)
        try:
            with open(path) as handle:
                entry = json.load(handle)
            if not isinstance(entry, dict) or entry.get("host") != name[: -len(".json")]:
                raise ValueError("not a report row of this host")
            rows.append(entry)
        except (OSError, ValueError) as err:
            unreadable.append(f"{path}: {err}")
    return rows, unreadable
