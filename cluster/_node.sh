# Sourced by the cluster scripts (after _env.sh): the nodes they start on this machine, each
# marked so that cluster/stop.sh stops exactly those processes and no other Ray of the user.
# Every process of a node carries RESNET_SEARCH_NODE=<id> in its environment (ray start passes
# its environment to the GCS, raylet, dashboard and every worker), and RS_STATE/<id> records it.

# Where these scripts record the nodes they started on this machine (cluster/stop.sh reads it).
# Per host: a HOME shared over NFS must not let one machine stop another's nodes.
RS_STATE="${RESNET_SEARCH_STATE_DIR:-$HOME/.resnet-search/cluster}/$(hostname)"

rs_is_loopback() {  # 127.x.x.x, ::1 or localhost
  case "$1" in 127.*|::1|\[::1\]|localhost) return 0 ;; *) return 1 ;; esac
}

# The value of a `ray start` option in "$@" (--opt=value or --opt value), or empty.
rs_option() {
  local name="$1" prev=""; shift
  for arg in "$@"; do
    if [ "$prev" = "$name" ]; then echo "$arg"; return; fi
    case "$arg" in "$name="*) echo "${arg#*=}"; return ;; esac
    prev="$arg"
  done
}

# Live pids of one node: the processes whose environment carries RESNET_SEARCH_NODE=<id>, and
# all their descendants. The descendants matter: Ray's agents and workers rename themselves
# (setproctitle: "ray::DashboardAgent", "ray::IDLE"), which wipes /proc/<pid>/environ.
rs_node_pids() {
  local marked
  marked="$(grep -lzx "RESNET_SEARCH_NODE=$1" /proc/[0-9]*/environ 2>/dev/null \
            | sed -e 's|^/proc/||' -e 's|/environ$||' | tr '\n' ' ')" || true
  [ -n "${marked// /}" ] || return 0
  # /proc/<pid>/stat is "pid (comm) state ppid ...": the fields after the last ')' are safe.
  # Read through cat: a process that exits mid-scan must not stop the scan (mawk aborts on a
  # file it cannot open).
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$marked" -v self="$$" '
    { pid = $1; line = $0; sub(/.*\) /, "", line); split(line, f, " ")
      if (f[1] != "Z") parent[pid] = f[2] }
    END { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
          grew = 1
          while (grew) { grew = 0
            for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } }
          for (p in keep) if (p != self && (p in parent)) print p }'
  return 0
}

# Which of these pids still run (a zombie has exited: only its parent's wait is missing).
rs_alive() {
  local pid state
  for pid in "$@"; do
    state="$(sed -e 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || continue
    [ -n "$state" ] && [ "$state" != Z ] && echo "$pid"
  done
  return 0
}

# SIGTERM these pids, up to RESNET_SEARCH_STOP_GRACE seconds (default 10) for them to exit,
# then SIGKILL what is left. Returns 1 if something survives even that.
rs_terminate() {
  local grace="${RESNET_SEARCH_STOP_GRACE:-10}" left="$*" tick=0
  [ -n "$left" ] || return 0
  kill -TERM $left 2>/dev/null || true
  while [ -n "$left" ] && [ "$tick" -lt $((grace * 5)) ]; do
    sleep 0.2; tick=$((tick + 1)); left="$(rs_alive $left)"
  done
  [ -n "$left" ] || return 0
  kill -KILL $left 2>/dev/null || true
  for tick in $(seq 25); do
    left="$(rs_alive $left)"; [ -n "$left" ] || return 0; sleep 0.2
  done
  echo "[cluster] could not stop pids" $left >&2
  return 1
}

# Stop every process of one node. The GCS goes last: a raylet or monitor whose GCS is gone
# keeps retrying it instead of exiting, while with the GCS up they exit within a second or two.
# The pids are collected before any is signalled (a process whose parent died is reparented
# and no longer found as a descendant); the second scan adds what a raylet spawned meanwhile.
rs_stop_node() {
  local id="$1" pids gcs="" rest="" pid ok=0
  pids="$(rs_node_pids "$id")"
  for pid in $pids; do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = gcs_server ]; then gcs+=" $pid"; else rest+=" $pid"; fi
  done
  rs_terminate $rest || ok=1
  rest="$(rs_node_pids "$id")"
  for pid in $gcs; do rest="$(printf '%s\n' $rest | grep -vx "$pid" || true)"; done
  rs_terminate $rest || ok=1
  rs_terminate $gcs || ok=1
  return "$ok"
}

