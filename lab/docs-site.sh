#!/usr/bin/env bash
# `make docs-site`: the documentation site, built from the collection as it ships and checked in
# a real browser. The built tarball is installed into a scratch ansible_collections/ftpskit/ftps
# (as lab/sanity.sh does); antsibull-docs writes the pages of its modules, filters and roles
# (argument specs); lab/docs_site.py adds the guides (docs/*.md, MyST), the playbooks page and
# the index; `sphinx-build -W` fails on any warning. Then tests/docs_site_check.py serves the
# HTML on 127.0.0.1 and drives headless Chromium (Debian's chromium): every page renders, every
# internal link and anchor resolves, the search finds a module.
# The toolchain lives in a venv of its own (.venv-docs: lab/docs-site/requirements.txt, pinned,
# with the project venv's ansible-core); the output in .cache/docs-site/html.
#   lab/docs-site.sh            build and check
#   DOCS_SITE_CHECK=0 lab/docs-site.sh   build only
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
docs_venv=${DOCS_VENV:-$root/.venv-docs}
out=$root/.cache/docs-site
step=preflight
trap 'rc=$?; ((rc == 0)) || echo "docs-site: step '"'"'$step'"'"' failed (exit $rc)" >&2' EXIT

python=$("$venv/bin/python" -c 'import sys; print(sys.executable)')
core=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ansible-core"))')

step=venv
reqs=$root/lab/docs-site/requirements.txt
stamp="$docs_venv/.stamp-$core-$(sha256sum "$reqs" | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  rm -rf "$docs_venv"
  "$python" -m venv "$docs_venv"
  "$docs_venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$core" -r "$reqs"
  touch "$stamp"
fi

step=build
rm -rf "$out"
mkdir -p "$out/collections"
(cd "$root" && "$venv/bin/ansible-galaxy" collection build --force --output-path "$out" >/dev/null)
step=install
coll=$out/collections/ansible_collections/ftpskit/ftps
mkdir -p "$coll"
tar -xzf "$out"/ftpskit-ftps-*.tar.gz -C "$coll"

step=antsibull-docs
src=$out/src
mkdir -p "$src"
chmod 755 "$src"  # antsibull-docs wants its destination writable by its owner only
cp "$root/lab/docs-site/conf.py" "$src/conf.py"
env -u ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH="$out/collections" PATH="$docs_venv/bin:$PATH" \
  "$docs_venv/bin/antsibull-docs" collection --use-current --fail-on-error --dest-dir "$src" ftpskit.ftps

step=guides
"$docs_venv/bin/python" "$root/lab/docs_site.py" "$coll" "$src"

step="sphinx-build -W"
"$docs_venv/bin/sphinx-build" -W --keep-going -q -b html "$src" "$out/html"
echo "docs-site: built $out/html/index.html"

if [[ ${DOCS_SITE_CHECK:-1} != 0 ]]; then
  step="browser check (headless chromium)"
  (cd "$root" && "$venv/bin/python" -m tests.docs_site_check "$out/html")
fi
