"""A headless Chromium for tests: open a local page, ask what is *visible*, take a screenshot.

Chrome DevTools Protocol over ``--remote-debugging-pipe`` (the browser reads commands on fd 3
and writes replies on fd 4, NUL-terminated JSON), standard library only: no WebDriver, no
browser download. Debian's ``chromium`` package is the browser (lab/host-packages.txt).

    with Chromium() as browser:
        page = browser.open(path, width=390)
        rows = page.evaluate("...")          # a JSON-able value computed in the page
        page.screenshot(png_path)            # the whole page, not only the viewport

Every read is bounded by a deadline; the browser is killed on exit whatever happened.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# Chromium as root in a container or CI: no sandbox, no GPU, no network of its own, no profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
MAX_MESSAGE = 64 * 1024 * 1024  # a full-page PNG in base64 stays far below


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Chromium:
    def __init__(self, binary: str | None = None, timeout: float = 30.0) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("chromium not found (apt-get install chromium)")
        self.timeout = timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="ftpskit-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds_3_and_4() -> None:  # in the child, before exec: the pipe ends chromium expects
            # Out of the way first: a pipe end may itself be fd 3 or 4, and dup2 onto the same
            # number would keep its close-on-exec flag.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)
            for fd in high:
                os.close(fd)

        self._proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Our own descriptors are non-inheritable (PEP 446): only 0-2 and the dup2'ed 3 and 4
            # reach chromium.
            close_fds=False,
            preexec_fn=fds_3_and_4,  # noqa: PLW1509 - single-threaded test process
            # Its own process group: chromium's helpers (renderer, GPU, crashpad) outlive a
            # killed parent and keep writing into the profile; __exit__ kills the whole group.
            start_new_session=True,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._kill_group()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._remove_profile()

    def _kill_group(self) -> None:
        """SIGKILL chromium and every helper it started, then wait (bounded) until none is left."""
        group = self._proc.pid  # start_new_session: the group's id is the parent's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self._proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(group, signal.SIGKILL)  # helpers are re-parented to init, which reaps them
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def _remove_profile(self) -> None:
        """Remove the profile; a helper still exiting may add a file under it, so retry (bounded)."""
        for _ in range(50):
            try:
                self._profile.cleanup()
                return
            except OSError:
                time.sleep(0.1)
        shutil.rmtree(self._profile.name, ignore_errors=True)

    # --- protocol ----------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)
                del self._events[:-200]  # bounded: only recent events are ever waited for

    def wait_event(self, method: str, session: str | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method and (session is None or event.get("sessionId") == session):
                    return self._events.pop(i)
            reply = self._read(deadline)
            if "method" in reply:
                self._events.append(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"chromium did not answer within {self.timeout} s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium exited (rc {self._proc.poll()})")
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE:
                raise BrowserError("reply from chromium too large")
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, path: str | Path, width: int = 1280, height: int = 800, mobile: bool = False) -> Page:
        """A new tab showing the local file ``path`` at this viewport, loaded."""
        return self.open_url(Path(path).resolve().as_uri(), width, height, mobile)

    def open_url(self, url: str, width: int = 1280, height: int = 800, mobile: bool = False) -> Page:
        """A new tab showing ``url`` (a local file or a server on loopback) at this viewport, loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        page.call("Page.enable")
        page.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", session)
        return page

    def close(self, page: Page) -> None:
        """Close a tab (a check of many pages keeps one open at a time)."""
        self.call("Target.closeTarget", {"targetId": page.target})


class Page:
    def __init__(self, browser: Chromium, session: str, target: str = "") -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.browser.call(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the whole page (its full height at the current width)."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call(
            "Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}
        )["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out


# What a person sees of each report row: computed from the rendered page, not the HTML source.
# A cell counts as visible when it has a box, is not hidden by CSS, and is the element actually
# hit at its centre after scrolling it into view (not covered, not off-screen).
ROWS_SCRIPT = r"""
(() => {
  const seen = (el) => {
    if (!el || !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) return false;
    el.scrollIntoView({block: 'center', inline: 'center'});
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !!hit && (hit === el || el.contains(hit));
  };
  const cell = (tr, label) => tr.querySelector(`td[data-label="${label}"]`);
  return [...document.querySelectorAll('tbody tr')].map((tr) => {
    const days = cell(tr, 'Days left'), badge = tr.querySelector('.badge');
    return {
      host: tr.dataset.host,
      visible: seen(tr.querySelector('td')),
      text: tr.innerText,
      background: getComputedStyle(cell(tr, 'Host')).backgroundColor,
      days: days.innerText.trim(),
      days_visible: seen(days),
      days_font_px: parseFloat(getComputedStyle(days).fontSize),
      status: badge.innerText.trim(),
      status_visible: seen(badge),
      status_background: getComputedStyle(badge).backgroundColor,
      problems: [...tr.querySelectorAll('ul.problems li')].filter(seen).map((li) => li.innerText),
      // fingerprints shown as differing from the deployed one, and what the row says of them
      fp_differs: [...tr.querySelectorAll('td.fp .differs')].filter(seen).map((d) => d.dataset.fp),
      fp_background: [...tr.querySelectorAll('td.fp .differs code')].map(
        (c) => getComputedStyle(c).backgroundColor),
      // cells whose content does not fit (clipped on a card, or cut off)
      overflowing: [...tr.querySelectorAll('td')].filter((td) => td.scrollWidth > td.clientWidth + 1)
        .map((td) => td.dataset.label),
      top: tr.getBoundingClientRect().top + window.scrollY,
      height: tr.getBoundingClientRect().height,
    };
  });
})()
"""
# Horizontal overflow: on a phone the page must not need sideways scrolling.
LAYOUT_SCRIPT = r"""
({scroll_width: document.documentElement.scrollWidth, viewport: window.innerWidth,
  header_visible: [...document.querySelectorAll('thead th')].some((th) => {
    const r = th.getBoundingClientRect();
    return r.right > 0 && r.left < window.innerWidth && r.width > 0;
  })})
"""
