#!/usr/bin/env bash
# Prepare this machine for the podman lab; idempotent (a second run changes nothing).
#   1. install the Debian packages of lab/host-packages.txt that are missing (apt-get update
#      only when something is missing);
#   2. write the kit's own podman drop-in /etc/containers/containers.conf.d/50-ftps-kit.conf for
#      this kind of machine (see LAB-NOTES): runc, cgroupfs, file events logger, default
#      ulimits = this machine's hard limits. The machine's /etc/containers/containers.conf is
#      never written (podman reads drop-ins after it, so ours wins for these keys only); a
#      containers.conf that an earlier version of the kit wrote (it starts with our header) is
#      moved aside to containers.conf.ftps-kit-old;
#   3. check that podman really works (`podman info`).
# Every failure names its step.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packages_file="$here/host-packages.txt"
conf=/etc/containers/containers.conf.d/50-ftps-kit.conf
old_conf=/etc/containers/containers.conf
header="# Written by ftps-kit lab/setup-host.sh"
step=""

fail() { trap - EXIT; echo "setup-host: step '$step' failed: $*" >&2; exit 1; }
trap '[[ $? -eq 0 ]] || echo "setup-host: step '"'"'$step'"'"' failed (line $LINENO)" >&2' EXIT

step="preflight"
[[ $(id -u) -eq 0 ]] || fail "must run as root (apt and rootful podman)"
command -v apt-get >/dev/null || fail "apt-get not found: the lab needs a Debian machine"
[[ -r $packages_file ]] || fail "$packages_file not readable"

# --- 1. packages -------------------------------------------------------------------------------
step="apt packages"
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$packages_file" | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup-host: installing ${missing[*]}"
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -q -y)
  export DEBIAN_FRONTEND=noninteractive
  apt-get "${apt_opts[@]}" update || fail "apt-get update failed"
  apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" \
    || fail "apt-get install ${missing[*]} failed (is every name in $packages_file a Debian package?)"
else
  echo "setup-host: all ${#wanted[@]} host packages present"
fi

# --- 2. podman configuration ------------------------------------------------------------------
step="containers.conf"
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
if [[ $nproc == unlimited ]] || ((nproc > pid_max)); then nproc=$pid_max; fi
want=$(
  cat <<EOF
$header; rewritten when it differs.
# The kit's own drop-in: podman reads it after /etc/containers/containers.conf (left untouched).
# This machine: cgroup v1 "hybrid" (crun refuses it: use runc), PID 1 is not systemd (cgroupfs,
# file events logger), and root lacks CAP_SYS_RESOURCE, so containers must not ask for more
# than the hard limits (ulimit -Hn / -Hu, nproc capped at kernel.pid_max).
[containers]
default_ulimits = [
  "nofile=$nofile:$nofile",
  "nproc=$nproc:$nproc",
]

[network]
# Netavark + aardvark-dns (DNS names on our networks); never the CNI plugins.
network_backend = "netavark"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
if [[ -f $conf ]] && [[ $(cat "$conf") == "$want" ]]; then
  echo "setup-host: $conf up to date"
else
  install -d -m 0755 "$(dirname "$conf")"
  tmp=$(mktemp "$(dirname "$conf")/.ftps-kit.conf.XXXXXX")
  printf '%s\n' "$want" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$conf"
  echo "setup-host: wrote $conf (nofile=$nofile, nproc=$nproc)"
fi
# After the drop-in is in place (no moment without our settings):
if [[ -f $old_conf ]] && [[ $(head -c ${#header} "$old_conf") == "$header" ]]; then
  mv -f "$old_conf" "$old_conf.ftps-kit-old"
  echo "setup-host: moved the kit's old $old_conf aside ($old_conf.ftps-kit-old); the kit now uses $conf"
fi

# --- 3. podman works ---------------------------------------------------------------------------
step="podman info"
fmt='{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.EventLogger}} {{.Host.NetworkBackend}}'
err=$(mktemp)
out=$(podman info --format "$fmt" 2>"$err") || fail "podman info failed: $(cat "$err")"
rm -f "$err"
expected="runc cgroupfs file netavark"
[[ $out == "$expected" ]] || fail "podman uses '$out', expected '$expected' (see $conf)"
echo "setup-host: podman $(podman version --format '{{.Client.Version}}') ready ($out)"
step="done"
