#!/usr/bin/env bash
# Start the head node of a resnet-search Ray cluster, token authentication on.
#   bash cluster/start-head.sh [--port=6379] [--block] [any other `ray start` option]
# - Works from any shell: finds the project's environment (see _env.sh).
# - Token: uses RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token, generated (0600)
#   on first use. Copy it to every worker and every machine that submits searches.
# - Starts the dashboard and its Jobs API (`resnet-search submit` talks to it) on 127.0.0.1:8265
#   unless you pass --dashboard-host / --dashboard-port. Anyone who reaches the Jobs API can run
#   code on the cluster (CVE-2023-48022): reach it through an SSH tunnel, never publicly.
# - --node-ip-address=127.0.0.1 keeps every socket of the node on loopback (a one-machine
#   cluster); any other address is what Ray advertises, and Ray then listens on all interfaces.
# - Stop it with cluster/stop.sh; with --block, SIGTERM or Ctrl-C stops it too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_env.sh"
source "$here/_node.sh"
source "$here/_token.sh"

rs_token_ready head
args=("$@")
[ -n "$(rs_option --port "$@")" ] || args+=(--port=6379)
[ -n "$(rs_option --include-dashboard "$@")" ] || args+=(--include-dashboard=true)
[ -n "$(rs_option --dashboard-host "$@")" ] || args+=(--dashboard-host=127.0.0.1)
rs_run_node head --head "${args[@]}"
