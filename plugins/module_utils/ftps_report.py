# Copyright: ftps-kit contributors
# MIT License
"""The certificate report (playbooks/report.yml): one row per server, rendered three ways.

Inputs per server, all gathered read-only by the playbook:

* the deployed certificate, the PEM text of ``<ftps_pki_dir>/current/cert.pem`` (read on the
  server, parsed here with the one X.509 reader, :func:`ftps_client.parse_certificate`);
* ``ftpsd status --json`` (what each worker holds in memory), optional: ``None`` when the
  daemon has no status command or it could not run;
* the ftps_probe results from a client host, one per listener (explicit and implicit port):
  the one implementation of "what is served".

:func:`build_row` turns them into a flat dict, :func:`finish` sorts rows by days left and
:func:`render_table`, :func:`render_json` and :func:`render_html` render them. Pure Python
(standard library only), so the logic is tested without Ansible
(tests/unit/plugins/module_utils/test_report.py).
Every value that reaches the HTML page goes through :func:`html.escape`.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from typing import Any

from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.layout import RENEW_BEFORE_DAYS
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.sans import san_mismatch
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftpskit_common.x509 import (
    CertificateParseError,
    describe_key,
    normalize_fingerprint,
    parse_certificate,
    pem_to_der,
)

STATUS_OK = "ok"
STATUS_EXPIRING = "expiring"
STATUS_MISMATCH = "mismatch"
STATUS_ERROR = "error"
# Worst first: a row's status is the worst of its findings.
_SEVERITY = {STATUS_ERROR: 3, STATUS_MISMATCH: 2, STATUS_EXPIRING: 1, STATUS_OK: 0}


def _fp(value: Any) -> str:
    """A SHA-256 fingerprint in the one format (``ftpskit_common.x509.sha256_fingerprint``), or ''."""
    try:
        return normalize_fingerprint(str(value or ""))
    except ValueError:
        return ""


def _memory(status: Any) -> tuple[list[str], str]:
    """Fingerprints the daemon's workers hold in memory (from ``ftpsd status --json``) and why
    there are none ('' when there are)."""
    if not isinstance(status, dict):
        return [], "no ftpsd status"
    if not status.get("running"):
        return [], "daemon not running"
    fps = []
    for worker in status.get("workers") or []:
        if not worker.get("reported"):
            return [], f"worker {worker.get('index')} has not reported"
        fp = _fp((worker.get("certificate") or {}).get("fingerprint"))
        if fp and fp not in fps:
            fps.append(fp)
    return fps, "" if fps else "no worker reported a certificate"


def build_row(  # noqa: PLR0912 - one branch per optional source (deployed, in memory, each port)
    host: str,
    *,
    deployed_pem: str | None,
    status: dict | None = None,
    probes: list[dict] | None = None,
    warn_days: int = RENEW_BEFORE_DAYS,
    now: _dt.datetime | None = None,
    address: str = "",
    intended_sans: list[str] | None = None,
) -> dict[str, Any]:
    """One server's row. ``probes``: ``[{"port": 21, "implicit": False, "result": <ftps_probe
    result>}, ...]``, or the registered loop results of ftps_probe (``item`` holds port and
    implicit); a probe that did not run (no client host) is simply absent. ``intended_sans``: the
    SAN set this server's certificate must carry exactly (ftps_pki's ``ftps_pki_intended_sans``,
    read on the server); ``None`` = not checked (mode ``provided``)."""
    now = now or _dt.datetime.now(_dt.UTC)
    problems: list[tuple[str, str]] = []  # (status, sentence)
    cert: dict[str, Any] = {}
    if deployed_pem:
        try:
            ders = pem_to_der(deployed_pem)
            cert = parse_certificate(ders[0], now=now) if ders else {}
        except (CertificateParseError, ValueError, IndexError) as err:
            problems.append((STATUS_ERROR, f"deployed certificate unreadable: {err}"))
        if not cert and not problems:
            problems.append((STATUS_ERROR, "deployed certificate file holds no certificate"))
    else:
        problems.append((STATUS_ERROR, "no deployed certificate found"))
    deployed = _fp(cert.get("fingerprint_sha256"))

    memory, memory_why = _memory(status)
    if status is not None and memory_why:
        problems.append((STATUS_ERROR, f"in memory: {memory_why}"))
    for fp in memory:
        if deployed and fp != deployed:
            problems.append((STATUS_MISMATCH, f"in memory {fp} differs from deployed (reload pending?)"))

    # Every distinct certificate seen (deployed, then any other one served) against the intended set.
    named: dict[str, tuple[str, list]] = {}
    if cert:
        named[deployed] = ("deployed certificate", list(cert.get("sans") or []))
    wire: list[dict[str, Any]] = []
    for probe in probes or []:
        if "item" in probe:  # a registered loop result: the target is its item
            target, result = probe["item"], probe
        else:
            target, result = probe, probe.get("result") or {}
        served = _fp((result.get("certificate") or {}).get("fingerprint_sha256"))
        kind = "implicit" if target.get("implicit") else "explicit"
        # With failed_when: false Ansible resets `failed`; error_kind still names the failure.
        failed = result.get("failed") or result.get("error_kind") or result.get("unreachable")
        entry = {
            "kind": kind,
            "port": int(target.get("port") or 0),
            "fingerprint": served,
            "verified": bool(result.get("verified")),
            "error": str(result.get("msg") or "probe failed") if failed else "",
        }
        wire.append(entry)
        where = f"{kind} port {entry['port']}"
        if served and served not in named:
            named[served] = (
                f"certificate served on {where}",
                list((result.get("certificate") or {}).get("sans") or []),
            )
        if not served:
            problems.append((STATUS_ERROR, f"{where}: {entry['error'] or 'no certificate served'}"))
        elif deployed and served != deployed:
            problems.append((STATUS_MISMATCH, f"{where} serves {served}, not the deployed certificate"))
        elif entry["error"]:
            problems.append((STATUS_ERROR, f"{where}: {entry['error']}"))

    problems += _sans_problems(list(named.values()), intended_sans)

    days = cert.get("days_remaining")
    if days is not None and days < warn_days:
        what = "expired" if cert.get("expired") else f"expires in {days} days"
        problems.append((STATUS_EXPIRING, f"{what} (threshold {warn_days} days)"))

    status_name = max((p[0] for p in problems), key=_SEVERITY.__getitem__, default=STATUS_OK)
    return {
        "host": host,
        "address": address,
        "subject": cert.get("subject", ""),
        "sans": list(cert.get("sans") or []),
        "intended_sans": list(intended_sans) if intended_sans is not None else None,
        "issuer": cert.get("issuer", ""),
        "not_after": cert.get("not_after", ""),
        "days_left": days,
        "key_type": describe_key(cert["public_key"]) if cert.get("public_key") else "",
        "serial": cert.get("serial_hex", ""),
        "fingerprint_deployed": deployed,
        "fingerprint_memory": memory if status is not None else None,
        "wire": wire,
        "status": status_name,
        "problems": [p[1] for p in problems],
        "flagged": status_name != STATUS_OK,
    }


def _sans_problems(named: list[tuple[str, list]], intended: list[str] | None) -> list[tuple[str, str]]:
    """Each certificate (label, SANs) whose SANs are not exactly ``intended`` (None: not checked),
    with ftpskit_common.sans.san_mismatch's sentence."""
    if intended is None:
        return []
    out = []
    for label, sans in named:
        try:
            reason = san_mismatch(sans, intended)
        except ValueError as err:
            reason = f"the intended SANs cannot be compared: {err}"
        if reason:
            out.append((STATUS_MISMATCH, f"{label}: {reason}"))
    return out


