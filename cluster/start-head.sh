#!/usr/bin/env bash
# Start the head node of a resnet-search Ray cluster with token authentication on.
#   bash cluster/start-head.sh [--port 6379] [any other `ray start` option]
# Generates ~/.ray/auth_token on first use (or uses RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH).
# Copy that token to every worker node and every machine that launches searches.
# The dashboard (Ray's Jobs API runs code for whoever reaches it) stays off unless you pass
# --include-dashboard=true; keep the GCS port on a private network or behind an SSH tunnel.
set -euo pipefail
if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ -z "${RAY_AUTH_TOKEN_PATH:-}" ] \
   && [ ! -f "$HOME/.ray/auth_token" ]; then
  ray get-auth-token --generate >/dev/null
  echo "[cluster] new token in $HOME/.ray/auth_token" >&2
fi
args=("$@")
[[ " $* " == *" --port"* ]] || args+=(--port=6379)
[[ " $* " == *" --include-dashboard"* ]] || args+=(--include-dashboard=false)
RAY_AUTH_MODE=token exec ray start --head --disable-usage-stats "${args[@]}"
