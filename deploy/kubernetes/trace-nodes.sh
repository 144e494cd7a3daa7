#!/usr/bin/env bash
# Traces one flow on chosen nodes for a set time, then collects each node's trace:
#   deploy/kubernetes/trace-nodes.sh SECONDS 'TCPDUMP EXPRESSION' NODE...
# One Job per node (trace-job.yaml, its nodeName set), their logs' JSON lines
# into ./pktpath-NODE.jsonl. Needs kubectl and the namespace (namespace.yaml).
set -euo pipefail
here=$(dirname "$0")
if [ $# -lt 3 ]; then
  echo "usage: $0 SECONDS 'TCPDUMP EXPRESSION' NODE..." >&2
  exit 2
fi
seconds=$1 filter=$2
shift 2
[[ $seconds =~ ^[1-9][0-9]{0,4}$ ]] || { echo "trace-nodes: SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 2; }
for node in "$@"; do
  # A node's name is a DNS subdomain: nothing sed or YAML would read as syntax.
  [[ $node =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || { echo "trace-nodes: '$node' is not a node name" >&2; exit 2; }
done
kubectl -n pktpath create configmap pktpath-trace --from-literal=filter="$filter" --from-literal=seconds="$seconds" \
  --dry-run=client -o yaml | kubectl apply -f -
for node in "$@"; do
  kubectl -n pktpath delete job "pktpath-trace-$node" --ignore-not-found >/dev/null
  sed -e "s/node-1/$node/g" "$here/trace-job.yaml" | kubectl apply -f -
done
for node in "$@"; do
  kubectl -n pktpath wait --for=condition=complete --timeout="$((seconds + 120))s" "job/pktpath-trace-$node" ||
    echo "trace-nodes: the trace on $node did not complete; its log: kubectl -n pktpath logs job/pktpath-trace-$node" >&2
  # pktpath's status lines share the log with its JSON lines; the trace is the JSON.
  kubectl -n pktpath logs "job/pktpath-trace-$node" | grep '^{' > "pktpath-$node.jsonl" || true
  echo "trace-nodes: $node: $(wc -l < "pktpath-$node.jsonl") records in pktpath-$node.jsonl" >&2
done
