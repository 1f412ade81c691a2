"""The HTML report in a real browser (issue 13): headless Chromium renders a report built from
real certificates, and the tests assert on what a person sees there, at desktop width and on a
phone (390 px): every server's row visible, the expiring and the mismatched rows highlighted
(their computed background differs from a healthy row's), their days left and status visible,
no sideways scrolling on the phone. Screenshots are written to $FTPSKIT_SCREENSHOT_DIR (default:
the test's tmp directory).

The browser is Debian's chromium (lab/host-packages.txt); without it the tests skip, except in
CI (CI=true), where a missing browser fails them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from ansible_collections.ftpskit.ftps.plugins.module_utils.ftps_report import build_row, finish, render_html
from cryptography.hazmat.primitives import hashes

from tests.browser import LAYOUT_SCRIPT, ROWS_SCRIPT, Chromium, find_chromium
from tests.certs import make_ca, make_leaf

NOW = dt.datetime.now(dt.UTC)
WARN_DAYS = 30


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (lab/host-packages.txt lists it; run lab/setup-host.sh)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    """Three servers: healthy (80 days), expiring (5 days, served = deployed) and mismatched
    (90 days, the daemon still serves the previous certificate), plus one whose subject is
    markup: it must show as text."""
    ca = make_ca()

    def leaf(days: int, cn: str):
        return make_leaf(ca, cn=cn, sans=(f"DNS:{cn}",), not_after=NOW + dt.timedelta(days=days, hours=1))

    def fp(issued) -> str:
        return issued.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    def row(host: str, issued, served=None):
        served = fp(served or issued)
        status = {
            "running": True,
            "workers": [{"index": 0, "reported": True, "certificate": {"fingerprint": served}}],
        }
        probes = [
            {"item": {"port": port, "implicit": implicit}, "verified": True}
            | {"certificate": {"fingerprint_sha256": served}}
            for port, implicit in ((21, False), (990, True))
        ]
        return build_row(
            host, deployed_pem=issued.pem.decode(), status=status, probes=probes, warn_days=WARN_DAYS, now=NOW
        )

    rows = [
        row("healthy", leaf(80, "healthy.example.internal")),
        row("soon", leaf(5, "soon.example.internal")),
        row("stale", leaf(90, "stale.example.internal"), served=leaf(60, "stale.example.internal")),
        row("markup", leaf(70, "<img src=x onerror=alert(1)>")),
    ]
    path = tmp_path_factory.mktemp("report") / "ftps-report.html"
    path.write_text(render_html(finish(rows, WARN_DAYS, now=NOW)))
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("FTPSKIT_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.parametrize(("width", "mobile"), [(1280, False), (390, True)], ids=["desktop", "phone"])
def test_rows_visible_and_flagged_rows_highlighted(browser, report_page, tmp_path, width, mobile):
    page = browser.open(report_page, width=width, height=800, mobile=mobile)
    rows = {r["host"]: r for r in page.evaluate(ROWS_SCRIPT)}
    shot = page.screenshot(screenshot_dir(tmp_path) / f"report-{'phone' if mobile else 'desktop'}.png")
    assert shot.stat().st_size > 1000

    assert set(rows) == {"healthy", "soon", "stale", "markup"}
    assert all(r["visible"] for r in rows.values()), rows
    # Sorted by days left: the expiring server first, on screen too.
    assert sorted(rows, key=lambda h: rows[h]["top"]) == ["soon", "markup", "healthy", "stale"]

    healthy, soon, stale = rows["healthy"], rows["soon"], rows["stale"]
    assert healthy["status"] == "OK" and healthy["status_visible"]
    # Highlighted: the flagged rows' computed background is not the healthy row's, and differs
    # between "expiring" and "mismatch"; their status badge and days left are on screen.
    assert soon["background"] != healthy["background"]
    assert stale["background"] != healthy["background"]
    assert soon["background"] != stale["background"]
    assert soon["status"] == "EXPIRING" and soon["status_visible"]
    assert soon["days"] == "5" and soon["days_visible"]
    assert soon["days_font_px"] >= 12
    assert any("expires in 5 days" in p for p in soon["problems"]), soon["problems"]
    assert stale["status"] == "MISMATCH" and stale["status_visible"]
    assert any("differs from deployed" in p for p in stale["problems"]), stale["problems"]
    assert any("not the deployed certificate" in p for p in stale["problems"]), stale["problems"]
    # The mismatch is shown where it is: each served fingerprint marked as not the deployed one.
    assert stale["fp_differs"] == ["in memory", "explicit port 21", "implicit port 990"]
    assert all(bg != healthy["background"] for bg in stale["fp_background"]), stale["fp_background"]
    assert healthy["fp_differs"] == [] and soon["fp_differs"] == []
    # Nothing is cut off: every cell's content fits its box (long fingerprints wrap).
    assert all(r["overflowing"] == [] for r in rows.values()), {h: r["overflowing"] for h, r in rows.items()}
    # Markup in a certificate is text on the page, not an element.
    assert "DNS:<img src=x onerror=alert(1)>" in rows["markup"]["text"]
    assert page.evaluate("document.querySelectorAll('img, script').length") == 0

    layout = page.evaluate(LAYOUT_SCRIPT)
    assert layout["scroll_width"] <= layout["viewport"], layout  # no sideways scrolling
    # On a wide screen no column is crushed into a ribbon: a row fits on one screen.
    if not mobile:
        assert all(r["height"] < 800 for r in rows.values()), {h: r["height"] for h, r in rows.items()}
    # On a phone each server is a card with its own labels, the table header is off-screen.
    assert layout["header_visible"] is not mobile


def test_page_loads_nothing_from_anywhere(browser, report_page):
    """Self-contained: the rendered page made no request but for itself."""
    page = browser.open(report_page)
    urls = page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    assert urls == []
