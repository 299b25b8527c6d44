# Sourced by the cluster scripts: the Ray token, readable by its owner only (0600).
# Ray reads RAY_AUTH_TOKEN, then the file RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token; Ray's own
# `ray get-auth-token --generate` writes that file world-readable (0644), so tighten it.

rs_token_file() {
  if [ -n "${RAY_AUTH_TOKEN_PATH:-}" ]; then echo "$RAY_AUTH_TOKEN_PATH"; else echo "$HOME/.ray/auth_token"; fi
}

# head: generate a token when there is none; worker: refuse to start without one (exit 2).
rs_token_ready() {
  local file
  file="$(rs_token_file)"
  if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ ! -f "$file" ]; then
    if [ "$1" = worker ] || [ -n "${RAY_AUTH_TOKEN_PATH:-}" ]; then
      echo "no Ray token here ($file): copy the head's ~/.ray/auth_token to" \
           "$HOME/.ray/auth_token (chmod 600), or set RAY_AUTH_TOKEN" >&2
      exit 2
    fi
    mkdir -p "$HOME/.ray" && chmod 700 "$HOME/.ray"
    (umask 077 && ray get-auth-token --generate >/dev/null)
    echo "[cluster] new token in $file (0600): copy it to every worker and submitting machine" >&2
  fi
  if [ -f "$file" ] && [ -O "$file" ]; then chmod 600 "$file"; fi
}
