#!/usr/bin/env bash
# A team's MLflow tracking server: PostgreSQL backend store, artifacts served by the server,
# basic auth with the admin password taken from MLFLOW_ADMIN_PASSWORD. See mlflow-server.md.
#
#   MLFLOW_ADMIN_PASSWORD=... bash cluster/mlflow-server.sh start --data DIR [--artifacts DIR]
#        [--host 127.0.0.1] [--port 5000] [--workers 2] [--allowed-hosts LIST]
#   bash cluster/mlflow-server.sh stop   --data DIR
#   bash cluster/mlflow-server.sh status --data DIR
#
# DIR (local disk) holds the PostgreSQL cluster (made on the first start), its socket, the auth
# config, the logs and the server's pid; --artifacts (default DIR/artifacts) is where uploaded
# artifacts land, e.g. on shared storage. `mlflow` must be on PATH (run it through
# `bash .ci/env bash cluster/mlflow-server.sh ...` or with the project's venv active).
# Exit codes: 0 done, 1 failed (the log's tail is shown), 2 bad usage or configuration.
set -Eeuo pipefail
# A command failing where no message was planned still says what failed.
trap 'say "failed: $BASH_COMMAND (line $LINENO)"' ERR

# MLflow's historical default admin password (basic_auth.ini before 3.x): public knowledge.
LEGACY_DEFAULT_PASSWORD="password1234"
ADMIN_USER="${MLFLOW_ADMIN_USERNAME:-admin}"
DB_ROLE="mlflow"

say() { echo "[mlflow-server] $*" >&2; }
usage() { say "$*"; say "usage: $0 start|stop|status --data DIR [options]; see cluster/mlflow-server.md"; exit 2; }
bad() { say "$*"; exit 2; }  # a configuration the recipe refuses: the message says what to do
die() { say "$*"; exit 1; }

command="${1:-}"
[ -n "$command" ] || usage "missing command"
shift
data="" artifacts="" host="127.0.0.1" port="5000" workers="2" allowed_hosts=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data|--artifacts|--host|--port|--workers|--allowed-hosts)
      [ $# -ge 2 ] || usage "$1 needs a value"
      case "$1" in
        --data) data="$2" ;; --artifacts) artifacts="$2" ;; --host) host="$2" ;;
        --port) port="$2" ;; --workers) workers="$2" ;; --allowed-hosts) allowed_hosts="$2" ;;
      esac
      shift 2 ;;
    *) usage "unknown option $1" ;;
  esac
