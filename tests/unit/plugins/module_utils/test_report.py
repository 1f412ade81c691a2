"""The certificate report (plugins/module_utils/ftps_report.py): rows, sorting, thresholds,
mismatches, and the three renderings; hostile values render as text."""

from __future__ import annotations

import datetime as dt
import html.parser
import json

import pytest
from ansible_collections.ftpskit.ftps.plugins.filter.ftps_report import ftps_report, ftps_report_render
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report import (
    build_row,
    finish,
    render_html,
    render_json,
    render_table,
)
from cryptography.hazmat.primitives import hashes

from tests.certs import make_ca, make_leaf

NOW = dt.datetime.now(dt.UTC)
CA = make_ca()


def leaf(
    days: int, cn: str = "ftp1.example.internal", sans: tuple[str, ...] = ("DNS:ftp1.example.internal",)
):
    return make_leaf(CA, cn=cn, sans=sans, not_after=NOW + dt.timedelta(days=days, hours=1))


def fp(issued) -> str:
    return issued.cert.fingerprint(hashes.SHA256()).hex()


def status(*fps: str, running: bool = True) -> dict:
    """``ftpsd status --json`` as ftpsd.status.collect prints it (fingerprint: lowercase hex, no colons)."""
    return {
        "running": running,
        "workers": [
            {"index": i, "reported": True, "certificate": {"fingerprint": f}} for i, f in enumerate(fps)
        ],
    }


def probes(*fps: str | None) -> list[dict]:
    """Registered ftps_probe loop results: explicit first, then implicit."""
    out = []
    for implicit, f in zip((False, True), fps, strict=False):
        result = {"item": {"server": "x", "port": 990 if implicit else 21, "implicit": implicit}}
        if f is None:
            result.update(failed=False, error_kind="connect", msg="cannot connect: refused", verified=False)
        else:
            result.update(verified=True, certificate={"fingerprint_sha256": f})
        out.append(result)
    return out


def row(host: str, issued, warn_days: int = 30, **kw) -> dict:
    f = fp(issued)
    kw.setdefault("status", status(f, f))
    kw.setdefault("probes", probes(f, f))
    return build_row(host, deployed_pem=issued.pem.decode(), warn_days=warn_days, now=NOW, **kw)


def test_healthy_row_has_every_field():
    issued = leaf(90)
    r = row("ftp1", issued)
    assert r["status"] == "ok" and not r["flagged"] and r["problems"] == []
    assert r["subject"] == "CN=ftp1.example.internal,O=ftps-kit tests"
    assert r["sans"] == ["DNS:ftp1.example.internal"]
    assert r["issuer"] == "CN=ftps-kit test CA,O=ftps-kit tests"
    assert r["days_left"] == 90
    assert r["not_after"].endswith("Z")
    assert r["key_type"] == "EC secp256r1 (256 bits)"
    assert r["fingerprint_deployed"] == fp(issued)
    assert r["fingerprint_memory"] == [fp(issued)]
    assert [(w["kind"], w["port"], w["fingerprint"]) for w in r["wire"]] == [
        ("explicit", 21, fp(issued)),
        ("implicit", 990, fp(issued)),
    ]


@pytest.mark.parametrize(
    ("days", "warn_days", "flagged"),
    [(90, 30, False), (30, 30, False), (29, 30, True), (5, 30, True), (90, 91, True), (0, 1, True)],
)
def test_threshold(days, warn_days, flagged):
    r = row("ftp1", leaf(days), warn_days=warn_days)
    assert r["flagged"] is flagged
    assert r["status"] == ("expiring" if flagged else "ok")
    if flagged:
        assert f"expires in {days} days (threshold {warn_days} days)" in r["problems"]


def test_expired_certificate_says_expired():
    issued = make_leaf(CA, not_before=NOW - dt.timedelta(days=10), not_after=NOW - dt.timedelta(days=1))
    r = row("old", issued)
    assert r["status"] == "expiring" and r["days_left"] < 0
    assert any(p.startswith("expired") for p in r["problems"])


def test_memory_mismatch_reload_pending():
    new, old = leaf(90), leaf(10)
    r = row("ftp1", new, status=status(fp(old), fp(old)), probes=probes(fp(old), fp(old)))
    assert r["status"] == "mismatch" and r["flagged"]
    assert r["fingerprint_memory"] == [fp(old)]
    assert any("in memory" in p for p in r["problems"])
    assert any("explicit port 21 serves" in p for p in r["problems"])
    assert any("implicit port 990 serves" in p for p in r["problems"])


