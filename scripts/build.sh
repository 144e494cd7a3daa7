#!/usr/bin/env bash
# Builds pktpath: the eBPF probes (clang, CO-RE), the TypeScript (tsc), and the
# command's modules bundled (esbuild): one file to load at start instead of ~120.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-probes.sh
npx tsc -p .
rm -rf dist/src/bundle
# Dependencies stay packages of their own (koffi's native part among them). The bundle sits at the same
# depth as the modules it is made of, so their paths relative to the repository hold.
npx esbuild dist/src/cli/main.js --bundle --splitting --format=esm --platform=node --target=node20 \
  --packages=external --outdir=dist/src/bundle --log-level=warning
