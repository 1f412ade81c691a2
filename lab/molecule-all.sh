#!/usr/bin/env bash
# Run Molecule scenarios (make molecule): `molecule test` for every scenario under molecule/
# (default first, then by name), or only those named on the command line:
#   lab/molecule-all.sh                 every scenario
#   lab/molecule-all.sh default pki     these, in this order
# `stock` runs only when named: it proves the stock Debian 12 controller, so it needs the venv of
# Debian's python3.11 with no other Python visible (make test-stock names it), not .venv.
#   lab/molecule-all.sh --network       only create the shared network (for `molecule converge`
#                                       and friends run by hand)
# FTPSKIT_MOLECULE_JOBS=2 runs two scenarios at a time (default 1; output printed per scenario).
# FTPSKIT_KEEP=1 keeps a failed scenario's containers for `molecule login -s SCENARIO -h HOST`.
# Before each scenario it creates the shared network if missing and removes that scenario's
# own leftover containers (by name: a run killed earlier leaves them behind). Prints the time
# of each scenario; on failure names the scenario and the Molecule step that failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
network=ftpskit-molecule
subnet=10.213.8.0/24
gateway=10.213.8.1
images=(localhost/ftpskit-debian:12 localhost/ftpskit-debian:13)

cd "$root"
# The checkout is the collection ftpskit.ftps (ANSIBLE_COLLECTIONS_PATH in .config/molecule): the
# link `make collection-link` makes, also when this script is run by hand after a clean.
mkdir -p .cache/collections/ansible_collections/ftpskit
ln -sfn ../../../.. .cache/collections/ansible_collections/ftpskit/ftps
venv=${VENV:-$root/.venv}
export PATH="$venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0

die() { echo "molecule-all: $*" >&2; exit 1; }

ensure_network() {
  if podman network exists "$network"; then
    local have
    have=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}}' "$network")
    [[ $have == "$subnet" ]] && return 0
    # Created by Molecule itself (a run by hand before this script): recreate it if unused.
    podman network rm "$network" >/dev/null 2>&1 \
      || die "step 'network': $network has subnet '$have', not $subnet, and is in use; remove its containers first"
  fi
  podman network create --subnet "$subnet" --gateway "$gateway" "$network" >/dev/null \
    || die "step 'network': podman network create $network ($subnet) failed"
  echo "molecule-all: created network $network ($subnet)"
}

# The container names a scenario uses: its platforms, as Molecule resolves them.
scenario_containers() {
  molecule list -s "$1" --format plain 2>/dev/null | awk 'NR > 0 && $2 == "podman" { print $1 }' || true
}

scenarios=()
if [[ ${1:-} == --network ]]; then
  ensure_network
  exit 0
