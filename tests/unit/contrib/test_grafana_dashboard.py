"""contrib/grafana/ftpsd.json: a dashboard Grafana loads, whose every query names only metrics
`ftpsd metrics` writes (taken from the exporter itself, not a list kept here), from a data
source the user picks. No network, no Grafana: the structure Grafana's import needs."""

from __future__ import annotations

import json
import re

from ftpsd.metrics import registry_for
from tests.paths import ROOT

DASHBOARD = ROOT / "contrib/grafana/ftpsd.json"
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
}


def _exported() -> set[str]:
    """Every series name ftpsd metrics can write (a running daemon with a chain, one worker)."""
    worker = {
        "index": 0,
        "reported": True,
        "sessions": 1,
        "certificate": {"fingerprint": "ab", "serial": "1F", "loaded_at": 1.0},
        "last_reload": {"time": 1.0, "result": "ok", "message": ""},
        "counters": {},
    }
    names = {
        "serial_decimal": "31",
        "subject_cn": "a",
        "issuer_cn": "b",
        "ou": [],
        "dns": ["a"],
        "ips": [],
        "emails": [],
    }
    deployed = {
        "fingerprint": "ab",
        "serial": "1F",
        "subject": "CN=a",
        "issuer": "CN=b",
        "not_before": 1.0,
        "not_after": 2.0,
        "chain_not_after": 3.0,
        "path": "/etc/ftpsd/cert.pem",
        "names": names,
    }
    info = {"running": True, "workers": [worker], "served_matches_deployed": True, "deployed": deployed}
    return {s.name for metric in registry_for(info, 30).collect() for s in metric.samples}


def _metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (labels, ranges, grouping and functions out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\w+", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    words = {m.group(1) for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr) if not m.group(2)}
    return words - _PROMQL_WORDS


def _load() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_structure() -> None:
    dash = _load()
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert dash["title"] and dash["uid"] and "id" not in dash  # importable anywhere
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert (
            set(panel["gridPos"]) == {"h", "w", "x", "y"}
            and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        )
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip()


def test_every_query_names_exported_metrics_only() -> None:
    exported = _exported()
    assert {"ftpsd_transfers_total", "ftpsd_logins_total", "x509_cert_not_after"} <= exported
    dash = _load()
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    used: set[str] = set()
    for expr in exprs:
        names = _metric_names(re.sub(r"^label_values\((\w+),.*\)$", r"\1", expr))
        assert names, expr
        assert names <= exported, (expr, names - exported)
        used |= names
        for fn, name in re.findall(r"\b(rate|increase)\(\s*(\w+)", expr):
            assert name.endswith("_total"), (fn, name)  # only counters are rated
    # the operator counters all have a panel
    assert {n for n in exported if n.startswith("ftpsd_") and n.endswith("_total")} <= used


def test_metric_name_extraction() -> None:
    got = _metric_names(
        'sum by (direction, result) (rate(ftpsd_transfers_total{instance=~"$x"}[$__rate_interval]))'
    )
    assert got == {"ftpsd_transfers_total"}
    assert _metric_names("min(a_b) - time() * 1000") == {"a_b"}
