"""The documentation site in a real browser: ``python -m tests.docs_site_check HTML_DIR [QUERY]``.

Serves HTML_DIR (the output of lab/docs-site.sh) on 127.0.0.1 only and drives headless Chromium
(tests/browser.py: Debian's chromium over the DevTools protocol, no download) through it:

- every page renders: a title, non-empty main content, no Sphinx error markers
  (``system-message``, ``problematic``) and no antsibull-docs "malformed documentation" page;
- every internal link resolves: its file exists and, with a ``#fragment``, the target page has an
  element with that id (read from the target's DOM in the browser, after its scripts ran);
- the search works: ``search.html?q=QUERY`` (default ``ftps_probe``) lists results, after the
  search's JavaScript ran, and one of them is the module's page (``ftps_probe_module.html``).

Every wait is bounded (the browser's replies, the search's polling, the page count); the server
and the browser stop whatever happens. Exit status 1 with one line per problem.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from tests.browser import BrowserError, Chromium

MAX_PAGES = 500  # far above the site's size: a runaway build fails instead of running on
SEARCH_SECONDS = 30.0

PAGE_SCRIPT = r"""
(() => {
  const main = document.querySelector('[role="main"]') || document.querySelector('main') || document.body;
  return {
    title: document.title.trim(),
    main: main ? main.innerText.trim().length : 0,
    errors: [...document.querySelectorAll('.system-message, .problematic')].map(
      (e) => e.innerText.trim().slice(0, 120)),
    malformed: /documentation for the \S+ plugin, \S+, was malformed/.test(document.body.innerText),
    links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
    ids: [...document.querySelectorAll('[id]')].map((e) => e.id).concat(
      [...document.querySelectorAll('a[name]')].map((a) => a.name)),
  };
})()
"""
SEARCH_SCRIPT = r"""
(() => {
  const summary = document.querySelector('.search-summary');
  return {
    done: !!summary && summary.innerText.trim() !== '',
    summary: summary ? summary.innerText.trim() : '',
    results: [...document.querySelectorAll('#search-results li a')].map((a) => a.href),
  };
})()
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(root: Path) -> http.server.ThreadingHTTPServer:
    """HTML_DIR on 127.0.0.1, an ephemeral port, in a daemon thread (shutdown() stops it)."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_pages(browser: Chromium, root: Path, base: str) -> list[str]:
    pages = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if not p.relative_to(root).parts[0].startswith("_")
    )
    if not pages:
        return [f"{root}: no HTML pages"]
    if len(pages) > MAX_PAGES:
        return [f"{root}: {len(pages)} pages, more than {MAX_PAGES}"]
    problems: list[str] = []
    ids: dict[str, set[str]] = {}
    links: dict[str, list[str]] = {}
    for rel in pages:
        page = browser.open_url(base + rel)
        try:
            seen = page.evaluate(PAGE_SCRIPT)
        finally:
            browser.close(page)
        if rel == "search.html":  # its content is the search form; checked by check_search
            seen["main"] = max(seen["main"], 1)
        if not seen["title"]:
            problems.append(f"{rel}: no title")
        if seen["main"] == 0:
            problems.append(f"{rel}: empty main content")
        problems += [f"{rel}: Sphinx error marker: {e}" for e in seen["errors"]]
        if seen["malformed"]:
            problems.append(f"{rel}: antsibull-docs says the documentation is malformed")
        ids[rel] = set(seen["ids"])
        links[rel] = seen["links"]
    for rel, hrefs in links.items():
        for href in dict.fromkeys(hrefs):  # a link in the toctree and the sidebar: once
            problems += _link_problems(rel, href, base, root, ids)
    return problems


def _link_problems(rel: str, href: str, base: str, root: Path, ids: dict[str, set[str]]) -> list[str]:
    if not href.startswith(base):
        return []  # outside the site (the repository, docs.ansible.com): not reachable offline
    url = urllib.parse.urlsplit(href)
    target = urllib.parse.unquote(url.path)[len(urllib.parse.urlsplit(base).path) :]
    if target == "" or target.endswith("/"):
        target += "index.html"
    if not (root / target).is_file():
        return [f"{rel}: link {href[len(base) :]}: no such file {target}"]
    fragment = urllib.parse.unquote(url.fragment)
    if fragment and target in ids and fragment not in ids[target]:
        return [f"{rel}: link {href[len(base) :]}: {target} has no anchor #{fragment}"]
    return []


def check_search(browser: Chromium, base: str, query: str) -> list[str]:
    page = browser.open_url(f"{base}search.html?q={urllib.parse.quote(query)}")
    try:
        deadline = time.monotonic() + SEARCH_SECONDS
        while True:
            seen = page.evaluate(SEARCH_SCRIPT)
            if seen["done"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        browser.close(page)
    if not seen["done"]:
        return [f"search {query!r}: no result summary within {SEARCH_SECONDS:.0f} s"]
    if not seen["results"]:
        return [f"search {query!r}: no results ({seen['summary']})"]
    wanted = f"{query}_module.html"
    if query.startswith("ftps_") and not any(wanted in r for r in seen["results"]):
        return [f"search {query!r}: {wanted} not among the results {seen['results'][:10]}"]
    return []


def check(root: Path, query: str = "ftps_probe") -> tuple[int, list[str]]:
    """(pages checked, problems) for the site in ``root``."""
    server = serve(root)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        with Chromium(timeout=30) as browser:
            problems = check_pages(browser, root, base)
            if (root / "search.html").is_file():
                problems += check_search(browser, base, query)
            else:
                problems.append("search.html: missing")
    finally:
        server.shutdown()
        server.server_close()
    pages = sum(1 for p in root.rglob("*.html") if not p.relative_to(root).parts[0].startswith("_"))
    return pages, problems


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m tests.docs_site_check HTML_DIR [QUERY]", file=sys.stderr)
        return 2
    root = Path(argv[0]).resolve()
    query = argv[1] if len(argv) == 2 else "ftps_probe"
    try:
        pages, problems = check(root, query)
    except BrowserError as err:
        print(f"docs-site check: the browser failed: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"docs-site check: {problem}", file=sys.stderr)
    if problems:
        print(f"docs-site check: {len(problems)} problem(s) in {pages} pages", file=sys.stderr)
        return 1
    print(
        f"docs-site check: {pages} pages render, their internal links and anchors resolve, "
        f"search {query!r} finds {query}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