elif (($#)); then
  scenarios=("$@")
else
  [[ -f molecule/default/molecule.yml ]] && scenarios+=(default)
  for f in molecule/*/molecule.yml; do
    s=$(basename "$(dirname "$f")")
    [[ $s == default || $s == stock ]] || scenarios+=("$s")
  done
fi
((${#scenarios[@]})) || die "step 'discover': no scenario under molecule/"
for s in "${scenarios[@]}"; do
  [[ -f molecule/$s/molecule.yml ]] || die "step 'discover': molecule/$s/molecule.yml not found"
done
for image in "${images[@]}"; do
  podman image exists "$image" || die "step 'images': $image missing (run: make lab-images)"
done
ensure_network

# One scenario, start to end: leftovers removed, `molecule test`, its timing line. Writes
# "<status> <seconds> <timing>" to $2 (status: the exit of `molecule test`, or "-" if it never ran).
run_scenario() {
  local s=$1 result=$2 start=$SECONDS c eph log steps rc failed_step timing destroy=always
  echo "-" >"$result"
  echo
  echo "==> molecule scenario '$s'"
  for c in $(scenario_containers "$s"); do
    if podman container exists "$c"; then
      podman rm -f -t 5 "$c" >/dev/null
      echo "molecule-all: removed leftover container $c"
    fi
  done
  # Molecule keeps a scenario's ephemeral directory (inventory, its data such as a scenario CA)
  # across runs, named after the checkout directory's base name: a new clone called like an old
  # one would inherit the old run's files. Every run starts from none, as on a new machine.
  eph=$(python -c 'import sys; from molecule.text import checksum; print(checksum(sys.argv[1], 4))' "$(basename "$root")")
  eph="${HOME}/.ansible/tmp/molecule.${eph}.${s}"
  if [[ -d $eph ]]; then
    rm -rf -- "$eph"
    echo "molecule-all: removed the scenario's earlier ephemeral directory $eph"
  fi
  log=$(mktemp)
  steps=$(mktemp)
  [[ ${FTPSKIT_KEEP:-0} == 1 ]] && destroy=never
  set +e
  # Pass the output through, noting when each Molecule step starts (for the timing line).
  molecule test -s "$s" --destroy "$destroy" 2>&1 | while IFS= read -r line; do
    printf '%s\n' "$line"
    printf '%s\n' "$line" >>"$log"
    if [[ $line =~ \[$s\ \>\ ([a-z_]+)\]\ Executing$ ]]; then
      echo "$SECONDS ${BASH_REMATCH[1]}" >>"$steps"
    fi
  done
  rc=${PIPESTATUS[0]}
  set -e
  echo "$SECONDS end" >>"$steps"
  # "converge 95s, idempotence 40s, ...": where a scenario's time goes.
  timing=$(awk 'NR > 1 { d = $1 - t; if (d > 0) { printf "%s%s %ds", sep, step, d; sep = ", " } }
    { t = $1; step = $2 }' "$steps")
  rm -f "$steps"
  echo "$rc $((SECONDS - start)) $timing" >"$result"
  if ((rc != 0)); then
    # Molecule logs "[<scenario> > <action>] Executed: Failed" for the step that failed.
    failed_step=$(grep -aoE "\[${s} > [a-z_]+\] .*Executed: Failed" "$log" | head -n1 \
      | sed -E 's/^\[[^>]*> ([a-z_]+)\].*/\1/' || true)
    echo "molecule-all: scenario '$s' failed at step '${failed_step:-unknown}' (exit $rc) after $((SECONDS - start)) s (${timing})" >&2
  else
    echo "molecule-all: scenario '$s' passed in $((SECONDS - start)) s (${timing})"
  fi
  rm -f "$log"
}

# FTPSKIT_MOLECULE_JOBS=N runs up to N scenarios side by side (container names carry the
# scenario's name; the shared wheelhouse's build is locked). Each scenario's output is printed
# whole when it ends, not interleaved. After a failure no new scenario starts; those running end.
jobs=${FTPSKIT_MOLECULE_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "step 'discover': FTPSKIT_MOLECULE_JOBS must be a positive number, got '$jobs'"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total_start=$SECONDS
declare -A running=()
failed=()
next=0
finish() {  # the scenario whose job ended: print its output, note a failure
  local s=$1
  if ((jobs > 1)); then
    cat "$work/$s.out"
  fi
  read -r rc _ <"$work/$s.result"
  [[ $rc == 0 ]] || failed+=("$s")
}
while ((next < ${#scenarios[@]} || ${#running[@]})); do
  while ((next < ${#scenarios[@]} && ${#running[@]} < jobs && ${#failed[@]} == 0)); do
    s=${scenarios[next]}
    next=$((next + 1))
    if ((jobs == 1)); then
      run_scenario "$s" "$work/$s.result"
      finish "$s"
    else
      run_scenario "$s" "$work/$s.result" >"$work/$s.out" 2>&1 &
      running[$s]=$!
    fi
  done
  ((${#failed[@]} == 0)) || ((${#running[@]})) || break
  ((${#running[@]})) || continue
  wait -n || true
  for s in "${!running[@]}"; do
    if ! kill -0 "${running[$s]}" 2>/dev/null; then
      wait "${running[$s]}" || true
      unset "running[$s]"
      finish "$s"
    fi
  done
done

if ((${#failed[@]})); then
  for s in "${failed[@]}"; do
    read -r rc secs timing <"$work/$s.result"
    echo "molecule-all: scenario '$s' failed (exit $rc) after $secs s ($timing)" >&2
  done
  die "${#failed[@]} scenario(s) failed: ${failed[*]}"
fi

echo
echo "molecule-all: all scenarios passed in $((SECONDS - total_start)) s (${jobs} at a time):"
for s in "${scenarios[@]}"; do
  read -r _ secs timing <"$work/$s.result"
  printf '  %-20s %4d s  (%s)\n' "$s" "$secs" "$timing"
done
