#!/usr/bin/env bash
# `ray status` of a token cluster, without the AuthenticationError traceback Ray prints when
# RAY_AUTH_MODE=token is not set.
#   bash cluster/status.sh [HEAD:PORT]     (default: the head started here, else Ray's own lookup)
# Needs the token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/_env.sh"
source "$here/_node.sh"
address="${1:-}"
if [ -z "$address" ]; then
  # The GCS address of a head started here (start-head.sh recorded it).
  for record in "$RS_STATE"/head-*; do
    address="$(rs_head_address "$record")"
    [ -n "$address" ] && break
  done
fi
# A loopback cluster listens on loopback only; Ray's client would otherwise turn 127.0.0.1 into
# the machine's external address and find nothing there (see _ray_start.py).
if [ -n "$address" ] && rs_is_loopback "${address%:*}"; then
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
fi
exec ray status ${address:+--address="$address"}
