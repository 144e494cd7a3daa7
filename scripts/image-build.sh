#!/usr/bin/env bash
# Builds the image pktpath:0.1.0 with podman from Debian's packages (no container registry): the base
# of scripts/image-base.sh imported, the package of `npm pack` installed with `npm install -g` into
# the build context, deploy/Containerfile. podman's storage and configuration are the caller's:
# CONTAINERS_CONF, CONTAINERS_STORAGE_CONF (test/e2e/image.test.ts points them at private ones).
# Prints the base's time (built or cached), the image build's and the image's size.
# The tag is $PKTPATH_IMAGE (default localhost/pktpath:0.1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
image=${PKTPATH_IMAGE:-localhost/pktpath:0.1.0}
base=localhost/pktpath-base:0.1.0
command -v podman >/dev/null || { echo 'pktpath image: podman is missing (apt-get install podman)' >&2; exit 1; }

ms() { echo $(( ($2 - $1) / 1000000 )); }
work=$(mktemp -d /tmp/pktpath-image-XXXXXX)
trap 'rm -rf "$work"' EXIT

mapfile -t made < <(bash scripts/image-base.sh)
[ ${#made[@]} -eq 2 ] || { echo 'pktpath image: scripts/image-base.sh made no base' >&2; exit 1; }
echo "${made[1]}"

t0=$(date +%s%N)
podman import --quiet "${made[0]}" "$base" >/dev/null
# What `npm test` built is what is packed (`npm pack` alone builds first); npm installs it with its
# dependencies (from npm's cache or registry) into the context, as it would under /usr/local.
npm pack --silent ${PKTPATH_PACK_IGNORE_SCRIPTS:+--ignore-scripts} --pack-destination "$work" >/dev/null
npm install -g --prefix "$work/prefix" --prefer-offline --no-audit --no-fund --loglevel=error "$work"/pktpath-*.tgz >/dev/null
mkdir "$work/context"
mv "$work/prefix/lib/node_modules/pktpath" "$work/context/pktpath"
podman build --quiet --pull=never --network=none --build-arg "BASE=$base" -t "$image" -f deploy/Containerfile "$work/context" >/dev/null
t1=$(date +%s%N)
bytes=$(podman image inspect --format '{{.Size}}' "$image")
base_bytes=$(podman image inspect --format '{{.Size}}' "$base")
echo "build: $(ms "$t0" "$t1") ms (import of the base, npm pack, npm install -g, podman build)"
awk -v i="$image" -v b="$bytes" -v r="$base_bytes" 'BEGIN {
  printf "image: %s, %.1f MB (%d bytes): the Debian base %.1f MB, pktpath and its dependencies %.1f MB\n", i, b / 1e6, b, r / 1e6, (b - r) / 1e6 }'
