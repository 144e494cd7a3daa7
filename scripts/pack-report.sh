#!/usr/bin/env bash
# The package as users get it: `npm pack` (which builds first), the tarball's size and file count,
# the time `npm install -g` takes into a prefix of its own, and (root) start → attached of the
# installed pktpath beside the repository's, over RUNS alternated runs each (default 5), narrowed
# to an empty namespace made here. Everything made here is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
tmp=$(mktemp -d /tmp/pktpath-pack-XXXXXX)
ns=pk31-report-$$
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ms() { echo $(( ($2 - $1) / 1000000 )); }

t0=$(date +%s%N)
npm pack --silent --pack-destination "$tmp" >/dev/null
t1=$(date +%s%N)
tarball=$(ls "$tmp"/pktpath-*.tgz)
bytes=$(stat -c %s "$tarball")
files=$(tar tzf "$tarball" | grep -vc '/$')
unpacked=$(tar tzvf "$tarball" | awk '{ s += $3 } END { print s }')
awk -v name="$(basename "$tarball")" -v b="$bytes" -v f="$files" -v u="$unpacked" -v t="$(ms "$t0" "$t1")" 'BEGIN {
  printf "tarball:   %s, %.2f MB (%d bytes), %d files, %.2f MB unpacked; npm pack (with its build) %d ms\n", name, b / 1e6, b, f, u / 1e6, t }'
echo 'largest:'
tar tzvf "$tarball" | sort -k3 -n -r | awk 'NR <= 5 { printf "  %9d  %s\n", $3, $6 }'

t0=$(date +%s%N)
npm install -g --prefix "$tmp/prefix" --prefer-offline --no-audit --no-fund --loglevel=error "$tarball" >/dev/null
t1=$(date +%s%N)
echo "install:   npm install -g --prefix (dependencies from npm's cache where it has them) $(ms "$t0" "$t1") ms"

if [ "$(id -u)" -ne 0 ]; then
  echo 'start → attached: skipped (root only)'
  exit 0
fi
ip netns add "$ns"
# Milliseconds from start to --ready-file, then SIGINT; pktpath's own figure from its attached line.
attach() {
  local bin=$1 ready="$tmp/ready" err="$tmp/err"
  local start end
  start=$(date +%s%N)
  "$bin" --filter-netns "$ns" --ready-file "$ready" >/dev/null 2>"$err" &
  local pid=$!
  while [ ! -e "$ready" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.002; done
  end=$(date +%s%N)
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || { echo "pack-report: $bin failed: $(tail -n 1 "$err")" >&2; exit 1; }
  echo "$(ms "$start" "$end") $(grep -o '([0-9]* ms)' "$err" | tr -d '(ms )' | head -n 1)"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
repo=() installed=() repo_own=() installed_own=()
for _ in $(seq "$runs"); do
  read -r wall own < <(attach bin/pktpath); repo+=("$wall"); repo_own+=("$own")
  read -r wall own < <(attach "$tmp/prefix/bin/pktpath"); installed+=("$wall"); installed_own+=("$own")
done
echo "start → attached, ms (wall from exec to --ready-file; pktpath's own figure in brackets), $runs alternated runs:"
printf '  %-10s median %4s [%s]   runs: %s\n' repository "$(printf '%s\n' "${repo[@]}" | median)" \
  "$(printf '%s\n' "${repo_own[@]}" | median)" "${repo[*]}"
printf '  %-10s median %4s [%s]   runs: %s\n' installed "$(printf '%s\n' "${installed[@]}" | median)" \
  "$(printf '%s\n' "${installed_own[@]}" | median)" "${installed[*]}"
