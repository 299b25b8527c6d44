#!/usr/bin/env bash
# Add this machine to a resnet-search Ray cluster as a worker node.
#   bash cluster/join.sh HEAD:PORT [--block] [any other `ray start` option, e.g. --num-gpus=8]
# Needs the head's token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (0600).
# A loopback HEAD (127.0.0.1:PORT, a one-machine cluster) puts this node on loopback too.
# Stop it with cluster/stop.sh; with --block, SIGTERM or Ctrl-C stops it too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: bash cluster/join.sh HEAD:PORT [ray start options]" >&2
  exit 2
fi
source "$here/_env.sh"
source "$here/_node.sh"
source "$here/_token.sh"

rs_token_ready worker
address="$1"; shift
args=("$@")
# A loopback head only listens on loopback: this node must use loopback as well.
if rs_is_loopback "${address%:*}" && [ -z "$(rs_option --node-ip-address "$@")" ]; then
  args+=(--node-ip-address=127.0.0.1)
fi
rs_run_node worker --address="$address" "${args[@]}"
