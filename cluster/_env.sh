# Sourced by the cluster scripts: finds the project's Python environment, so the scripts work
# from any shell (a login shell on a fresh node has no venv activated). In order:
#   1. RESNET_SEARCH_VENV (a venv holding the project: bin/ray and bin/python)
#   2. the venv `bash .ci/env` builds: ${XDG_CACHE_HOME:-$HOME/.cache}/resnet-search/venv-*
#      (the one keyed on this checkout's pyproject.toml if present, else the newest complete one)
#   3. `ray` on PATH (with the python beside it)
# Sets RS_BIN (the directory holding ray and python), RS_PY, and puts RS_BIN first on PATH so
# every process Ray spawns uses the same interpreter. Exits 2 with one line when none is found.

rs_cluster_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rs_repo_dir="$(dirname "$rs_cluster_dir")"

rs_venv_ok() { [ -x "$1/bin/ray" ] && [ -x "$1/bin/python" ]; }

rs_find_env() {
  if [ -n "${RESNET_SEARCH_VENV:-}" ]; then
    if rs_venv_ok "$RESNET_SEARCH_VENV"; then RS_BIN="$RESNET_SEARCH_VENV/bin"; return 0; fi
    echo "RESNET_SEARCH_VENV=$RESNET_SEARCH_VENV has no bin/ray and bin/python: point it at" \
         "a venv where the project is installed (pip install $rs_repo_dir)" >&2
    exit 2
  fi
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/resnet-search" key="" venv
  # The same key as .ci/env (a hash of the dependency lists), when python3 can read TOML.
  key="$(cd "$rs_repo_dir" && python3 -c 'import json, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(json.dumps([p["dependencies"], p.get("optional-dependencies")], sort_keys=True))' 2>/dev/null \
         | sha256sum | cut -c1-16)" || key=""
  if [ -n "$key" ] && [ -f "$cache/venv-$key/.complete" ] && rs_venv_ok "$cache/venv-$key"; then
    RS_BIN="$cache/venv-$key/bin"; return 0
  fi
  # Newest complete venv first (ls -t sorts on the directories' modification times).
  for venv in $(ls -dt "$cache"/venv-*/ 2>/dev/null); do
    venv="${venv%/}"
    if [ -f "$venv/.complete" ] && rs_venv_ok "$venv"; then RS_BIN="$venv/bin"; return 0; fi
  done
  if command -v ray >/dev/null 2>&1; then
    RS_BIN="$(dirname "$(command -v ray)")"
    if [ -x "$RS_BIN/python" ]; then return 0; fi
  fi
  echo "no resnet-search environment found: run \`bash $rs_repo_dir/.ci/env true\` once to" \
       "build it, or set RESNET_SEARCH_VENV to a venv where the project is installed" >&2
  exit 2
}

rs_find_env
RS_PY="$RS_BIN/python"
export PATH="$RS_BIN:$PATH"
# Token authentication everywhere: every Ray process these scripts start inherits it.
export RAY_AUTH_MODE=token
