"""Releases (CONTRIBUTING.md, "Releases"): the changelog lints, galaxy.yml's version is the newest
release's, and `lab/release.sh VERSION` (`make release`) cuts a release in a copy of the checkout:
changelog.yaml + CHANGELOG.rst from the fragments, galaxy.yml and pyproject.toml bumped, the
tarball built with both changelogs in it; bad versions are refused before anything changes."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tomllib

import pytest
import yaml
from packaging.version import Version

from tests.paths import ROOT

BIN = pathlib.Path(sys.executable).parent
CHANGELOG = BIN / "antsibull-changelog"
VENV = BIN.parent


def version_problems(root: pathlib.Path) -> list[str]:
    """What is wrong with the release versions of the collection at ``root`` (empty: nothing)."""
    galaxy = str(yaml.safe_load((root / "galaxy.yml").read_text())["version"])
    kit = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    releases = yaml.safe_load((root / "changelogs" / "changelog.yaml").read_text()).get("releases") or {}
    problems = []
    if kit != galaxy:
        problems.append(f"pyproject.toml's version {kit} is not galaxy.yml's {galaxy}")
    if releases:
        newest = max(releases, key=lambda v: Version(str(v)))
        if Version(galaxy) != Version(str(newest)):
            problems.append(f"galaxy.yml's version {galaxy} is not the newest release {newest}")
    return problems


def run(argv: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(VENV=str(VENV), ANSIBLE_NOCOLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_changelog_lints() -> None:
    fragments = run([str(CHANGELOG), "lint"], ROOT)
    assert (fragments.returncode, fragments.stdout + fragments.stderr) == (0, "")
    changelog = run([str(CHANGELOG), "lint-changelog-yaml", "changelogs/changelog.yaml"], ROOT)
    assert (changelog.returncode, changelog.stdout + changelog.stderr) == (0, "")


def test_galaxy_version_is_the_newest_release() -> None:
    assert version_problems(ROOT) == []


def test_galaxy_metadata_is_complete() -> None:
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    # Galaxy takes license (SPDX) or license_file, never both.
    assert galaxy["license"] == ["MIT"]
    assert "license_file" not in galaxy
    for key in ("repository", "documentation", "homepage", "issues"):
        assert galaxy[key].startswith("https://"), key
    assert all(t.isalnum() and t.islower() and len(t) <= 64 for t in galaxy["tags"])
    assert 0 < len(galaxy["tags"]) <= 20
    assert set(galaxy["dependencies"]) == {"ansible.posix", "community.general"}


def test_a_summary_fragment_is_waiting_while_nothing_is_released() -> None:
    releases = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text()).get("releases")
    if releases:
        pytest.skip("released: the next release brings its own summary fragment")
    summaries = [
        p.name
        for p in (ROOT / "changelogs" / "fragments").glob("*.yml")
        if "release_summary" in (yaml.safe_load(p.read_text()) or {})
    ]
    assert summaries == ["0.1.0-release-summary.yml"]


@pytest.fixture
def checkout(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the checkout's files (tracked and new, not ignored ones): what a release sees."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    copy = tmp_path / "ftps-kit"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def snapshot(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in [root / "galaxy.yml", root / "pyproject.toml", *sorted((root / "changelogs").rglob("*"))]
        if p.is_file()
    }


def release(root: pathlib.Path, version: str) -> subprocess.CompletedProcess[str]:
    return run(["bash", "lab/release.sh", version], root)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("", "usage: make release VERSION=x.y.z"),
        ("1.0", "is not a semantic version"),
        ("v0.1.0", "is not a semantic version"),
        ("0.0.9", "is not newer than the last release 0.1.0"),
    ],
)
def test_release_refuses_a_bad_version_before_changing_anything(
    checkout: pathlib.Path, version: str, message: str
) -> None:
    before = snapshot(checkout)
    rst = (checkout / "CHANGELOG.rst").read_bytes()
    result = release(checkout, version)
    assert result.returncode != 0
    assert message in result.stderr
    assert snapshot(checkout) == before
    assert (checkout / "CHANGELOG.rst").read_bytes() == rst


def test_the_first_release_is_recorded() -> None:
    """0.1.0 is released: changelog.yaml and CHANGELOG.rst carry it, every section users read."""
    changes = yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert "0.1.0" in changes
    first = changes["0.1.0"]["changes"]
    assert first["release_summary"].startswith("First release of ``ftpskit.ftps``")
    assert {"minor_changes", "breaking_changes", "security_fixes", "bugfixes"} <= set(first)
    rst = (ROOT / "CHANGELOG.rst").read_text()
    assert "\nv0.1.0\n======\n" in rst
    assert "Breaking Changes / Porting Guide" in rst  # what docs/fleet.md section 8 tells users to read


def _fragments(root: pathlib.Path) -> list[str]:
    return sorted(p.name for p in (root / "changelogs" / "fragments").glob("*.y*ml"))


def test_release_cuts_the_next_release(checkout: pathlib.Path) -> None:
    releases = yaml.safe_load((checkout / "changelogs" / "changelog.yaml").read_text())["releases"]
    last = max(Version(str(v)) for v in releases)
    nxt = f"{last.major}.{last.minor + 1}.0"

    # The last release again is refused, and nothing changes.
    before = snapshot(checkout)
    again = release(checkout, str(last))
    assert again.returncode != 0
    assert f"is not newer than the last release {last}" in again.stderr
    assert snapshot(checkout) == before

    # The next release needs its summary fragment; with it, galaxy.yml and pyproject.toml follow.
    fragments = checkout / "changelogs" / "fragments"
    for summary in fragments.glob("*-release-summary.yml"):
        summary.unlink()  # a summary waiting in the checkout belongs to its own release
    (fragments / "1-change.yml").write_text("---\nbreaking_changes:\n  - ftps_server - a variable renamed.\n")
    missing = release(checkout, nxt)
    assert missing.returncode != 0
    assert "no fragment with release_summary:" in missing.stderr
    (fragments / f"{nxt}-release-summary.yml").write_text("---\nrelease_summary: The next release.\n")
    cut = release(checkout, nxt)
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]
    assert f"git tag -a v{nxt}" in cut.stdout
    assert _fragments(checkout) == []  # keep_fragments: false
    assert version_problems(checkout) == []
    assert yaml.safe_load((checkout / "galaxy.yml").read_text())["version"] == nxt
    rst = (checkout / "CHANGELOG.rst").read_text()
    assert rst.index(f"\nv{nxt}\n") < rst.index(f"\nv{last}\n")
    assert "a variable renamed" in rst
    with tarfile.open(checkout / "dist" / f"ftpskit-ftps-{nxt}.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"CHANGELOG.rst", "changelogs/changelog.yaml", "MANIFEST.json"} <= names
    assert "changelogs/.plugin-cache.yaml" not in names


def test_version_problems_sees_a_mismatch(checkout: pathlib.Path) -> None:
    changelog = checkout / "changelogs" / "changelog.yaml"
    data = yaml.safe_load(changelog.read_text())
    data["releases"] = {"0.1.0": {"release_date": "2026-12-06"}, "0.10.0": {"release_date": "2026-12-07"}}
    changelog.write_text(yaml.safe_dump(data))
    assert version_problems(checkout) == ["galaxy.yml's version 0.1.0 is not the newest release 0.10.0"]
    (checkout / "pyproject.toml").write_text(
        (checkout / "pyproject.toml").read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1)
    )
    assert "pyproject.toml's version 0.2.0 is not galaxy.yml's 0.1.0" in version_problems(checkout)