def test_one_listener_mismatch_is_enough():
    new, other = leaf(90), leaf(90)
    r = row("ftp1", new, probes=probes(fp(new), fp(other)))
    assert r["status"] == "mismatch"
    assert r["problems"] == [f"implicit port 990 serves {fp(other)}, not the deployed certificate"]


def test_fingerprint_spellings_agree():
    issued = leaf(90)
    lower = fp(issued).replace(":", "").lower()
    r = row("ftp1", issued, status=status(lower), probes=probes(lower, fp(issued)))
    assert r["status"] == "ok", r["problems"]


def test_without_status_memory_is_optional():
    r = row("ftp1", leaf(90), status=None)
    assert r["status"] == "ok" and r["fingerprint_memory"] is None
    assert "n/a" in render_table(finish([r], 30, NOW))


def test_daemon_not_running_and_probe_failure_are_errors():
    issued = leaf(90)
    r = row("ftp1", issued, status=status(running=False), probes=probes(None))
    assert r["status"] == "error" and r["flagged"]
    assert "in memory: daemon not running" in r["problems"]
    assert "explicit port 21: cannot connect: refused" in r["problems"]


def test_missing_or_broken_deployed_certificate():
    assert build_row("a", deployed_pem=None, now=NOW)["problems"] == ["no deployed certificate found"]
    broken = build_row("b", deployed_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert broken["status"] == "error"
    assert broken["problems"][0].startswith("deployed certificate unreadable")


def test_a_damaged_certificate_gets_a_human_reason_not_the_decoder_s():
    """A corrupted deployed certificate (the fault scenario's: base64 cut) is explained in words."""
    pem = leaf(90).pem.decode()
    body = pem.split("\n")
    damaged = "\n".join([*body[:2], body[2][:-3], *body[3:]])  # three characters lost from one line
    reason = build_row("c", deployed_pem=damaged, now=NOW)["problems"][0]
    assert reason.startswith("deployed certificate unreadable: PEM block 1 of 1 is damaged")
    assert "does not decode" in reason
    cut = build_row("d", deployed_pem=pem.split("-----END")[0], now=NOW)["problems"][0]
    prefix = "deployed certificate unreadable: PEM block 1 of 1"
    assert cut == f"{prefix} has no END CERTIFICATE line: the file is cut short"


def test_sorted_by_days_left_unknown_first():
    rows = [row("late", leaf(300)), row("soon", leaf(10)), row("mid", leaf(60)), row("mid2", leaf(60))]
    rows.append(build_row("broken", deployed_pem=None, now=NOW))
    report = finish(rows, 30, NOW)
    assert [r["host"] for r in report["hosts"]] == ["broken", "soon", "mid", "mid2", "late"]
    assert report["flagged"] == ["broken", "soon"]


HOSTILE_CN = "<script>alert(1)</script>"
HOSTILE_SAN = 'DNS:"><img src=x onerror=alert(2)>'


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def hostile_report():
    issued = make_leaf(CA, cn=HOSTILE_CN, sans=("DNS:ok.example",))
    r = row("evil<b>", issued)
    r["sans"].append(HOSTILE_SAN)  # the reader would not produce it; the renderer must still cope
    return finish([r, row("good", leaf(90))], 30, NOW)


def test_html_escapes_everything():
    page = render_html(hostile_report())
    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" not in parsed.tags
    text = "".join(parsed.text)
    # RFC 4514 backslash-escapes < and > in the subject; the page shows that text as it is.
    assert "CN=\\<script\\>alert(1)\\</script\\>,O=ftps-kit tests" in text
    assert HOSTILE_SAN in text and "evil<b>" in text


def test_html_is_self_contained_and_responsive():
    page = render_html(hostile_report())
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.urls == []
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "http://" not in page and "https://" not in page and "url(" not in page and "@import" not in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (max-width:760px)" in page


def test_html_marks_flagged_rows():
    page = render_html(finish([row("soon", leaf(3)), row("fine", leaf(90))], 30, NOW))
    assert '<tr class="expiring" data-host="soon">' in page
    assert '<tr class="ok" data-host="fine">' in page
    assert '<span class="badge expiring">EXPIRING</span>' in page


def test_json_round_trips():
    report = hostile_report()
    data = json.loads(render_json(report))
    assert data["hosts"][0]["subject"].startswith("CN=\\<script\\>")
    assert data["warn_days"] == 30 and data["flagged"] == []


def test_table_lists_rows_and_problems():
    text = render_table(finish([row("soon", leaf(3)), row("fine", leaf(90))], 30, NOW))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["host", "status", "days"]
    # Every field of the issue is in the table too, not only in JSON and HTML.
    assert lines[0].split()[5:8] == ["subject", "sans", "issuer"]
    assert "DNS:ftp1.example.internal" in lines[2] and "CN=ftps-kit test CA,O=ftps-kit tests" in lines[2]
    assert lines[2].startswith("soon") and "EXPIRING" in lines[2]
    assert lines[3].startswith("fine") and "OK" in lines[3]
    assert "soon: expires in 3 days (threshold 30 days)" in lines
    assert lines[-1].startswith("2 server(s), 1 flagged (threshold 30 days)")


def test_table_escapes_control_characters():
    issued = make_leaf(CA, cn="a\x1b[2Jb")
    text = render_table(finish([row("x", issued)], 30, NOW))
    assert "\x1b" not in text


def test_filters():
    issued = leaf(5)
    inputs = [
        {"host": "ftp1", "deployed_pem": issued.pem.decode(), "status": None, "probes": probes(fp(issued))}
    ]
    report = ftps_report(inputs, "30")
    assert report["flagged"] == ["ftp1"]
    assert ftps_report_render(report, "html").startswith("<!DOCTYPE html>")
    with pytest.raises(Exception, match="kind must be one of"):
        ftps_report_render(report, "pdf")


# --- SANs against the intended set (issue 20) -------------------------------------------------


def test_sans_exactly_intended_are_ok():
    issued = leaf(90, sans=("DNS:ftp1", "IP:10.213.0.12"))
    r = row("ftp1", issued, intended_sans=["ftp1", "10.213.0.12"])
    assert r["status"] == "ok" and r["problems"] == []
    assert r["intended_sans"] == ["ftp1", "10.213.0.12"]


@pytest.mark.parametrize(
    ("sans", "words"),
    [
        # the incident: another server's name and address, without its own address
        (
            ("DNS:ftp2", "DNS:ftp1", "IP:10.213.0.12"),
            ["lacks IP:10.213.0.13", "also names DNS:ftp1, IP:10.213.0.12"],
        ),
        (("DNS:ftp2",), ["lacks IP:10.213.0.13"]),
        (("DNS:ftp2", "IP:10.213.0.13", "DNS:extra.example"), ["also names DNS:extra.example"]),
    ],
)
def test_sans_other_than_intended_are_flagged_with_a_reason(sans, words):
    issued = leaf(90, cn="ftp2", sans=sans)
    r = row("ftp2", issued, intended_sans=["DNS:ftp2", "IP:10.213.0.13"])
    assert r["status"] == "mismatch" and r["flagged"]
    [problem] = r["problems"]
    assert problem.startswith("deployed certificate: its SANs are not the intended set for this host")
    for word in words:
        assert word in problem
    assert "DNS:ftp2, IP:10.213.0.13" in problem  # the intended set is named


def test_sans_not_checked_without_an_intended_set():
    issued = leaf(90, sans=("DNS:anything",))
    assert row("ftp1", issued, intended_sans=None)["problems"] == []


def test_a_served_certificate_other_than_the_deployed_one_is_checked_too():
    deployed, other = leaf(90, sans=("DNS:ftp1",)), leaf(90, sans=("DNS:ftp9",))
    served = probes(fp(deployed), fp(other))
    served[1]["certificate"]["sans"] = ["DNS:ftp9"]
    r = row("ftp1", deployed, probes=served, intended_sans=["DNS:ftp1"])
    assert any(
        p.startswith("certificate served on implicit port 990: its SANs") and "DNS:ftp9" in p
        for p in r["problems"]
    )
    assert not any(p.startswith("deployed certificate:") for p in r["problems"])


def test_filter_passes_the_intended_set():
    issued = leaf(90, sans=("DNS:ftp1", "DNS:ftp2"))
    report = ftps_report(
        [{"host": "ftp1", "deployed_pem": issued.pem.decode(), "intended_sans": ["DNS:ftp1"], "probes": []}]
    )
    assert report["flagged"] == ["ftp1"]
    assert "also names DNS:ftp2" in report["hosts"][0]["problems"][0]
    assert "also names DNS:ftp2" in ftps_report_render(report, "html")
