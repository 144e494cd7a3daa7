#!/usr/bin/env bash
# Builds pktpath: the eBPF probes (clang, CO-RE) and the TypeScript (tsc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-probes.sh
npx tsc -p .
