#!/usr/bin/env bash
# `make test-installed` (part of `make test`): the kit as a user consumes it. Builds the
# collection tarball, then in a directory outside the repository writes what a user would --
# a requirements.yml naming the tarball, an inventory (the lab's hosts and settings), a playbook
# that imports ftpskit.ftps.site -- installs the collection into an empty collections path there
# and runs the playbook against the demo lab (lab/lab.sh up). The repository is not on any
# Ansible search path: no ansible.cfg of ours, no roles path, no collection link. site.yml's last
# play is the proof (every server verified from the client, a checksummed round trip); a second
# run must change nothing. Also checks `ansible-doc` for every module of the installed copy.
#   lab/installed-form.sh [WORKDIR]     (default: a new temporary directory, removed on success)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
step=preflight
fail() { echo "installed-form: step '$step' failed: $*" >&2; exit 1; }
trap 'rc=$?; ((rc == 0)) || echo "installed-form: step '"'"'$step'"'"' failed (exit $rc); work dir $work kept" >&2' EXIT
work=${1:-$(mktemp -d /tmp/ftpskit-user.XXXXXX)}
mkdir -p "$work"
[[ $work != "$root"* ]] || fail "the work directory must be outside the repository"

step=build
version=$(sed -nE 's/^version:[[:space:]]*"?([^"]+)"?/\1/p' "$root/galaxy.yml")
tarball=$work/ftpskit-ftps-$version.tar.gz
rm -f "$tarball"
(cd "$root" && "$venv/bin/ansible-galaxy" collection build --force --output-path "$work" >/dev/null) \
  || fail "ansible-galaxy collection build"
[[ -f $tarball ]] || fail "no $tarball"

step=install
cd "$work"
rm -rf collections inventory .ftps-kit
cat >requirements.yml <<YAML
---
collections:
  - name: $tarball
    type: file
YAML
# containers.podman (the lab's connection plugin) and ftpskit.ftps's dependencies (galaxy.yml:
# ansible.posix, community.general) come from the venv's `ansible` package: on the collections
# path, the install finds them there and needs no Galaxy (unreachable here). The empty path
# first, so ftpskit.ftps can only come from the tarball.
site_packages=$("$venv/bin/python" -c 'import ansible_collections, os; print(os.path.dirname(ansible_collections.__path__[0]))')
export ANSIBLE_COLLECTIONS_PATH="$work/collections:$site_packages"
export ANSIBLE_CONFIG=$work/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
printf '[defaults]\ninterpreter_python = auto_silent\ncallback_result_format = yaml\n[connection]\npipelining = true\n' >ansible.cfg
"$venv/bin/ansible-galaxy" collection install -r requirements.yml -p "$work/collections" >/dev/null \
  || fail "ansible-galaxy collection install -r requirements.yml"
installed=$work/collections/ansible_collections/ftpskit/ftps
[[ -f $installed/MANIFEST.json ]] || fail "not installed in $installed"
for dep in ansible.posix community.general; do
  "$venv/bin/ansible-galaxy" collection list "$dep" >/dev/null 2>&1 || fail "dependency $dep not found on the collections path"
done
[[ ! -e $site_packages/ansible_collections/ftpskit ]] || fail "an ftpskit collection in the venv would shadow the tarball"

step=ansible-doc
for module in "$installed"/plugins/modules/*.py; do
  name=$(basename "$module" .py)
  "$venv/bin/ansible-doc" "ftpskit.ftps.$name" >/dev/null || fail "ansible-doc ftpskit.ftps.$name"
done

step=inventory
mkdir -p inventory
cp "$root/inventories/lab/hosts.yml" inventory/hosts.yml
cp -r "$root/inventories/lab/group_vars" inventory/group_vars
# The user's data (CA, wheelhouse) lives with this inventory, not with the lab's.
unset FTPS_KIT_LAB_DATA_DIR
cat >site.yml <<'YAML'
---
- name: The fleet, from the installed collection
  ansible.builtin.import_playbook: ftpskit.ftps.site
YAML

step=lab
bash "$root/lab/lab.sh" up >/dev/null || fail "lab/lab.sh up"

step=converge
"$venv/bin/ansible-playbook" -i inventory site.yml >converge.log 2>&1 || { tail -n 40 converge.log; fail "ansible-playbook site.yml (log: $work/converge.log)"; }
grep -E '^ftpskit-' converge.log | sed 's/^/installed-form: first run: /'

step=idempotence
"$venv/bin/ansible-playbook" -i inventory site.yml >rerun.log 2>&1 || { tail -n 40 rerun.log; fail "second run"; }
if grep -E '^ftpskit-.*changed=[1-9]' rerun.log; then fail "the second run changed something (log: $work/rerun.log)"; fi
[[ -s inventory/.ftps-kit/pki/ca/ca.pem ]] || fail "the CA is not with the user's inventory"
[[ -z $(find "$installed" -path '*.ftps-kit*' -print -quit) ]] || fail "controller data inside the installed collection"

step=done
bash "$root/lab/lab.sh" down >/dev/null || true
echo "installed-form: ftpskit.ftps $version installed from its tarball into $work/collections: site.yml converged the lab, proof passed, re-run changed=0"
[[ -n ${1:-} ]] || rm -rf "$work"
