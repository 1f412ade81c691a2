"""playbooks/report.yml on the real fleet (issue 13), after side_effect.yml made two findings:
report-deb13 serves a certificate that expires in 5 days, report-deb12 has a new certificate on
disk that the daemon has not loaded (no reload).

The tests run in this order, each building on the previous one's state:
1. the report flags both servers in all three forms (table, JSON, and the HTML page as headless
   Chromium shows it) and fails them (rc 2), changing nothing;
2. the metrics textfile and `ftpsd status` agree with it;
3. `systemctl reload ftpsd` on report-deb12 clears its mismatch (report, metric, status), the
   expiring server still fails the run;
4. a normal renewal of report-deb13 (renew.yml) clears the rest: `report.yml --check` exits 0
   with changed=0 everywhere;
5. two runs limited to different servers (as AWX slices are) leave one report of both servers in
   the store, the earlier run's row shown with its age (issue 21).

Reports and screenshots go to $FTPSKIT_SCREENSHOT_DIR (default: Molecule's ephemeral directory,
report/), one directory per step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
from conftest import CLIENTS, get_host

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "molecule" / "default" / "tests")]
from test_observability import STATUS, metric, refresh_metrics  # noqa: E402

from tests.browser import LAYOUT_SCRIPT, ROWS_SCRIPT, Chromium, find_chromium  # noqa: E402

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "report")
EXPIRING, STALE = f"{SCENARIO}-deb13", f"{SCENARIO}-deb12"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."))
OUT = Path(os.environ.get("FTPSKIT_SCREENSHOT_DIR") or EPHEMERAL / "report")
WHITE = "rgb(255, 255, 255)"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class Run:
    rc: int
    output: str
    recap: dict[str, dict[str, int]]
    table: str
    data: dict
    html: Path

    def row(self, host: str) -> dict:
        return next(r for r in self.data["hosts"] if r["host"] == host)


def ansible_playbook(playbook: Path, *extra: str) -> subprocess.CompletedProcess:
    """ansible-playbook with Molecule's inventory and environment (the verifier inherits it)."""
    binary = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"
    return subprocess.run(
        [binary, "-i", str(EPHEMERAL / "inventory"), str(playbook), *extra],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def report(step: str, *extra: str, into: str = "") -> Run:
    """report.yml into a fresh directory OUT/step, or into OUT/into as it is (several runs)."""
    out = OUT / (into or step)
    if not into:
        shutil.rmtree(out, ignore_errors=True)
    done = ansible_playbook(ROOT / "playbooks" / "report.yml", "-e", f"ftps_fleet_report_dir={out}", *extra)
    output = done.stdout + done.stderr
    (OUT / f"{step}.log").write_text(output)
    fields = ("ok", "changed", "unreachable", "failed")
    recap = {
        m.group(1): dict(zip(fields, map(int, m.groups()[1:]), strict=True))
        for m in RECAP.finditer(done.stdout)
    }
    assert (out / "ftps-report.json").exists(), output[-3000:]
    return Run(
        rc=done.returncode,
        output=output,
        recap=recap,
        table=(out / "ftps-report.txt").read_text(),
        data=json.loads((out / "ftps-report.json").read_text()),
        html=out / "ftps-report.html",
    )


@pytest.fixture(scope="module")
def browser():
    OUT.mkdir(parents=True, exist_ok=True)
    if find_chromium() is None:
        pytest.fail("chromium is not installed on the controller (lab/host-packages.txt lists it)")
    with Chromium() as chromium:
        yield chromium


def page_rows(browser: Chromium, run: Run, name: str) -> dict[str, dict]:
    """What headless Chromium shows of the report page, at desktop width and on a phone (both
    screenshots saved); returns the desktop rows, after checking the phone ones say the same."""
    seen = {}
    for label, width, mobile in (("desktop", 1280, False), ("phone", 390, True)):
        page = browser.open(run.html, width=width, mobile=mobile)
        rows = {r["host"]: r for r in page.evaluate(ROWS_SCRIPT)}
        assert page.screenshot(OUT / f"{name}-{label}.png").stat().st_size > 1000
        layout = page.evaluate(LAYOUT_SCRIPT)
        assert layout["scroll_width"] <= layout["viewport"], (label, layout)
        assert all(r["visible"] and r["status_visible"] and r["days_visible"] for r in rows.values()), rows
        assert all(r["overflowing"] == [] for r in rows.values()), (label, rows)
        seen[label] = rows
    assert {h: r["status"] for h, r in seen["phone"].items()} == {
        h: r["status"] for h, r in seen["desktop"].items()
    }
    return seen["desktop"]


def test_report_flags_expiring_and_stale_servers_in_every_form(browser) -> None:
    run = report("findings")
    # Failed hosts: ansible-playbook exits 2; both servers failed; nothing changed anywhere.
    assert run.rc == 2, run.output[-3000:]
    assert run.recap[EXPIRING]["failed"] == 1 and run.recap[STALE]["failed"] == 1, run.recap
    assert all(r["changed"] == 0 for r in run.recap.values()), run.recap

    # JSON: sorted by days left, the expiring server first.
    assert [r["host"] for r in run.data["hosts"]] == [EXPIRING, STALE]
    assert sorted(run.data["flagged"]) == [STALE, EXPIRING]
    soon, stale = run.row(EXPIRING), run.row(STALE)
    assert soon["status"] == "expiring" and 0 < soon["days_left"] <= 5, soon
    assert soon["fingerprint_memory"] == [soon["fingerprint_deployed"]]
    assert [w["fingerprint"] for w in soon["wire"]] == [soon["fingerprint_deployed"]] * 2
    assert [(w["kind"], w["verified"]) for w in soon["wire"]] == [("explicit", True), ("implicit", True)]
    assert soon["subject"] and soon["issuer"] and soon["key_type"] and soon["sans"]
    assert stale["status"] == "mismatch" and stale["days_left"] > 80, stale
    assert stale["fingerprint_memory"] != [stale["fingerprint_deployed"]]
    assert {w["fingerprint"] for w in stale["wire"]} == set(stale["fingerprint_memory"])
    assert any("differs from deployed" in p for p in stale["problems"]), stale["problems"]
    assert any("explicit port 21 serves" in p for p in stale["problems"]), stale["problems"]
    assert any("implicit port 990 serves" in p for p in stale["problems"]), stale["problems"]

    # Terminal table (also printed by the run).
    lines = run.table.splitlines()
    assert lines[2].split()[:3] == [EXPIRING, "EXPIRING", str(soon["days_left"])], run.table
    assert lines[3].split()[:2] == [STALE, "MISMATCH"], run.table
    assert f"{EXPIRING}: expires in {soon['days_left']} days (threshold 30 days)" in lines
    assert f"{EXPIRING}: expires in {soon['days_left']} days" in run.output

    # HTML, as a person sees it.
    rows = page_rows(browser, run, "findings")
    assert rows[EXPIRING]["status"] == "EXPIRING" and rows[EXPIRING]["days"] == str(soon["days_left"])
    assert rows[EXPIRING]["background"] not in (WHITE, rows[STALE]["background"])
    assert rows[STALE]["status"] == "MISMATCH" and rows[STALE]["background"] != WHITE
    assert rows[STALE]["fp_differs"] == ["in memory", "explicit port 21", "implicit port 990"]
    assert rows[EXPIRING]["fp_differs"] == []


def test_metrics_and_status_agree_with_the_report() -> None:
    now = time.time()
    expiring, stale = get_host(EXPIRING), get_host(STALE)
    text = refresh_metrics(expiring)
    (not_after,) = metric(text, "ftpsd_cert_not_after_timestamp_seconds")
    (renewal_due,) = metric(text, "ftpsd_cert_renewal_due_timestamp_seconds")
    assert now < not_after < now + 6 * 86400
    assert renewal_due <= now  # past due: renew_before (30 days) > the 5 days left
    assert metric(text, "ftpsd_cert_served_matches_deployed") == [1.0]

    assert metric(refresh_metrics(stale), "ftpsd_cert_served_matches_deployed") == [0.0]
    status = stale.run(STATUS)
    assert status.rc != 0 and "served matches deployed: no" in status.stdout, status.stdout
    assert '"served_matches_deployed": false' in stale.run(f"{STATUS} --json").stdout

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed on the controller (lab/host-packages.txt has prometheus)")
    for host in (expiring, stale):
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=refresh_metrics(host),
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_reload_clears_the_mismatch(browser) -> None:
    stale: testinfra.host.Host = get_host(STALE)
    stale.check_output("systemctl reload ftpsd")
    status = stale.run(STATUS)
    assert status.rc == 0 and "served matches deployed: yes" in status.stdout, status.stdout
    assert metric(refresh_metrics(stale), "ftpsd_cert_served_matches_deployed") == [1.0]

    run = report("reloaded", "--check")
    assert run.rc == 2, run.output[-3000:]
    assert run.recap[STALE]["failed"] == 0 and run.recap[EXPIRING]["failed"] == 1, run.recap
    assert run.row(STALE)["status"] == "ok" and run.row(STALE)["problems"] == []
    assert run.data["flagged"] == [EXPIRING]
    rows = page_rows(browser, run, "reloaded")
    assert rows[STALE]["status"] == "OK" and rows[STALE]["fp_differs"] == []
    # The expiring row stands out from the healthy one.
    assert rows[EXPIRING]["background"] != rows[STALE]["background"]


def test_renewal_clears_the_rest_and_check_mode_changes_nothing(browser) -> None:
    renewed = ansible_playbook(Path(__file__).resolve().parents[1] / "renew.yml")
    assert renewed.returncode == 0, (renewed.stdout + renewed.stderr)[-3000:]

    run = report("healthy", "--check")
    assert run.rc == 0, run.output[-3000:]
    assert run.recap and all(r["changed"] == 0 and r["failed"] == 0 for r in run.recap.values()), run.recap
    assert run.data["flagged"] == []
    assert all(r["status"] == "ok" and r["days_left"] >= 80 for r in run.data["hosts"]), run.data
    rows = page_rows(browser, run, "healthy")
    assert {r["status"] for r in rows.values()} == {"OK"}
    assert {r["background"] for r in rows.values()} == {WHITE}


def test_limited_runs_add_up_to_one_fleet_report(browser) -> None:
    """Slices: each run reads part of the fleet, writes its rows to the store and the report from
    every row. The first run has no client (no wire probe), as a slice without it; the second
    has the other server and the client. The last report holds both servers."""
    shutil.rmtree(OUT / "slices", ignore_errors=True)
    first = report("slice-1", "--limit", STALE, into="slices")
    assert first.rc == 0, first.output[-3000:]
    assert [r["host"] for r in first.data["hosts"]] == [STALE]
    assert first.row(STALE)["wire"] == []  # no client in this run
    second = report("slice-2", "--limit", f"{EXPIRING},{CLIENTS[0]}", into="slices")
    assert second.rc == 0, second.output[-3000:]
    for run in (first, second):
        assert run.recap and all(r["changed"] == 0 and r["failed"] == 0 for r in run.recap.values()), (
            run.recap
        )
    assert set(second.recap) == {EXPIRING, CLIENTS[0]}
    assert sorted(r["host"] for r in second.data["hosts"]) == sorted([STALE, EXPIRING])
    assert second.data["flagged"] == [] and second.data["dropped"] == []
    # this run's row as report.yml builds it; the first run's with the time it was read and its age
    assert "observed" not in second.row(EXPIRING) and len(second.row(EXPIRING)["wire"]) == 2
    assert second.row(STALE)["observed"] == first.data["generated"]
    assert second.row(STALE)["age_seconds"] >= 0
    assert second.row(STALE)["fingerprint_deployed"] == first.row(STALE)["fingerprint_deployed"]
    assert f"{STALE}: row of an earlier run" in second.table
    rows = page_rows(browser, second, "slices")
    assert set(rows) == {STALE, EXPIRING}
    store = sorted(p.name for p in (OUT / "slices" / "rows").iterdir())
    assert store == sorted([f"{STALE}.json", f"{EXPIRING}.json"])

    # A stored row of a server that is not in the inventory: kept (aged) by an AWX slice, whose
    # inventory is only part of the fleet; dropped by a run that is no slice.
    gone = json.loads((OUT / "slices" / "rows" / f"{STALE}.json").read_text())
    gone["host"] = gone["row"]["host"] = f"{SCENARIO}-gone"
    (OUT / "slices" / "rows" / f"{SCENARIO}-gone.json").write_text(json.dumps(gone))
    awx_slice = {  # as AWX sets them for a job of the workflow it made from a sliced template
        "awx_job_launch_type": "workflow",
        "awx_job_template_name": "FTPS report",
        "awx_workflow_job_name": "FTPS report",
    }
    sliced = report("slice-3", "--limit", STALE, "-e", json.dumps(awx_slice), into="slices")
    assert sliced.rc == 0, sliced.output[-3000:]
    assert sorted(r["host"] for r in sliced.data["hosts"]) == sorted([STALE, EXPIRING, f"{SCENARIO}-gone"])
    assert sliced.data["dropped"] == []
    whole = report("slice-4", "--limit", STALE, into="slices")
    assert whole.rc == 0, whole.output[-3000:]
    assert sorted(r["host"] for r in whole.data["hosts"]) == sorted([STALE, EXPIRING])
    assert whole.data["dropped"] == [f"{SCENARIO}-gone"]
    for run in (sliced, whole):
        assert run.recap and all(r["changed"] == 0 and r["failed"] == 0 for r in run.recap.values()), (
            run.recap
        )
