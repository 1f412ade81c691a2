#!/usr/bin/env bash
# Build the wheels ftpsd's hosts install from, once, on the controller: ftpsd (from the
# collection's src/), ftpskit-common (src/common/: the collection's plugins/module_utils/
# ftpskit_common packed as a wheel; ftpsd needs it, client hosts install only it) and every dependency, as binary wheels for each target Python and CPU, so servers need
# no package index (air-gapped fleets work). The one implementation: the ftps_server role (a
# run_once task on the controller) and, in a git checkout, the lab's lab/wheelhouse.sh both call it.
#
# usage: build-wheelhouse.sh --src DIR --out DIR TARGET...
#   TARGET  <python version>-<machine>, e.g. 3.11-x86_64 (Debian 12), 3.13-x86_64 (Debian 13)
#   writes  OUT/common/   pure-Python wheels built here (ftpsd, ftpskit-common, pyftpdlib: PyPI
#                         has no wheel of it)
#           OUT/TARGET/   everything one host installs: pip install --no-index --find-links,
#                         with SHA256SUMS (sorted) listing its wheels
# Idempotent: a target whose inputs (the ftpsd sources, the pins, this script) are unchanged is
# skipped. The last line says `wheelhouse: changed` or `wheelhouse: unchanged` (Ansible reads it).
# Environment: PYTHON (the controller's python with pip; default python3), FTPSD_PINS (extra
# requirement pins, default: pyftpdlib and pyOpenSSL at the versions the controller has).
# pip evaluates dependency markers (`python_version < "3.13"`) with the interpreter that runs
# it, whatever --python-version says, so each target is resolved by a controller interpreter of
# that version when one exists (python3.X on PATH, /usr/bin, pyenv), else by PYTHON with a warning.
set -euo pipefail

die() { echo "build-wheelhouse: $*" >&2; exit 1; }

src="" out="" targets=()
while (($#)); do
  case "$1" in
    --src) src="${2:?--src needs a directory}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ -n "$src" && -f "$src/pyproject.toml" ]] || die "--src must be the ftpsd source directory (with pyproject.toml), got '${src}'"
[[ -n "$out" ]] || die "--out is required"
src="$(cd "$src" && pwd)"
# The shared package the ftpskit-common wheel packs: the collection's own copy beside src/.
shared="$src/../plugins/module_utils/ftpskit_common"
[[ -f "$src/common/pyproject.toml" && -f "$shared/__init__.py" ]] \
  || die "--src must be the collection's src/ (with common/pyproject.toml and ../plugins/module_utils/ftpskit_common), got '${src}'"
((${#targets[@]})) || die "name at least one TARGET such as 3.11-x86_64"

PYTHON="$(command -v "${PYTHON:-python3}")" || die "no python3 on PATH; set PYTHON"
pip=("$PYTHON" -m pip --disable-pip-version-check)
"${pip[@]}" --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not work; set PYTHON to a python with pip"

# Pins: the versions the controller runs its tests with, so hosts run what was tested.
pin() { "$PYTHON" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if [[ -z "${FTPSD_PINS:-}" ]]; then
  FTPSD_PINS=""
  for dist in pyftpdlib pyOpenSSL prometheus_client; do
    version="$(pin "$dist")"
    FTPSD_PINS+="${dist}${version:+==$version} "
  done
fi

mkdir -p "$out/common"
out="$(cd "$out" && pwd)"
# What a wheelhouse depends on: the ftpsd and ftpskit_common sources, the pins and this script.
inputs_hash="$(
  {
    for dir in "$src" "$shared"; do
      (cd "$dir" && find . -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    done
    echo "$FTPSD_PINS"
    sha256sum <"$0"
  } | sha256sum | cut -d' ' -f1
)"

changed=0
common_stamp="$out/common/.inputs"
if [[ "$(cat "$common_stamp" 2>/dev/null)" != "$inputs_hash" ]]; then
  echo "build-wheelhouse: building pure-Python wheels (ftpsd, ftpskit-common, ${FTPSD_PINS% })"
  tmp="$(mktemp -d "$out/.common.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # pyftpdlib ships only an sdist; it is pure Python, so one wheel serves every target.
  # shellcheck disable=SC2086  # FTPSD_PINS is a space-separated list of requirements
  "${pip[@]}" wheel -q --no-deps -w "$tmp" "$src" "$src/common" $(tr ' ' '\n' <<<"$FTPSD_PINS" | grep -i '^pyftpdlib')
  rm -rf "$out/common"
  mv "$tmp" "$out/common"
  trap - EXIT
  echo "$inputs_hash" >"$common_stamp"
  changed=1
fi
ftpsd_wheel="$(find "$out/common" -maxdepth 1 -name 'ftpsd-*.whl' | head -n1)"
[[ -n "$ftpsd_wheel" ]] || die "no ftpsd wheel was built in $out/common"
[[ -n "$(find "$out/common" -maxdepth 1 -name 'ftpskit_common-*.whl' | head -n1)" ]] \
  || die "no ftpskit_common wheel was built in $out/common"

# A controller interpreter of version $1 with a working pip, or nothing.
interpreter_for() {
  local candidate
  for candidate in "$(command -v "python$1" 2>/dev/null)" "/usr/bin/python$1" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    "$candidate" -m pip --version >/dev/null 2>&1 && { echo "$candidate"; return 0; }
  done
  return 0
}

for target in "${targets[@]}"; do
  [[ "$target" =~ ^([0-9]+)\.([0-9]+)-([A-Za-z0-9_]+)$ ]] || die "target '$target' is not <python version>-<machine>, e.g. 3.11-x86_64"
  pyver="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" abi="cp${BASH_REMATCH[1]}${BASH_REMATCH[2]}" machine="${BASH_REMATCH[3]}"
  dir="$out/$target"
  if [[ "$(cat "$dir/.inputs" 2>/dev/null)" == "$inputs_hash" ]]; then
    echo "build-wheelhouse: $target up to date"
    continue
  fi
  resolver="$(interpreter_for "$pyver")"
  if [[ -z "$resolver" ]]; then
    resolver="$PYTHON"
    echo "build-wheelhouse: warning: no Python $pyver with pip on the controller; resolving with $PYTHON," \
      "so dependencies behind python_version markers may be missing for $target" >&2
  fi
  echo "build-wheelhouse: downloading binary wheels for Python $pyver on $machine (resolver: $resolver)"
  platforms=()
  # glibc 2.17 (manylinux2014) .. 2.36 (Debian 12; Debian 13 has 2.41 and accepts all of them).
  for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_${machine}"); done
  platforms+=(--platform "manylinux2014_${machine}")
  tmp="$(mktemp -d "$out/.$target.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # shellcheck disable=SC2086  # FTPSD_PINS is a space-separated list of requirements
  "$resolver" -m pip --disable-pip-version-check download -q --only-binary=:all: --python-version "$pyver" --implementation cp \
    --abi "$abi" --abi abi3 --abi none "${platforms[@]}" \
    --find-links "$out/common" -d "$tmp" "$ftpsd_wheel" $FTPSD_PINS \
    || die "pip could not fetch wheels for $target (is PyPI reachable from the controller?)"
  # The manifest the role compares first: one small file instead of every wheel per run.
  (cd "$tmp" && sha256sum -- *.whl | sort -k2 >SHA256SUMS)
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "$inputs_hash" >"$dir/.inputs"
  changed=1
done

if ((changed)); then echo "wheelhouse: changed"; else echo "wheelhouse: unchanged"; fi
