#!/usr/bin/env bash
# Build a lab image from Debian's archive with debootstrap; no container registry involved.
#   lab/build-image.sh bookworm   -> localhost/ftpskit-debian:12
#   lab/build-image.sh trixie     -> localhost/ftpskit-debian:13
# The recipe is lab/images/packages.txt + lab/images/finalize.sh + the suite; its hash is stored
# as the image label `ftpskit.recipe`. An existing image with the same hash is reused; a changed
# recipe rebuilds. Downloaded .debs are cached in lab/cache/ (git-ignored).
# Environment: FTPSKIT_MIRROR overrides the Debian mirror (default: the host's apt mirror).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=${1:-}
case $suite in
  bookworm) tag=12 ;;
  trixie) tag=13 ;;
  *) echo "usage: lab/build-image.sh bookworm|trixie" >&2; exit 2 ;;
esac
image=localhost/ftpskit-debian:$tag
recipe_dir=$here/images
cache=$here/cache
step="preflight"

fail() { trap - EXIT; echo "build-image[$suite]: step '$step' failed: $*" >&2; exit 1; }
trap 'rc=$?; [[ $rc -eq 0 ]] || echo "build-image[$suite]: step '"'"'$step'"'"' failed (exit $rc)" >&2' EXIT

[[ $(id -u) -eq 0 ]] || fail "must run as root (debootstrap, rootful podman)"
for tool in debootstrap podman tar sha256sum flock; do
  command -v "$tool" >/dev/null || fail "$tool not found (run: make setup)"
done

# --- recipe hash ---------------------------------------------------------------------------------
step="recipe"
for f in packages.txt finalize.sh; do [[ -r $recipe_dir/$f ]] || fail "$recipe_dir/$f missing"; done
packages=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$recipe_dir/packages.txt" | grep -v '^$' | paste -sd, -)
[[ -n $packages ]] || fail "$recipe_dir/packages.txt lists no package"
recipe=$( { echo "suite=$suite variant=minbase"; cat "$recipe_dir/packages.txt" "$recipe_dir/finalize.sh"; } \
  | sha256sum | cut -c1-16)

# One build per suite at a time (two engineers may ask at once); the second waits, then reuses.
mkdir -p "$cache"
exec 9>"$cache/build-$suite.lock"
flock 9

if podman image exists "$image"; then
  have=$(podman image inspect --format '{{index .Labels "ftpskit.recipe"}}' "$image" 2>/dev/null || true)
  if [[ $have == "$recipe" ]]; then
    echo "build-image[$suite]: $image is current (recipe $recipe), reused"
    exit 0
  fi
  echo "build-image[$suite]: $image has recipe '${have:-none}', want $recipe: rebuilding"
  old_id=$(podman image inspect --format '{{.Id}}' "$image")
fi

# --- mirror: the same Debian mirror the host's apt uses -----------------------------------------
step="mirror"
mirror=${FTPSKIT_MIRROR:-}
if [[ -z $mirror ]]; then
  # One-line sources (deb URI SUITE ...) and deb822 (URIs: ...); the first archive that is not
  # the security archive.
  mirror=$(
    {
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([a-z]+:\/\/[^[:space:]]+).*/\2/p'
      cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -nE 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p'
    } | grep -v -e security -e '^$' | head -n1 || true
  )
  mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}
echo "build-image[$suite]: building $image (recipe $recipe) from $mirror"

# --- debootstrap -------------------------------------------------------------------------------
step="debootstrap"
start=$SECONDS
rootfs=$cache/rootfs-$suite
debs=$cache/debs-$suite
rm -rf "$rootfs"
mkdir -p "$rootfs" "$debs"
log=$cache/debootstrap-$suite.log
if ! debootstrap --variant=minbase --include="$packages" --cache-dir="$debs" \
  "$suite" "$rootfs" "$mirror" >"$log" 2>&1; then
  # debootstrap's inner log (dpkg errors) first, then its own messages (E: ...) last.
  [[ -f $rootfs/debootstrap/debootstrap.log ]] && tail -n 15 "$rootfs/debootstrap/debootstrap.log" >&2
  tail -n 10 "$log" >&2
  fail "debootstrap $suite from $mirror (full log: $log)"
fi
echo "build-image[$suite]: debootstrap done in $((SECONDS - start)) s"

# --- finalize and import -----------------------------------------------------------------------
step="finalize"
bash "$recipe_dir/finalize.sh" "$rootfs" || fail "lab/images/finalize.sh $rootfs"

step="podman import"
tar --numeric-owner -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL ftpskit.recipe=$recipe" \
  --change "LABEL ftpskit.suite=$suite" \
  --message "ftps-kit lab image, debian $suite, recipe $recipe" \
  - "$image" >/dev/null || fail "podman import $image"
rm -rf "$rootfs"
# The previous build of this image only (never others'); kept while a container still uses it.
if [[ -n ${old_id:-} ]]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi

step="check"
got=$(podman image inspect --format '{{index .Labels "ftpskit.recipe"}}' "$image") \
  || fail "podman image inspect $image"
[[ $got == "$recipe" ]] || fail "$image carries recipe '$got', expected $recipe"
echo "build-image[$suite]: built $image in $((SECONDS - start)) s"
