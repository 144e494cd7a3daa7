#!/usr/bin/env bash
# Builds pktpath: the eBPF probes (clang, CO-RE), the TypeScript (tsc), and the
# command's modules bundled (esbuild) with V8's code cache for them: one file, compiled from the
# cache, to load at start instead of ~120 modules.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-probes.sh
npx tsc -p .
# The CRI messages pktpath reads (src/kernel/cri.ts loads them beside the modules).
cp src/kernel/cri.proto dist/src/kernel/cri.proto
# The schemas' validators, compiled once here rather than at each start (src/regress/schema-checks.d.ts).
node scripts/schema-checks.mjs
rm -rf dist/src/bundle
# One CommonJS file, for bin/pktpath to compile with V8's code cache: Node 20 keeps none for ES
# modules, and compiling them was ~45 ms of every start (~75 ms wall with the linking of the
# chunks). Every dependency is in it but koffi (native) and those required only by the commands
# that use them (yaml, fast-xml-parser, cli-table3, gRPC for the container runtime). The bundle sits at the same depth as the
# modules it is made of, so their paths relative to the repository hold; import.meta.url is the
# bundle's own, which bin/pktpath passes in.
npx esbuild dist/src/cli/main.js --bundle --format=cjs --platform=node --target=node20 \
  --external:koffi --external:yaml --external:fast-xml-parser --external:@grpc/grpc-js --external:@grpc/proto-loader \
  --define:import.meta.url=__pktpathModuleUrl \
  --outfile=dist/src/bundle/main.cjs --log-level=warning
# The code cache is made by bin/pktpath itself: V8 takes a cache only from the same node with the same flags.
# Without one pktpath still starts, compiling the bundle each time.
PKTPATH_WRITE_CODE_CACHE=1 bin/pktpath --version > /dev/null || echo "pktpath build: no code cache made (bin/pktpath --version failed); starts will compile the bundle" >&2
