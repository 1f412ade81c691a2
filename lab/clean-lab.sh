#!/usr/bin/env bash
# `make clean-lab`: put this machine back to "the kit was never run here", removing only what
# the kit itself made, so that `bash .ci/run` in a fresh clone proves a from-nothing run:
#   - every container created from the kit's images (localhost/ftpskit-debian:*): the lab's
#     (ftpskit-deb12, ...) and every Molecule scenario's, whatever its name;
#   - the kit's podman networks: ftpskit-lab, ftpskit-molecule (or FTPSKIT_LAB_NETWORK's) and ftpskit-bench (make bench-fleet) (only if no other container
#     uses them: a container that is not ours keeps its network, and this script says so);
#   - the kit's images: make test-ee's (localhost/ftpskit-ee:lab, localhost/ftpskit-ee-host:12
#     and :13, built on the lab images, so removed first), localhost/ftpskit-debian:12 and :13;
#   - in this checkout: the venvs (.venv, .venv-stock, .venv-sanity, .venv-docs: make docs-site), lab/cache/ (debootstrap's .debs and root
#     file systems), inventories/lab/.ftps-kit/ (the lab's CA and wheelhouse), .cache/ (the docs site,
#     collection link, Molecule), .ansible/, .pytest_cache, .ruff_cache;
#   - a copy of this collection (namespace ftpskit) in ~/.ansible/collections.
# It never removes other images, containers or networks, never runs `podman system reset`, and
# leaves the machine's apt packages, /etc/containers and pip's cache alone (the CI run is made
# with PIP_NO_CACHE_DIR=1 to prove it does not need that cache). Idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
images=(localhost/ftpskit-ee:lab localhost/ftpskit-ee-host:12 localhost/ftpskit-ee-host:13
  localhost/ftpskit-debian:12 localhost/ftpskit-debian:13)
networks=(ftpskit-lab ftpskit-molecule ftpskit-bench)
# A Molecule network of its own (lab/lab_addresses.py: FTPSKIT_LAB_NETWORK) is the kit's too.
[[ -z ${FTPSKIT_LAB_NETWORK:-} || $FTPSKIT_LAB_NETWORK == ftpskit-molecule ]] || networks+=("$FTPSKIT_LAB_NETWORK")

if command -v podman >/dev/null; then
  for image in "${images[@]}"; do
    podman image exists "$image" || continue
    mapfile -t ids < <(podman ps -a --filter "ancestor=$image" --format '{{.ID}}')
    if ((${#ids[@]})); then
      podman rm -f -t 5 "${ids[@]}" >/dev/null
      echo "clean-lab: removed ${#ids[@]} container(s) of $image"
    fi
  done
  # Containers of an image that was rebuilt (their image is untagged now) carry the lab label or
  # sit on the kit's networks; remove those too, and nothing else.
  mapfile -t ids < <(podman ps -a --filter label=ftpskit.lab=true --format '{{.ID}}')
  for net in "${networks[@]}"; do
    podman network exists "$net" || continue
    while read -r id image; do
      [[ -n $id ]] || continue
      # Ours: the kit's image by name, or by bare ID once a rebuild untagged it.
      if [[ $image == localhost/ftpskit-debian:* || $image == localhost/ftpskit-ee-host:* || $image =~ ^[0-9a-f]{12,64}$ ]]; then ids+=("$id"); fi
    done < <(podman ps -a --filter "network=$net" --format '{{.ID}} {{.Image}}')
  done
  if ((${#ids[@]})); then
    podman rm -f -t 5 "${ids[@]}" >/dev/null 2>&1 || true
    echo "clean-lab: removed leftover kit containers"
  fi
  for net in "${networks[@]}"; do
    podman network exists "$net" || continue
    if podman network rm "$net" >/dev/null 2>&1; then
      echo "clean-lab: removed network $net"
    else
      echo "clean-lab: network $net is still used by containers that are not the kit's: kept" >&2
    fi
  done
  for image in "${images[@]}"; do
    if podman image exists "$image"; then
      podman rmi "$image" >/dev/null
      echo "clean-lab: removed image $image"
    fi
  done
else
  echo "clean-lab: podman not installed: no images, containers or networks to remove"
fi

cd "$root"
for path in .venv .venv-stock .venv-sanity .venv-docs lab/cache inventories/lab/.ftps-kit .cache .ansible .pytest_cache .ruff_cache; do
  if [[ -e $path ]]; then
    rm -rf -- "$path"
    echo "clean-lab: removed $root/$path"
  fi
done
# A copy of this collection installed into the user's default collections path (a hand-run
# `ansible-galaxy collection install` of the tarball, or a tool that installs the collection it
# tests): the kit's own namespace only, never another collection.
own=${HOME:-/root}/.ansible/collections/ansible_collections/ftpskit
if [[ -d $own ]]; then
  rm -rf -- "$own"
  echo "clean-lab: removed $own"
fi
echo "clean-lab: done; now run: git clone <repo> /tmp/fresh && cd /tmp/fresh && PIP_NO_CACHE_DIR=1 CI=true bash .ci/run </dev/null"
