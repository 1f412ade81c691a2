#!/usr/bin/env bash
# `make release VERSION=x.y.z` (contributors, from a checkout): cut a release of ftpskit.ftps.
#   1. checks VERSION (semantic version, newer than every release in changelogs/changelog.yaml,
#      not older than galaxy.yml's) and that a fragment carries the `release_summary:`;
#   2. `antsibull-changelog lint` (every fragment valid) before anything changes;
#   3. `antsibull-changelog release --version VERSION`: the release in changelogs/changelog.yaml
#      from the fragments (which it then removes), CHANGELOG.rst regenerated (it lists the
#      plugins with the venv's ansible-doc), then `lint-changelog-yaml` on the result;
#   4. sets `version:` in galaxy.yml and pyproject.toml to VERSION;
#   5. builds the tarball dist/ftpskit-ftps-VERSION.tar.gz (`ansible-galaxy collection build`).
# It never commits, tags or publishes: it prints the commands for that. Every failure names its
# step; a failure before step 3 changes nothing.
#   lab/release.sh VERSION          (VENV=... chooses the venv; default .venv of the checkout)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
version=${1:-}
step=preflight
fail() { echo "release: step '$step' failed: $*" >&2; exit 1; }

[[ -n $version ]] || fail "usage: make release VERSION=x.y.z (or lab/release.sh x.y.z)"
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ $version =~ $semver ]] || fail "VERSION '$version' is not a semantic version (x.y.z or x.y.z-pre)"
changelog=$venv/bin/antsibull-changelog
[[ -x $changelog ]] || fail "$changelog missing: pip install -e '.[test]' (make venv)"
export PATH="$venv/bin:$PATH"   # antsibull-changelog runs ansible-doc
cd "$root"

# Newest released version (changelog.yaml) and galaxy.yml's version, compared as versions.
"$venv/bin/python" - "$version" <<'PY' || fail "version check (see above)"
import sys
from pathlib import Path

import yaml
from packaging.version import Version

wanted = Version(sys.argv[1])
releases = yaml.safe_load(Path("changelogs/changelog.yaml").read_text()).get("releases") or {}
galaxy = Version(str(yaml.safe_load(Path("galaxy.yml").read_text())["version"]))
newest = max((Version(str(v)) for v in releases), default=None)
if newest is not None and wanted <= newest:
    sys.exit(f"release: {wanted} is not newer than the last release {newest} (changelogs/changelog.yaml)")
if wanted < galaxy:
    sys.exit(f"release: {wanted} is older than galaxy.yml's version {galaxy}")
PY
grep -lqE '^release_summary:' changelogs/fragments/*.yml changelogs/fragments/*.yaml 2>/dev/null \
  || fail "no fragment with release_summary: in changelogs/fragments/ (write changelogs/fragments/$version-release-summary.yml)"

step="antsibull-changelog lint"
"$changelog" lint || fail "fix the fragments above"

step="antsibull-changelog release"
"$changelog" release --version "$version" || fail "antsibull-changelog release --version $version"
"$changelog" lint-changelog-yaml changelogs/changelog.yaml || fail "changelogs/changelog.yaml does not lint"
[[ -f CHANGELOG.rst ]] || fail "CHANGELOG.rst was not written"

step="version in galaxy.yml and pyproject.toml"
sed -i -E "s/^version:.*/version: $version/" galaxy.yml
sed -i -E "0,/^version = \".*\"/s//version = \"$version\"/" pyproject.toml
grep -qx "version: $version" galaxy.yml || fail "galaxy.yml not updated"
grep -qx "version = \"$version\"" pyproject.toml || fail "pyproject.toml not updated"

step="ansible-galaxy collection build"
mkdir -p dist
"$venv/bin/ansible-galaxy" collection build --force --output-path dist >/dev/null \
  || fail "ansible-galaxy collection build"
tarball=dist/ftpskit-ftps-$version.tar.gz
[[ -f $tarball ]] || fail "no $tarball"

echo "release: ftpskit.ftps $version: changelogs/changelog.yaml, CHANGELOG.rst, galaxy.yml, pyproject.toml; $tarball"
echo "release: review with 'git diff', then:"
echo "  git add -A changelogs CHANGELOG.rst galaxy.yml pyproject.toml && git commit -m 'Release $version'"
echo "  git tag -a v$version -m 'ftpskit.ftps $version'"