# Start one node: `ray start` with the marker in its environment, its record written first (so a
# signal during the start still finds it). Without --block it returns once Ray has started; with
# --block it stays in the foreground, and SIGTERM/SIGINT/SIGHUP (or Ray exiting) stops the node.
# A failed start leaves no process behind.
rs_run_node() {
  local role="$1"; shift
  local id rc=0 block=0 ray_cmd temp
  id="$role-$(date +%Y%m%d-%H%M%S)-$$"
  mkdir -p "$RS_STATE"
  # Ray's temp dir (its default as in ray._common.utils.get_default_ray_temp_dir): a head
  # records its GCS address there, ray_current_cluster, which stop.sh removes again.
  temp="$(rs_option --temp-dir "$@")"
  temp="${temp:-${RAY_TMPDIR:-${TMPDIR:-/tmp}}/ray}"
  printf 'role=%s\ntemp_dir=%s\nport=%s\nargs=%s\n' \
    "$role" "$temp" "$(rs_option --port "$@")" "$*" >"$RS_STATE/$id"
  for arg in "$@"; do [ "$arg" = "--block" ] && block=1; done
  if rs_is_loopback "$(rs_option --node-ip-address "$@")"; then
    ray_cmd=("$RS_PY" "$rs_cluster_dir/_ray_start.py")
  else
    ray_cmd=(ray start)
  fi
  # Ray's start-up deadlines, as generous as a local launch's (search/run/raystart.py), unless
  # the environment set them: a node started on a loaded machine is slow, not broken (a head's
  # job agent that misses its 30 s takes the raylet down with it). Without the project
  # importable (plain `ray` on PATH), Ray's own defaults stay.
  local setting
  while IFS= read -r setting; do
    [ -n "$setting" ] && export "$setting"
  done < <(PYTHONPATH="$rs_repo_dir${PYTHONPATH:+:$PYTHONPATH}" "$RS_PY" -m search.run.raystart \
             2>/dev/null || true)
  trap 'rs_stop_node "$id"; rs_forget_node "$RS_STATE/$id"; exit 143' TERM
  trap 'rs_stop_node "$id"; rs_forget_node "$RS_STATE/$id"; exit 130' INT
  trap 'rs_stop_node "$id"; rs_forget_node "$RS_STATE/$id"; exit 129' HUP
  RESNET_SEARCH_NODE="$id" "${ray_cmd[@]}" --disable-usage-stats "$@" &
  wait $! || rc=$?
  trap - TERM INT HUP
  if [ "$rc" -ne 0 ] || [ "$block" -eq 1 ]; then
    rs_stop_node "$id" || true
    rs_forget_node "$RS_STATE/$id"
    [ "$rc" -ne 0 ] && echo "[cluster] ray start failed (exit $rc); nothing of this node is left running" >&2
    return "$rc"
  fi
  echo "[cluster] node $id started; stop it with: bash $rs_cluster_dir/stop.sh" >&2
}

# A record's field (role, temp_dir, port, args), or empty.
rs_record() { { sed -n "s/^$2=//p" "$1" 2>/dev/null || true; } | head -n1; }

# The GCS address a head recorded in Ray's temp dir (ray_current_cluster), if it is still this
# head's: another head may have written its own there since.
rs_head_address() {
  local record="$1" port address
  port="$(rs_record "$record" port)"
  address="$(head -n1 "$(rs_record "$record" temp_dir)/ray_current_cluster" 2>/dev/null || true)"
  if [ -n "$port" ] && [[ "$address" == *":$port" ]]; then echo "$address"; fi
  return 0
}

# Forget a stopped node: its record, and the address a head left in Ray's temp dir (a plain
# `ray.init()` would otherwise keep trying to join the dead cluster).
rs_forget_node() {
  local record="$1"
  if [[ "$(basename "$record")" == head-* ]] && [ -n "$(rs_head_address "$record")" ]; then
    rm -f "$(rs_record "$record" temp_dir)/ray_current_cluster"
  fi
  rm -f "$record"
}