done
case "$command" in start|stop|status) ;; *) usage "unknown command '$command'" ;; esac
[ -n "$data" ] || usage "--data DIR is required (where the database and the server's state live)"
# The paths go into PostgreSQL's command line and a SQLAlchemy URI: keep them plain.
[[ "$data$artifacts" =~ [[:space:]\'\"\\\?\#%] ]] && bad "--data/--artifacts: use a path without spaces, quotes, ?, # or %"
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || usage "--port $port: not a TCP port"
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || usage "--workers $workers: not a positive number"
if [ "$command" = start ]; then
  mkdir -p "$data"
elif [ ! -d "$data" ]; then
  bad "--data $data: no such directory (the one given to start)"
fi
data="$(cd "$data" && pwd)"
artifacts="$(realpath -m "${artifacts:-$data/artifacts}")"
# PostgreSQL's tools, run as another user, would warn about a working directory they cannot read.
cd "$data"
pgdata="$data/postgres"
sock="$data/socket"
state="$data/server"
logs="$data/logs"
pidfile="$state/mlflow.pid"
# The UNIX socket path is limited to 107 bytes by the kernel.
[ "${#sock}" -le 90 ] || bad "--data $data: path too long for PostgreSQL's socket (83 characters at most)"

# --- PostgreSQL: the distribution's binaries, run as a dedicated user when we are root --------
pg_bin="${PG_BIN:-}"
if [ -z "$pg_bin" ]; then
  # Debian/Ubuntu keep initdb and pg_ctl out of PATH, one directory per major version.
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { pg_bin="$dir"; break; }
  done
  [ -n "$pg_bin" ] || { command -v initdb >/dev/null && pg_bin="$(dirname "$(command -v initdb)")"; } || true
fi
[ -n "$pg_bin" ] && [ -x "$pg_bin/pg_ctl" ] || bad "PostgreSQL not found: install it (Debian: apt-get install postgresql) or set PG_BIN to the directory holding initdb and pg_ctl"

# PostgreSQL refuses to run as root. As root (CI, a service host) it runs as a system user,
# `postgres` unless MLFLOW_PG_OS_USER names another; as a normal user it runs as that user.
if [ "$(id -u)" -eq 0 ]; then
  pg_user="${MLFLOW_PG_OS_USER:-postgres}"
  id -u "$pg_user" >/dev/null 2>&1 || bad "running as root: PostgreSQL needs a non-root system user '$pg_user' (useradd --system $pg_user, or set MLFLOW_PG_OS_USER)"
  as_pg() { runuser -u "$pg_user" -- "$@"; }
else
  pg_user="$(id -un)"
  as_pg() { "$@"; }
fi
pg_ctl_() { as_pg "$pg_bin/pg_ctl" -D "$pgdata" "$@"; }
psql_() { as_pg "$pg_bin/psql" -h "$sock" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAX "$@"; }

pg_running() { [ -f "$pgdata/PG_VERSION" ] && pg_ctl_ status >/dev/null 2>&1; }

# The server's pid file holds "PID START": the start time (in clock ticks since boot) makes sure
# a stop never signals an unrelated process that reused the pid.
start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
server_pid() {
  [ -f "$pidfile" ] || return 1
  local pid started
  read -r pid started <"$pidfile" || return 1
  [ -n "$pid" ] && [ "$(start_time "$pid")" = "$started" ] && echo "$pid"
}

start_postgres() {
  mkdir -p "$logs"
  if [ "$(id -u)" -eq 0 ]; then
    # The postgres user must reach DIR: traversable, not listable, by others.
    chmod 711 "$data"
    as_pg test -x "$data" || bad "--data $data: user '$pg_user' cannot reach it (make its parent directories traversable: chmod o+x) or pick another directory"
  fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "first start: creating the database cluster in $pgdata"
    install -d -m 700 -o "$pg_user" "$pgdata"
    # Local socket connections only (trust, in a 0700 directory: only $pg_user and root get
    # in); TCP is refused outright and, below, not even listened on.
    as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=reject >"$logs/initdb.log" 2>&1 \
      || { tail -n 20 "$logs/initdb.log" >&2; die "initdb failed (log: $logs/initdb.log)"; }
  fi
  install -d -m 700 -o "$pg_user" "$sock"
  touch "$logs/postgres.log" && chown "$pg_user" "$logs/postgres.log"
  if ! pg_running; then
    started_pg=1
    # -t: pg_ctl's wait; a start that is only slow (a loaded machine) must not be called a
    # failure, and one that fails ends pg_ctl's wait at once.
    pg_ctl_ -w -t 600 -l "$logs/postgres.log" \
      -o "-c listen_addresses='' -k $sock -c unix_socket_permissions=0700" start >/dev/null \
      || { tail -n 20 "$logs/postgres.log" >&2; die "PostgreSQL did not start (log: $logs/postgres.log)"; }
  fi
  # Idempotent: the role and the two databases (runs, users) are made once.
  [ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_ROLE'")" = 1 ] \
    || psql_ -c "CREATE ROLE $DB_ROLE LOGIN"
  for db in mlflow mlflow_auth; do
    [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] \
      || psql_ -c "CREATE DATABASE $db OWNER $DB_ROLE"
  done
}

stop_postgres() {
  if pg_running; then
    pg_ctl_ -w -t 60 -m fast stop >/dev/null || die "PostgreSQL did not stop (log: $logs/postgres.log)"
    say "PostgreSQL stopped"
  fi
}

stop_server() {
  local pid
  if pid="$(server_pid)"; then
    # The server leads its own process group (setsid below): TERM reaches its uvicorn workers
    # too, and only them.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
      pgrep -g "$pid" >/dev/null || break
      sleep 0.1
    done
    if pgrep -g "$pid" >/dev/null; then
      say "server did not stop within 20 s; killing its process group"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    say "MLflow server stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

# A failed start leaves nothing running that it started (a PostgreSQL already up stays up).
started_pg=0
abandon_start() { [ "$started_pg" = 1 ] && stop_postgres || true; }

url_host() { case "$host" in 0.0.0.0|::|"") echo 127.0.0.1 ;; *:*) echo "[$host]" ;; *) echo "$host" ;; esac; }

start_server() {
  local pid
  command -v mlflow >/dev/null || bad "mlflow is not on PATH: run through 'bash .ci/env bash $0 ...' or activate the project's venv"
  local python
  python="$(dirname "$(command -v mlflow)")/python"
  [ -x "$python" ] || python=python3
  local password="${MLFLOW_ADMIN_PASSWORD:-}"
  [ -n "$password" ] || bad "MLFLOW_ADMIN_PASSWORD is not set: export the admin password you choose (12 characters or more)"
  [ "$password" != "$LEGACY_DEFAULT_PASSWORD" ] || bad "MLFLOW_ADMIN_PASSWORD is MLflow's public default password: choose another"
  [ "${#password}" -ge 12 ] || bad "MLFLOW_ADMIN_PASSWORD is ${#password} characters: MLflow requires 12 or more"
  if pid="$(server_pid)"; then
    die "already running (pid $pid) at http://$(url_host):$port; stop it first: $0 stop --data $data"
  fi
  # A clear refusal beats uvicorn's traceback when the port is taken.
  "$python" - "$host" "$port" <<'EOF' || bad "--host $host --port $port: the address is in use or cannot be bound"
import socket, sys
with socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no listener
    s.bind((sys.argv[1], int(sys.argv[2])))
EOF
  mkdir -p "$artifacts"
  install -d -m 700 "$state"
  # From here on, a start that fails anywhere stops what it started.
  trap '[ $? -eq 0 ] || { stop_server; abandon_start; }' EXIT
  start_postgres
  # CSRF key of the auth app: one per server, the same across its workers and restarts.
  [ -s "$state/flask_secret_key" ] || (umask 077; "$python" -c 'import secrets; print(secrets.token_hex(32))' >"$state/flask_secret_key")
  # Users and permissions live in PostgreSQL too (one backup covers both). Rewritten at each
  # start so the socket path follows the data directory. New users may read every experiment;
  # each owns (manages) those it creates.
  (umask 077; cat >"$state/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = postgresql+psycopg2://$DB_ROLE@/mlflow_auth?host=$sock
admin_username = $ADMIN_USER
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
  )
  local extra=()
  [ -n "$allowed_hosts" ] && extra+=(--allowed-hosts "$allowed_hosts")
  # A failed start shows this start's lines of the log, not an older run's.
  local logged=0
  [ -f "$logs/mlflow.log" ] && logged="$(wc -l <"$logs/mlflow.log")"
  # Own session and process group, so stop signals exactly this server. The admin password
  # reaches MLflow only through its environment (used once: to create the admin user).
  MLFLOW_AUTH_CONFIG_PATH="$state/basic_auth.ini" \
  MLFLOW_AUTH_ADMIN_USERNAME="$ADMIN_USER" \
  MLFLOW_AUTH_ADMIN_PASSWORD="$password" \
  MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$state/flask_secret_key")" \
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}" \
    setsid mlflow server --app-name basic-auth \
      --backend-store-uri "postgresql+psycopg2://$DB_ROLE@/mlflow?host=$sock" \
      --serve-artifacts --artifacts-destination "$artifacts" \
      --host "$host" --port "$port" --workers "$workers" "${extra[@]}" \
      >>"$logs/mlflow.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid $(start_time "$pid")" >"$pidfile"
  local url="http://$(url_host):$port"
  # Up when /health (open without credentials) answers; the first start migrates the schema.
  # Waited for as long as the server lives (a loaded machine only slows it; Ctrl+C gives up),
  # with a line every 30 s; a server that exits ends the wait at once.
  local began=$SECONDS said=$SECONDS
  until "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
      "$url/health" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n "+$((logged + 1))" "$logs/mlflow.log" | tail -n 15 >&2
      die "the MLflow server exited during start-up (log: $logs/mlflow.log)"
    fi
    if [ $((SECONDS - said)) -ge 30 ]; then
      said=$SECONDS
      say "waiting for the MLflow server to answer on $url ($((SECONDS - began)) s so far; load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null) on $(nproc 2>/dev/null) CPUs; log: $logs/mlflow.log)"
    fi
    sleep 0.5
  done
  # MLflow uses the password only to create the admin user: a later change of the variable
  # does not change the stored password. Say so rather than let the admin find out later.
  if ! MLFLOW_ADMIN_PASSWORD="$password" "$python" - "$url" "$ADMIN_USER" <<'EOF'
import base64, os, sys, urllib.error, urllib.request
url, user = sys.argv[1], sys.argv[2]
token = base64.b64encode(f"{user}:{os.environ['MLFLOW_ADMIN_PASSWORD']}".encode()).decode()
request = urllib.request.Request(f"{url}/api/2.0/mlflow/users/get?username={user}",
                                 headers={"Authorization": f"Basic {token}"})
try:
    urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError:
    sys.exit(1)
EOF
  then
    say "warning: MLFLOW_ADMIN_PASSWORD is not the admin's password: it was set at the first start and is not changed by the variable; see 'Users' in cluster/mlflow-server.md"
  fi
  say "MLflow server running at $url (pid $pid, admin user '$ADMIN_USER'); artifacts in $artifacts; logs in $logs"
  echo "$url"
}

case "$command" in
  start) start_server ;;
  stop)
    [ -d "$pgdata" ] || [ -f "$pidfile" ] || { say "nothing to stop in $data"; exit 0; }
    stop_server
    stop_postgres ;;
  status)
    if pid="$(server_pid)"; then say "MLflow server running (pid $pid)"; else say "MLflow server not running"; fi
    if pg_running; then say "PostgreSQL running ($pgdata)"; else say "PostgreSQL not running"; fi
    if server_pid >/dev/null; then exit 0; else exit 1; fi ;;
esac
