"""The fleet benchmark's pure helpers (tests/bench/bench_fleet.py) and the two writers of
docs/benchmark.md keeping each other's part (tests/bench/report.py). No containers, no timing."""

from __future__ import annotations

import argparse

import pytest

from tests.bench.bench_fleet import (
    Run,
    SizeResult,
    changed_tasks,
    inventory,
    marginal,
    parse_recap,
    parse_sizes,
    profile_top,
    render_section,
    server_names,
    trend,
)
from tests.bench.report import FLEET_BEGIN, FLEET_END, fleet_section, with_fleet_section

OUTPUT = """\
PLAY [Deploy FTPS servers] *****************************************************

TASK [ftpskit.ftps.ftps_server : Create ftpsd's directories] *******************
Friday 04 December 2026  22:19:45 +0000 (0:00:01.234)       0:00:05.000 *******
ok: [ftpskit-bench-s01] => (item=/opt/ftpsd)
changed: [ftpskit-bench-s02] => (item=/var/log/ftpsd)
changed: [ftpskit-bench-s02] => (item=/srv/ftps)

TASK [Probe each server listener with a verified certificate] ******************
changed: [ftpskit-bench-client -> localhost]

PLAY RECAP *********************************************************************
ftpskit-bench-client : ok=32   changed=1    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0
ftpskit-bench-s01    : ok=96   changed=0    unreachable=0    failed=0    skipped=19   rescued=0    ignored=0
ftpskit-bench-s02    : ok=93   changed=2    unreachable=0    failed=1    skipped=19   rescued=0    ignored=0

Friday 04 December 2026  22:20:45 +0000 (0:00:00.100)       0:01:05.000 *******
===============================================================================
ftpskit.ftps.ftps_server : Copy this host's wheels from the controller --------- 8.40s
Probe each server listener with a verified certificate ------------------------ 12.05s
Gathering Facts --------------------------------------------------------------- 3.10s
"""


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("1,5,10,20", [1, 5, 10, 20]), (" 20 , 1,20,", [20, 1]), ("3", [3])],
)
def test_parse_sizes(text, sizes):
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "0", "1,x", "-1", "5,1000"])
def test_parse_sizes_refuses(text):
    with pytest.raises(ValueError, match=r"fleet size"):
        parse_sizes(text)


def test_parse_recap():
    recap = parse_recap(OUTPUT)
    assert set(recap) == {"ftpskit-bench-client", "ftpskit-bench-s01", "ftpskit-bench-s02"}
    assert recap["ftpskit-bench-s02"]["changed"] == 2
    assert recap["ftpskit-bench-s02"]["failed"] == 1
    assert recap["ftpskit-bench-s01"]["ok"] == 96


def test_parse_recap_ignores_lines_before_the_recap():
    assert parse_recap(OUTPUT.split("PLAY RECAP", maxsplit=1)[0]) == {}


def test_changed_tasks_names_each_task_once_per_host():
    assert changed_tasks(OUTPUT) == {
        "ftpskit.ftps.ftps_server : Create ftpsd's directories": ["ftpskit-bench-s02"],
        "Probe each server listener with a verified certificate": ["ftpskit-bench-client"],
    }


def test_profile_top_is_slowest_first():
    assert profile_top(OUTPUT, 2) == [
        ("Probe each server listener with a verified certificate", 12.05),
        ("ftpskit.ftps.ftps_server : Copy this host's wheels from the controller", 8.40),
    ]


@pytest.mark.parametrize(
    ("per_host", "word"),
    [
        ({1: 60.0, 5: 20.0, 20: 10.0}, "falling"),
        ({1: 60.0, 5: 10.0, 20: 10.5}, "flat"),
        ({1: 60.0, 5: 10.0, 20: 14.0}, "GROWING"),
        ({1: 60.0, 20: 10.0}, "falling"),
        ({5: 10.0}, "one size only"),
    ],
)
def test_trend(per_host, word):
    assert trend(per_host).startswith(word)


def test_marginal_separates_the_fixed_cost():
    # T(1) = 60 s, T(21) = 260 s: 10 s per added server
    assert marginal({1: 60.0, 21: 260.0 / 21}) == "marginal 10.0 s per added server (N=1 to N=21)"


def test_server_names_alternate_images_and_stay_on_the_bench_subnet():
    names = server_names(20)
    assert names[0] == ("ftpskit-bench-s01", "localhost/ftpskit-debian:12", "10.213.16.11")
    assert names[1][1] == "localhost/ftpskit-debian:13"
    assert names[-1] == ("ftpskit-bench-s20", "localhost/ftpskit-debian:13", "10.213.16.30")
    assert all(n.startswith("ftpskit-bench-") for n, _, _ in names)


