#!/usr/bin/env bash
# Finish a debootstrapped root file system before `podman import` (part of the image recipe:
# changing this file changes the recipe hash, so the image is rebuilt).
# Usage: finalize.sh ROOTFS
set -euo pipefail
root=${1:?usage: finalize.sh ROOTFS}
[[ -x $root/sbin/init ]] || { echo "finalize: $root/sbin/init missing (systemd-sysv not installed?)" >&2; exit 1; }

# Each container gets its own machine id at boot (systemd fills an empty file).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# No apt caches or package lists in the image (apt-get update inside when really needed).
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/cache/apt/archives/partial/* "$root"/var/lib/apt/lists/*
mkdir -p "$root/var/lib/apt/lists/partial"

# Logs, temporary files and documentation are not part of an image.
rm -rf "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/var/tmp/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
