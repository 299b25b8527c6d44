#!/usr/bin/env bash
# Stop the Ray nodes that cluster/start-head.sh and cluster/join.sh started on this machine,
# and nothing else: unlike `ray stop`, another Ray of yours (a local search, a notebook) keeps
# running. Each node's processes are found by the marker in their environment (see _node.sh):
# SIGTERM, then SIGKILL after RESNET_SEARCH_STOP_GRACE seconds (default 10).
#   bash cluster/stop.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -gt 0 ]; then
  echo "usage: bash cluster/stop.sh  (stops every node the cluster scripts started here)" >&2
  exit 2
fi
# No environment lookup: stopping needs only the shell, and works when the venv is gone.
rs_cluster_dir="$here"
source "$here/_node.sh"

shopt -s nullglob
# Workers first: a raylet whose GCS (on the head) is gone retries it instead of exiting.
records=("$RS_STATE"/worker-* "$RS_STATE"/head-*)
if [ ${#records[@]} -eq 0 ]; then
  echo "[cluster] no node started by the cluster scripts is recorded on this machine"
  exit 0
fi
failed=0
for record in "${records[@]}"; do
  id="$(basename "$record")"
  if rs_stop_node "$id"; then
    rs_forget_node "$record"
    echo "[cluster] stopped node $id"
  else
    failed=1
  fi
done
exit "$failed"
