#!/usr/bin/env bash
# Run Molecule scenarios (make molecule): `molecule test` for every scenario under molecule/
# (default first, then by name), or only those named on the command line:
#   lab/molecule-all.sh                 every scenario
#   lab/molecule-all.sh default pki     these, in this order
# `stock` runs only when named: it proves the stock Debian 12 controller, so it needs the venv of
# Debian's python3.11 with no other Python visible (make test-stock names it), not .venv.
#   lab/molecule-all.sh --network       only create the shared network (for `molecule converge`
#                                       and friends run by hand)
#   lab/molecule-all.sh --env SCENARIO  print `export` lines of the scenario's addresses (the
#                                       variables its molecule.yml reads), for a run by hand:
#                                       eval "$(lab/molecule-all.sh --env pki)"
# Every host's address and /etc/hosts entries come from the lab's plan, lab/lab_addresses.py (no
# lab name is left to aardvark-dns). FTPSKIT_LAB_NETWORK=NAME FTPSKIT_LAB_SUBNET=10.213.N.0/24 put
# the plan on another network (a second lab on a machine whose shared network is in use).
# FTPSKIT_MOLECULE_JOBS=2 runs two scenarios at a time (default 1; output printed per scenario).
# FTPSKIT_KEEP=1 keeps a failed scenario's containers for `molecule login -s SCENARIO -h HOST`.
# Before each scenario it creates the shared network as planned if missing and removes that scenario's
# own leftover containers (by name: a run killed earlier leaves them behind). Prints the time
# of each scenario; on failure names the scenario and the Molecule step that failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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

# The address plan (lab/lab_addresses.py) owns the network and every host's address.
plan() { python "$root/lab/lab_addresses.py" "$@"; }
read -r network subnet gateway ip_range < <(plan network) || die "step 'network': lab/lab_addresses.py network failed"
[[ -n ${ip_range:-} ]] || die "step 'network': no address plan (lab/lab_addresses.py network)"

# The network as planned: subnet, gateway and podman's dynamic range (--ip-range) apart from the
# scenarios' static addresses. A network that differs (one made before the plan had a range, or
# by Molecule itself) is recreated only when no container is attached: a scenario running on it
# must not lose its network, so then this stops and says what to do.
ensure_network() {
  local problems attached
  if podman network exists "$network"; then
    problems=$(podman network inspect "$network" | plan check-network) && return 0
    attached=$(podman ps -a --filter "network=$network" --format '{{.Names}}' | tr '\n' ' ')
    [[ -z ${attached// /} ]] || die "step 'network': $network is not as planned ($problems) and containers are attached (${attached% }): recreate it once they are gone (podman network rm $network; this script creates it), or run on another network: FTPSKIT_LAB_NETWORK=NAME FTPSKIT_LAB_SUBNET=10.213.N.0/24"
    podman network rm "$network" >/dev/null \
      || die "step 'network': podman network rm $network failed (a container attached meanwhile?)"
    echo "molecule-all: removed network $network ($problems)"
  fi
  podman network create --subnet "$subnet" --gateway "$gateway" --ip-range "$ip_range" "$network" >/dev/null \
    || die "step 'network': podman network create $network ($subnet, dynamic $ip_range) failed"
  echo "molecule-all: created network $network ($subnet, podman's dynamic addresses $ip_range)"
}

# The container names a scenario uses: its platforms, as Molecule resolves them.
scenario_containers() {
  env "${scenario_env[@]}" molecule list -s "$1" --format plain 2>/dev/null | awk 'NR > 0 && $2 == "podman" { print $1 }' || true
}

scenarios=()
if [[ ${1:-} == --network ]]; then
  ensure_network
  exit 0
elif [[ ${1:-} == --env ]]; then
  (($# == 2)) || die "usage: lab/molecule-all.sh --env SCENARIO"
  plan env "$2" | sed -E "s/^([A-Z0-9_]+)=(.*)$/export \\1='\\2'/"
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
  local -a scenario_env
  echo "-" >"$result"
  echo
  echo "==> molecule scenario '$s'"
  # The scenario's network, addresses and /etc/hosts entries, for its molecule.yml.
  mapfile -t scenario_env < <(plan env "$s") && ((${#scenario_env[@]})) \
    || { echo "molecule-all: scenario '$s' has no address plan (lab/lab_addresses.py env $s)" >&2; return 0; }
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
  env "${scenario_env[@]}" molecule test -s "$s" --destroy "$destroy" 2>&1 | while IFS= read -r line; do
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