def test_inventory_groups():
    inv = inventory([("s1", "10.213.16.11")], ("c", "10.213.16.250"), "/wh")
    children = inv["all"]["children"]
    assert children["ftps_servers"]["hosts"] == {"s1": {"ftps_address": "10.213.16.11"}}
    assert children["ftps_clients"]["hosts"] == {"c": {"ftps_address": "10.213.16.250"}}
    assert inv["all"]["vars"]["ftps_server_wheelhouse_dir"] == "/wh"


SECTION = f"{FLEET_BEGIN}\n## Fleet\n| 1 | 2 |\n{FLEET_END}\n"


def test_fleet_section_appended_then_replaced():
    doc = with_fleet_section("# ftpsd benchmark\n\ntext\n", SECTION)
    assert doc == "# ftpsd benchmark\n\ntext\n\n" + SECTION
    newer = SECTION.replace("| 1 | 2 |", "| 3 | 4 |")
    doc2 = with_fleet_section(doc, newer)
    assert doc2 == "# ftpsd benchmark\n\ntext\n\n" + newer
    assert fleet_section(doc2) == newer


def test_the_ftpsd_report_keeps_the_fleet_section():
    """python -m tests.bench rewrites the whole file and puts the fleet section back."""
    old = "# old ftpsd report\n\n" + SECTION + "\n## trailing\n"
    new_report = "# new ftpsd report\n"
    doc = with_fleet_section(new_report, fleet_section(old))
    assert doc.startswith("# new ftpsd report\n")
    assert fleet_section(doc) == SECTION
    assert "old ftpsd report" not in doc


def test_no_fleet_section_leaves_the_document():
    assert fleet_section("# report\n") == ""
    assert with_fleet_section("# report\n", "") == "# report\n"


def _run(label: str, wall: float, changed: int = 0) -> Run:
    return Run(
        label=label,
        wall=wall,
        cpu=wall / 2,
        rc=0,
        recap={"s01": {"changed": changed, "failed": 0}},
        load_before="1.00 1.00 1.00",
        load_after="2.00 1.00 1.00",
    )


def test_render_section_rows_trend_and_an_interrupted_run():
    args = argparse.Namespace(rotate_batched="25%", note="", timeout=60, max_minutes=1.0)
    small = SizeResult(servers=1, runs={k: _run(k, 60.0) for k in ("site-first", "site-rerun", "rotate")})
    big = SizeResult(
        servers=5, runs={"site-first": _run("site-first", 150.0)}, note="interrupted during site-rerun"
    )
    text = render_section(
        {
            "results": [small, big],
            "skipped": [(10, "interrupted")],
            "interrupted": "interrupted by a signal (exit 143) during N=5",
            "facts": {"cores": "2"},
            "forks": 5,
            "elapsed": 600.0,
            "args": args,
        },
        "python -m tests.bench.bench_fleet --sizes 1,5,10",
    )
    assert text.startswith(FLEET_BEGIN) and text.endswith(FLEET_END + "\n")
    assert "| 1 | 60.0 | 60.0 | 60.0 | 60.0 | 0 | 60.0 | 60.0 | — | — |" in text
    assert "| 5 | 150.0 | 30.0 | — | — | — |" in text
    assert "| 10 | not measured: interrupted |" in text
    assert "- site.yml first run: falling: 60.0 s/host at N=1 -> 30.0 s/host at N=5 (0.50x)" in text
    assert "**Incomplete**" in text
    assert "- N=1: changed=0 on all 1 hosts" in text
    assert "- N=5: no re-run (interrupted during site-rerun)" in text


def test_a_new_report_keeps_the_changes_measured_alone_and_the_fleet_section():
    from tests.bench.report import CHANGES_BEGIN, CHANGES_END, keep_sections

    changes = f"{CHANGES_BEGIN}\n## Changes measured alone\n\nheap: 0.12x\n{CHANGES_END}\n"
    old = "# old report\n\nold rows\n\n" + changes + "\n" + SECTION
    doc = keep_sections("# new report\n\nnew rows\n", old)
    assert doc.startswith("# new report\n\nnew rows\n")
    assert "old rows" not in doc
    assert fleet_section(doc) == SECTION
    assert fleet_section(doc, CHANGES_BEGIN, CHANGES_END) == changes
    assert doc.index(CHANGES_BEGIN) < doc.index(FLEET_BEGIN)
