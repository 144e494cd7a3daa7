#!/usr/bin/env bash
# The root filesystem deploy/Containerfile starts from, built by mmdebstrap from Debian's packages
# through this machine's apt mirrors (no container registry needed): Node 20 and the runtime
# libraries pktpath binds, nothing else. Debian 13 (trixie): its nodejs is Node 20 (bookworm's is 18).
# Slim like Docker's debian:*-slim: no documentation, manual pages or translations.
# Cached in $PKTPATH_IMAGE_CACHE (default /var/cache/pktpath-image) under a key made of the suite,
# the package lists, the options and the mirrors: a second run with the same lists is a lookup.
# Delete the tarball to take newer packages (security updates) into the base.
# Prints the tarball's path, then `base: cached|built in N ms`.
set -euo pipefail
suite=trixie
packages=(nodejs libbpf1 libpcap0.8t64 libnftables1 iproute2)
cache=${PKTPATH_IMAGE_CACHE:-/var/cache/pktpath-image}
slim=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias')

for cmd in mmdebstrap apt-get sha256sum; do
  command -v "$cmd" >/dev/null || { echo "pktpath image: $cmd is missing (apt-get install mmdebstrap)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo 'pktpath image: mmdebstrap runs as root here (run as root)' >&2; exit 1; }

# This machine's Debian mirrors, as apt is configured: those serving its own release (and its
# security updates), not other vendors' repositories.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirrors=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' | sort -u)
archive=$(awk -v r="$codename" '$2 == r { print $1; exit }' <<<"$mirrors")
security=$(awk -v r="$codename-security" '$2 == r { print $1; exit }' <<<"$mirrors")
[ -n "$codename" ] && [ -n "$archive" ] ||
  { echo "pktpath image: no mirror of this Debian release ('$codename') in apt's sources (apt-get indextargets)" >&2; exit 1; }
sources=("deb $archive $suite main" "deb $archive $suite-updates main")
[ -n "$security" ] && sources+=("deb $security $suite-security main")

key=$(printf '%s\n' "$suite" "${packages[*]}" "${slim[*]}" "${sources[@]}" | sha256sum | cut -c1-16)
tarball="$cache/base-$key.tar"
t0=$(date +%s%N)
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp --suffix=.tar "$cache/.base-XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  mmdebstrap --quiet --mode=root --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "${slim[@]}" \
    "$suite" "$tmp" "${sources[@]}" >&2
  chmod 644 "$tmp"
  mv "$tmp" "$tarball"
  state=built
else
  state=cached
fi
echo "$tarball"
echo "base: $state in $(( ($(date +%s%N) - t0) / 1000000 )) ms ($suite: ${packages[*]}; $(( $(stat -c %s "$tarball") / 1000000 )) MB)"
