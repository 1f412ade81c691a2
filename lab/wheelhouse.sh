#!/usr/bin/env bash
# `make wheelhouse`: the wheels the lab's servers install ftpsd from (Debian 12 = Python 3.11,
# Debian 13 = Python 3.13, both x86_64 here), each resolved for its target by the controller
# venv's Python, whatever its version. The build itself is the ftps_server role's
# build_wheelhouse.py, the same script the role runs on the controller for other fleets. Output:
# the lab's data directory inventories/lab/.ftps-kit/wheelhouse (ftps_kit_data_dir, git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
machine="$(uname -m)"
targets=("$@")
(($#)) || targets=("3.11-$machine" "3.13-$machine")
exec "${VENV:-$root/.venv}/bin/python" "$root/roles/ftps_server/files/build_wheelhouse.py" \
  --src "$root/src" --out "$root/inventories/lab/.ftps-kit/wheelhouse" "${targets[@]}"
