# Copyright: ftps-kit contributors
# MIT License
"""Filters for playbooks/report.yml; the logic is plugins/module_utils/ftps_report.py.

``inputs | ftpskit.ftps.ftps_report(warn_days)``: ``inputs`` is a list of per-server dicts with
``host``, ``address``, ``intended_sans`` (the SANs the certificate must carry exactly, or null:
not checked), ``deployed_pem`` (the deployed certificate's PEM text), ``status`` (the
parsed ``ftpsd status --json``, or null) and ``probes`` (``[{port, implicit, result}]`` with
ftps_probe results). Returns ``{generated, warn_days, hosts, flagged}``, rows sorted by days
left (docs/report.md).

``report | ftpskit.ftps.ftps_report_merge(stored, inventory, sliced)``: the fleet's report across
runs (slices): this run's rows and the other servers' rows from the store (ftps_report_rows),
aged; rows of servers no longer in ``inventory`` dropped unless ``sliced``.

``report | ftpskit.ftps.ftps_report_render(kind)``: ``kind`` is ``table``, ``json`` or ``html``.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report import (
    build_row,
    finish,
    merge_stored,
    render_html,
    render_json,
    render_table,
)
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import RENEW_BEFORE_DAYS


def ftps_report(inputs: list, warn_days: int = RENEW_BEFORE_DAYS) -> dict:
    try:
        warn_days = int(warn_days)
    except (TypeError, ValueError) as err:
        raise AnsibleFilterError(f"ftps_report: warn_days must be an integer, not {warn_days!r}") from err
    rows = [
        build_row(
            str(item["host"]),
            deployed_pem=item.get("deployed_pem"),
            status=item.get("status"),
            probes=item.get("probes"),
            warn_days=warn_days,
            address=str(item.get("address") or ""),
            intended_sans=item.get("intended_sans"),
        )
        for item in inputs
    ]
    return finish(rows, warn_days)


def ftps_report_merge(report: dict, stored: list, inventory: list, sliced: bool = False) -> dict:
    return merge_stored(report, list(stored or []), [str(h) for h in inventory or []], sliced=bool(sliced))


_RENDERERS = {"table": render_table, "json": render_json, "html": render_html}


def ftps_report_render(report: dict, kind: str = "table") -> str:
    if kind not in _RENDERERS:
        raise AnsibleFilterError(
            f"ftps_report_render: kind must be one of {sorted(_RENDERERS)}, not {kind!r}"
        )
    return _RENDERERS[kind](report)


class FilterModule:
    def filters(self) -> dict:
        return {
            "ftps_report": ftps_report,
            "ftps_report_merge": ftps_report_merge,
            "ftps_report_render": ftps_report_render,
        }
