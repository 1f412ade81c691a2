"""The documentation site's browser check (tests/docs_site_check.py, run by `make docs-site`) on
small hand-made sites in headless Chromium: a healthy site passes, and each kind of breakage is
reported, exactly: an empty page, a Sphinx error marker, a link to a missing file, a link to a
missing anchor, a search that finds nothing, a site without a search page. The search page here
fills its results from a script after a delay, as Sphinx's does, so the check must read the DOM
after scripts ran.

The browser is Debian's chromium (lab/host-packages.txt); without it the tests skip, except in
CI (CI=true), where a missing browser fails them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import docs_site_check
from tests.browser import find_chromium


@pytest.fixture(autouse=True)
def _chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (lab/host-packages.txt lists it; run lab/setup-host.sh)")
        pytest.skip("chromium is not installed (apt-get install chromium)")


def _page(title: str, body: str) -> str:
    return f'<html><head><title>{title}</title></head><body><div role="main">{body}</div></body></html>'


def _search(results: list[str]) -> str:
    items = "".join(f'<li><a href="{r}">{r}</a></li>' for r in results)
    script = (
        "setTimeout(() => {"
        f"document.getElementById('search-results').innerHTML = '<ul>{items}</ul>';"
        f"document.querySelector('.search-summary').innerText = 'found {len(results)} pages';"
        "}, 300);"
    )
    return _page(
        "Search",
        f'<div id="search-results"></div><p class="search-summary"></p><script>{script}</script>',
    )


def _site(root: Path, **pages: str) -> Path:
    for name, html in pages.items():
        path = root / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)
    return root


def _healthy(root: Path) -> dict[str, str]:
    return {
        "index.html": _page("Home", '<p>Welcome</p><a href="mods/ftps_probe_module.html#synopsis">probe</a>'),
        "mods__ftps_probe_module.html": _page(
            "ftps_probe", '<h2 id="synopsis">Synopsis</h2><a href="../index.html">home</a>'
        ),
        "search.html": _search(["mods/ftps_probe_module.html"]),
    }


def test_a_healthy_site_passes(tmp_path: Path) -> None:
    pages, problems = docs_site_check.check(_site(tmp_path, **_healthy(tmp_path)))
    assert (pages, problems) == (3, [])


def test_each_breakage_is_reported(tmp_path: Path) -> None:
    site = _healthy(tmp_path)
    site["index.html"] = _page(
        "Home",
        '<p>Welcome</p><a href="mods/ftps_probe_module.html#options">missing anchor</a>'
        '<a href="mods/gone.html">missing page</a><span class="problematic">`x`_</span>',
    )
    site["empty.html"] = _page("Empty", "")
    del site["search.html"]
    pages, problems = docs_site_check.check(_site(tmp_path, **site))
    assert pages == 3
    assert sorted(problems) == sorted(
        [
            "empty.html: empty main content",
            "index.html: Sphinx error marker: `x`_",
            "index.html: link mods/ftps_probe_module.html#options: "
            "mods/ftps_probe_module.html has no anchor #options",
            "index.html: link mods/gone.html: no such file mods/gone.html",
            "search.html: missing",
        ]
    )


def test_a_search_without_the_module_fails(tmp_path: Path) -> None:
    site = _healthy(tmp_path)
    site["search.html"] = _search([])
    _, problems = docs_site_check.check(_site(tmp_path, **site))
    assert problems == ["search 'ftps_probe': no results (found 0 pages)"]
    site["search.html"] = _search(["index.html"])
    _, problems = docs_site_check.check(_site(tmp_path, **site))
    assert len(problems) == 1
    assert problems[0].startswith("search 'ftps_probe': ftps_probe_module.html not among the results")
