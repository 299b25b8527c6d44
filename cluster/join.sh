#!/usr/bin/env bash
# Add this machine to a resnet-search Ray cluster as a worker node.
#   bash cluster/join.sh HEAD:PORT [any other `ray start` option, e.g. --num-gpus=8]
# Needs the head's token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash cluster/join.sh HEAD:PORT [ray start options]" >&2
  exit 2
fi
if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ -z "${RAY_AUTH_TOKEN_PATH:-}" ] \
   && [ ! -f "$HOME/.ray/auth_token" ]; then
  echo "no Ray token here: copy the head's ~/.ray/auth_token to $HOME/.ray/auth_token," \
       "or set RAY_AUTH_TOKEN" >&2
  exit 2
fi
address="$1"; shift
RAY_AUTH_MODE=token exec ray start --address="$address" --disable-usage-stats "$@"
