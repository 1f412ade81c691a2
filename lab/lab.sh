#!/usr/bin/env bash
# The demo lab: two Debian servers and a client, booted with systemd, on their own network.
#   lab/lab.sh up      create what is missing; reuse our healthy containers (so a second
#                      `make demo` converges with changed=0); remove our stale leftovers first
#   lab/lab.sh down    remove our containers and network (only ours, by name)
#   lab/lab.sh status  show them
# Names and addresses match inventories/lab/hosts.yml.
set -euo pipefail

network=ftpskit-lab
subnet=10.213.0.0/24
gateway=10.213.0.1
# name image address
hosts=(
  "ftpskit-deb12 localhost/ftpskit-debian:12 10.213.0.12"
  "ftpskit-deb13 localhost/ftpskit-debian:13 10.213.0.13"
  "ftpskit-client localhost/ftpskit-debian:13 10.213.0.20"
)
boot_timeout=90
# Every host's name in every container's /etc/hosts (podman run --add-host, kept across restarts):
# the hosts find each other without asking aardvark-dns, the network's DNS server, which is slow
# while it reloads on every container start and stop on the machine.
add_hosts=()
for entry in "${hosts[@]}"; do
  read -r name _ address <<<"$entry"
  add_hosts+=(--add-host "$name:$address")
done
step="preflight"

fail() { trap - EXIT; echo "lab: step '$step' failed: $*" >&2; exit 1; }
trap 'rc=$?; [[ $rc -eq 0 ]] || echo "lab: step '"'"'$step'"'"' failed (exit $rc)" >&2' EXIT

container_ok() { # name image address: running, from the current image, at the address, with
  # every host's /etc/hosts entry
  local name=$1 image=$2 address=$3 state img want_img ip extra want_extra
  state=$(podman container inspect --format '{{.State.Status}}' "$name" 2>/dev/null) || return 1
  [[ $state == running ]] || return 1
  img=$(podman container inspect --format '{{.Image}}' "$name")
  want_img=$(podman image inspect --format '{{.Id}}' "$image")
  [[ $img == "$want_img" ]] || return 1
  ip=$(podman container inspect --format "{{(index .NetworkSettings.Networks \"$network\").IPAddress}}" "$name" 2>/dev/null) \
    || return 1
  [[ $ip == "$address" ]] || return 1
  extra=$(podman container inspect --format '{{range .HostConfig.ExtraHosts}}{{.}} {{end}}' "$name" | tr ' ' '\n' | sed '/^$/d' | sort)
  want_extra=$(printf '%s\n' "${add_hosts[@]}" | grep -v '^--add-host$' | sort)
  [[ $extra == "$want_extra" ]]
}

remove_containers() {
  local entry name
  for entry in "${hosts[@]}"; do
    read -r name _ <<<"$entry"
    if podman container exists "$name"; then
      podman rm -f -t 5 "$name" >/dev/null
      echo "lab: removed container $name"
    fi
  done
}

up() {
  local entry name image address state waited
  step="images"
  for entry in "${hosts[@]}"; do
    read -r _ image _ <<<"$entry"
    podman image exists "$image" || fail "$image missing (run: make lab-images)"
  done

  step="network"
  if podman network exists "$network"; then
    if [[ $(podman network inspect --format '{{range .Subnets}}{{.Subnet}}{{end}}' "$network") != "$subnet" ]]; then
      echo "lab: network $network has another subnet: recreating it"
      remove_containers
      # Without -f: a container that is not ours on this network must stop us, not be removed.
      podman network rm "$network" >/dev/null || fail "podman network rm $network: still in use by other containers"
    fi
  fi
  if ! podman network exists "$network"; then
    podman network create --subnet "$subnet" --gateway "$gateway" "$network" >/dev/null \
      || fail "podman network create $network ($subnet)"
    echo "lab: created network $network ($subnet)"
  fi

  for entry in "${hosts[@]}"; do
    read -r name image address <<<"$entry"
    step="container $name"
    if container_ok "$name" "$image" "$address"; then
      echo "lab: $name ($address) running, reused"
      continue
    fi
    if podman container exists "$name"; then
      podman rm -f -t 5 "$name" >/dev/null
      echo "lab: removed stale $name"
    fi
    podman run -d --name "$name" --hostname "$name" \
      --network "$network" --ip "$address" "${add_hosts[@]}" \
      --systemd=always --cap-add NET_ADMIN,NET_RAW \
      --label ftpskit.lab=true \
      "$image" >/dev/null || fail "podman run $name"
    echo "lab: started $name ($address) from $image"
  done

  for entry in "${hosts[@]}"; do
    read -r name _ address <<<"$entry"
    step="boot $name"
    waited=0
    until state=$(podman exec "$name" systemctl is-system-running 2>/dev/null) \
      || [[ $state == degraded ]]; do
      ((waited < boot_timeout)) || fail "$name: systemd not running after ${boot_timeout}s (state '${state:-?}')"
      sleep 1
      ((waited += 1))
    done
    if [[ $state == degraded ]]; then
      echo "lab: warning: $name is degraded; failed units:" >&2
      podman exec "$name" systemctl --failed --no-legend >&2 || true
    fi
    echo "lab: $name $address systemd $state"
  done
  step="done"
}

down() {
  step="remove containers"
  remove_containers
  step="remove network"
  if podman network exists "$network"; then
    # Without -f: containers that are not ours keep the network (and are never removed).
    podman network rm "$network" >/dev/null || fail "podman network rm $network: still in use by containers not ours"
    echo "lab: removed network $network"
  fi
  step="done"
}

status() {
  step="status"
  podman ps -a --filter label=ftpskit.lab=true \
    --format '{{.Names}}\t{{.Status}}\t{{.Image}}'
}

[[ $(id -u) -eq 0 ]] || fail "must run as root (rootful podman)"
case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: lab/lab.sh up|down|status" >&2; exit 2 ;;
esac
