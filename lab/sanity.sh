#!/usr/bin/env bash
# `make sanity`: `ansible-test sanity` for the ansible-core of the controller venv, on the
# collection as it ships: the built tarball installed into a scratch
# ansible_collections/ftpskit/ftps (ansible-test needs that layout, and a git repository to list
# the files), so what is tested is exactly what `ansible-galaxy collection build` packs.
# No container runtime: `--local` in a venv of its own (.venv-sanity) holding the same
# ansible-core plus the tools ansible-test pins for each test (its own requirements files); the
# project venv's linters keep their versions. ansible-test still makes a venv per test and
# bootstraps pip in it with get-pip.py from the internet, which this kind of machine cannot
# reach; its documented way out is a get-pip script in its cache, so ansible-test runs with HOME
# in .cache/sanity-home (nothing in the real ~/.ansible) where the cache holds a stand-in:
# ensurepip, then pip install of what ansible-test asked for, from the configured index.
# Ignores: tests/sanity/ignore-<core major.minor>.txt, each line with its reason.
#   lab/sanity.sh [ansible-test sanity options, e.g. --test validate-modules]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
sanity_venv=${SANITY_VENV:-$root/.venv-sanity}
step=preflight
trap 'rc=$?; ((rc == 0)) || echo "sanity: step '"'"'$step'"'"' failed (exit $rc)" >&2' EXIT

python=$("$venv/bin/python" -c 'import sys; print(sys.executable)')
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ansible-core"))')
reqs=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data", "requirements"))')

step=venv
stamp="$sanity_venv/.stamp-$core"
if [[ ! -f $stamp ]]; then
  rm -rf "$sanity_venv"
  "$python" -m venv "$sanity_venv"
  # The tools ansible-test pins for the tests a collection runs (changelog, ansible-doc, import,
  # pep8, pylint, runtime-metadata, validate-modules, yamllint), with ansible-core's own pins.
  files=()
  for t in ansible-doc changelog import pep8 pylint runtime-metadata validate-modules yamllint; do
    files+=(-r "$reqs/sanity.$t.txt")
  done
  "$sanity_venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$core" "${files[@]}"
  touch "$stamp"
fi

step=build
work=$(mktemp -d /tmp/ftpskit-sanity.XXXXXX)
trap 'rc=$?; rm -rf "$work"; ((rc == 0)) || echo "sanity: step '"'"'$step'"'"' failed (exit $rc)" >&2' EXIT
(cd "$root" && "$venv/bin/ansible-galaxy" collection build --force --output-path "$work" >/dev/null)
step=install
coll=$work/ansible_collections/ftpskit/ftps
mkdir -p "$coll"
tar -xzf "$work"/ftpskit-ftps-*.tar.gz -C "$coll"
rm -f "$coll/MANIFEST.json" "$coll/FILES.json"  # galaxy's metadata: ansible-test reads galaxy.yml
cp "$root/galaxy.yml" "$coll/galaxy.yml"
mkdir -p "$coll/tests/sanity"
cp "$root"/tests/sanity/ignore-*.txt "$coll/tests/sanity/" 2>/dev/null || true
(cd "$coll" && git init -q && git add -A && git -c user.email=sanity@localhost -c user.name=sanity commit -qm sanity)

step=bootstrap
home=$root/.cache/sanity-home
mkdir -p "$home/.ansible/test/cache"
# The pip version ansible-test bootstraps (python_requirements.get_venv_packages' default).
pip_pin=$(sed -nE "s/^[[:space:]]*pip='([0-9.]+)',.*/\1/p" "$reqs/../../_internal/python_requirements.py" | head -n1)
[[ -n $pip_pin ]] || { echo "sanity: no pip version in ansible-test's python_requirements.py" >&2; exit 1; }
cat >"$home/.ansible/test/cache/get_pip_${pip_pin//./_}.py" <<'PY'
"""Offline stand-in for get-pip.py (lab/sanity.sh): pip from ensurepip, then what was asked."""
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
PY

step="ansible-test sanity (ansible-core $core, Python $pyver)"
cd "$coll"
env -u ANSIBLE_CONFIG -u ANSIBLE_COLLECTIONS_PATH HOME="$home" PATH="$sanity_venv/bin:$PATH" \
  "$sanity_venv/bin/ansible-test" sanity --local --python "$pyver" --color no "$@"