def finish(rows: list[dict], warn_days: int, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The whole report: rows sorted by days left (unknown first: they need a look), then name."""
    now = now or _dt.datetime.now(_dt.UTC)
    ordered = sorted(
        rows,
        key=lambda r: (r["days_left"] is not None, r["days_left"] or 0, r["host"]),
    )
    return {
        "generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "warn_days": warn_days,
        "hosts": ordered,
        "flagged": [r["host"] for r in ordered if r["flagged"]],
    }


def _short(fp: str) -> str:
    """The first 11 hex digits: enough to tell two certificates apart at a glance (JSON and HTML have
    the whole fingerprint)."""
    return fp[:11] + "…" if fp else "-"


def _memory_text(row: dict) -> str:
    memory = row.get("fingerprint_memory")
    if memory is None:
        return "n/a"
    return ", ".join(_short(f) for f in memory) or "-"


def _wire_text(row: dict, kind: str) -> str:
    entries = [w for w in row.get("wire") or [] if w["kind"] == kind]
    if not entries:
        return "n/a"
    return ", ".join(_short(w["fingerprint"]) if w["fingerprint"] else "ERROR" for w in entries)


_COLUMNS = (
    "host",
    "status",
    "days",
    "not after",
    "subject",
    "sans",
    "issuer",
    "key",
    "deployed",
    "memory",
    "explicit",
    "implicit",
)


def _cells(row: dict) -> list[str]:
    return [
        row["host"],
        row["status"].upper(),
        "?" if row["days_left"] is None else str(row["days_left"]),
        row["not_after"] or "?",
        row["subject"] or "?",
        ",".join(row["sans"]) or "-",
        row["issuer"] or "?",
        row["key_type"] or "?",
        _short(row["fingerprint_deployed"]),
        _memory_text(row),
        _wire_text(row, "explicit"),
        _wire_text(row, "implicit"),
    ]


def render_table(report: dict) -> str:
    """Plain-text table for a terminal, then one line per problem."""
    rows = [list(_COLUMNS)] + [_cells(r) for r in report["hosts"]]
    # Control characters in a subject would move the cursor: print them escaped.
    rows = [[c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in report["hosts"]:
        if r.get("age_seconds") is not None:
            lines.append(
                f"{r['host']}: row of an earlier run, {_age_text(r['age_seconds'])} old ({r['observed']})"
            )
        for problem in r["problems"]:
            lines.append(f"{r['host']}: {problem}")
    if report.get("dropped"):
        lines.append("not in the inventory any more, dropped: " + ", ".join(report["dropped"]))
    lines.append(
        f"{len(report['hosts'])} server(s), {len(report['flagged'])} flagged"
        f" (threshold {report['warn_days']} days) at {report['generated']}"
    )
    return "\n".join(lines)


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


_CSS = """
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;padding:1rem;background:#f6f7f9;color:#1b1f24;line-height:1.4}
h1{font-size:1.3rem;margin:0 0 .25rem}
p.meta{margin:0 0 1rem;color:#57606a;font-size:.9rem}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}
th,td{padding:.45rem .6rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
td{overflow-wrap:break-word}
ul.problems,td.subject,td.sans,td.issuer{overflow-wrap:anywhere}
td.subject,td.sans,td.issuer{min-width:8rem}
td.host{min-width:11rem}
td.days{white-space:nowrap}
th{background:#eaeef2;font-weight:600}
td.days{font-size:1.05rem;font-weight:700}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.78rem;word-break:break-all}
td.fp{min-width:13rem;max-width:24rem}
td.fp div{margin:0 0 .2rem}
.fp-label{display:block;font-size:.72rem;font-weight:700;color:#57606a}
.same{color:#1a7f37}
.differs{color:#82071e;font-weight:700}
.differs code{background:#ffd1d1;padding:0 .15rem}
tr.ok td{background:#ffffff}
tr.expiring td{background:#fff4d6}
tr.mismatch td,tr.error td{background:#ffe1e1}
.badge{display:inline-block;padding:.1rem .45rem;border-radius:.6rem;font-size:.75rem;font-weight:700;
color:#fff;white-space:nowrap}
.badge.ok{background:#1a7f37}.badge.expiring{background:#9a6700}
.badge.mismatch,.badge.error{background:#cf222e}
ul.problems{margin:.25rem 0 0;padding-left:1.1rem;color:#82071e}
ul.sans{margin:0;padding-left:1.1rem}
@media (max-width:760px){
 table,thead,tbody,tr,th,td{display:block;width:auto}
 td.fp,td.subject,td.sans,td.issuer,td.host{min-width:0;max-width:none}
 td{overflow-wrap:anywhere}
 thead{position:absolute;left:-9999px}
 tr{margin:0 0 .8rem;border:1px solid #d0d7de;border-radius:.4rem;overflow:hidden}
 td{border:none;border-bottom:1px solid #eaeef2;padding:.35rem .6rem}
 td::before{content:attr(data-label);display:block;font-size:.7rem;font-weight:700;color:#57606a;
 text-transform:uppercase}
}
"""

_LABELS = (
    "Host",
    "Status",
    "Days left",
    "Not after",
    "Subject",
    "SANs",
    "Issuer",
    "Key",
    "Fingerprint (SHA-256)",
)


def render_html(report: dict) -> str:
    """One self-contained page: inline CSS, no script, no font or image from anywhere; on a
    narrow screen each server becomes a card. Every value is escaped. The fingerprint cell shows
    the deployed fingerprint in full and, for the one in memory and each listener, either "same"
    or the other fingerprint in full, marked ``differs``."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No request leaves the page, whatever a value might contain.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        "<title>FTPS certificate report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>FTPS certificate report</h1>",
        f'<p class="meta">{len(report["hosts"])} server(s), <strong id="flagged-count">'
        f"{len(report['flagged'])}</strong> flagged; threshold {e(str(report['warn_days']))} days;"
        f" generated {e(report['generated'])}</p>",
        "<table><thead><tr>" + "".join(f"<th>{e(x)}</th>" for x in _LABELS) + "</tr></thead><tbody>",
    ]
    for r in report["hosts"]:
        status = r["status"] if r["status"] in _SEVERITY else STATUS_ERROR
        problems = "".join(f"<li>{e(p)}</li>" for p in r["problems"])
        host_cell = e(r["host"]) + (f"<br><small>{e(r['address'])}</small>" if r.get("address") else "")
        if r.get("age_seconds") is not None:
            host_cell += (
                f'<br><small class="aged">row of an earlier run, {e(_age_text(r["age_seconds"]))} old'
                f" ({e(str(r['observed']))})</small>"
            )
        if problems:
            host_cell += f'<ul class="problems">{problems}</ul>'
        sans = "".join(f"<li>{e(s)}</li>" for s in r["sans"])
        cells = [
            ("Host", host_cell, "host"),
            ("Status", f'<span class="badge {status}">{e(status.upper())}</span>', ""),
            ("Days left", e("?" if r["days_left"] is None else str(r["days_left"])), "days"),
            # A narrow column may break the timestamp before its time, nowhere else.
            ("Not after", e(r["not_after"] or "?").replace("T", "<wbr>T", 1), "when"),
            ("Subject", e(r["subject"] or "?"), "subject"),
            ("SANs", f'<ul class="sans">{sans}</ul>' if sans else "-", "sans"),
            ("Issuer", e(r["issuer"] or "?"), "issuer"),
            ("Key", e(r["key_type"] or "?"), ""),
            ("Fingerprint (SHA-256)", _fingerprints_html(r), "fp"),
        ]
        out.append(
            f'<tr class="{status}" data-host="{e(r["host"])}">'
            + "".join(
                f'<td data-label="{e(label)}"' + (f' class="{cls}"' if cls else "") + f">{body}</td>"
                for label, body, cls in cells
            )
            + "</tr>"
        )
    out.append("</tbody></table>")
    if report.get("dropped"):
        out.append(
            f'<p class="meta">Not in the inventory any more, dropped: {e(", ".join(report["dropped"]))}</p>'
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _fingerprints_html(row: dict) -> str:
    e = html.escape
    deployed = row["fingerprint_deployed"]
    lines = [("deployed", "", f"<code>{e(deployed)}</code>" if deployed else "none")]

    def compare(label: str, fp: str, error: str = "") -> None:
        if not fp:
            lines.append((label, "differs", e(error or "none")))
        elif deployed and fp == deployed:
            lines.append((label, "same", "\u2713 same as deployed"))
        else:
            lines.append((label, "differs", f"\u2717 <code>{e(fp)}</code>"))

    memory = row.get("fingerprint_memory")
    if memory is None:
        lines.append(("in memory", "", "n/a (no ftpsd status)"))
    else:
        for fp in memory or [""]:
            compare("in memory", fp, "not reported")
    for kind in ("explicit", "implicit"):
        for w in [w for w in row.get("wire") or [] if w["kind"] == kind]:
            compare(
                f"{kind} port {w['port']}", w["fingerprint"], "error: " + (w["error"] or "no certificate")
            )
    return "".join(
        f'<div class="{cls}" data-fp="{e(label)}"><span class="fp-label">{e(label)}</span>{body}</div>'
        if cls
        else f'<div data-fp="{e(label)}"><span class="fp-label">{e(label)}</span>{body}</div>'
        for label, cls, body in lines
    )


# ---------------------------------------------------------------------------------------------
# One fleet report across runs (AWX slices, --limit): rows kept in the kit's store
# ---------------------------------------------------------------------------------------------
_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _parse_stamp(text: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(str(text), _STAMP).replace(tzinfo=_dt.UTC)
    except ValueError:
        return None


def _age_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


def _aged(row: dict, observed: str, warn_days: int, now: _dt.datetime) -> dict:
    """A stored row from an earlier run: its age, and days left counted again from not after."""
    row = {**row, "problems": list(row.get("problems") or [])}
    seen = _parse_stamp(observed)
    age = (now - seen).total_seconds() if seen else None
    row["observed"] = observed
    row["age_seconds"] = int(age) if age is not None else None
    not_after = _parse_stamp(row.get("not_after") or "")
    if not_after is not None:
        row["days_left"] = (not_after - now).days
        if row["days_left"] < warn_days and not any("threshold" in p for p in row["problems"]):
            what = "expired" if row["days_left"] < 0 else f"expires in {row['days_left']} days"
            row["problems"].append(f"{what} (threshold {warn_days} days)")
            if row.get("status") == STATUS_OK:
                row["status"] = STATUS_EXPIRING
    row["flagged"] = row.get("status") != STATUS_OK
    return row


def merge_stored(
    report: dict,
    stored: list[dict],
    inventory: list[str],
    *,
    sliced: bool,
    now: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The fleet's report from this run's ``report`` (:func:`finish`) and the rows in the store.

    ``stored``: ``[{"host", "observed", "row"}]`` as ``ftps_report_rows`` returns them (this
    run's rows included). A host this run reported keeps this run's row as it is; any other host
    gets its stored row with ``observed`` and ``age_seconds`` and its days left counted again.
    Rows of hosts not in ``inventory`` are dropped (listed in ``dropped``), except in an AWX
    slice (``sliced``), whose inventory is only part of the fleet: there they are kept, aged.
    Without stored rows of other hosts the result is ``report`` itself, as before issue 21.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    current = {r["host"] for r in report["hosts"]}
    known = set(inventory)
    extra: list[dict] = []
    dropped: list[str] = []
    for entry in sorted(stored, key=lambda e: str(e.get("host"))):
        host = str(entry.get("host"))
        if host in current or not isinstance(entry.get("row"), dict):
            continue
        if host not in known and not sliced:
            dropped.append(host)
            continue
        extra.append(_aged(entry["row"], str(entry.get("observed") or ""), int(report["warn_days"]), now))
    if not extra and not dropped:
        return report
    merged = finish(report["hosts"] + extra, int(report["warn_days"]), now)
    merged["generated"] = report["generated"]
    merged["dropped"] = dropped
    return merged
