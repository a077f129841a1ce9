#!/usr/bin/env bash
# pg_harness.sh — a throw-away PostgreSQL server for the store tests (Debian's postgresql package).
#   pg_harness.sh start DIR   initdb + pg_ctl start in DIR (unix socket in DIR, no TCP); prints the libpq
#                             connection URL on stdout. As root the server runs as the system user `fkpg`
#                             (created when missing: PostgreSQL refuses to run as root).
#   pg_harness.sh stop DIR    stops the server (fast shutdown); the caller removes DIR.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pg_harness.sh start|stop DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "pg_harness: initdb not found under /usr/lib/postgresql/*/bin (Debian package postgresql; run scripts/setup)" >&2; exit 1; }

as_pg() { # run a command as the server's user
  if [ "$(id -u)" = 0 ]; then runuser -u fkpg -- "$@"; else "$@"; fi
}

case $cmd in
start)
  if [ "$(id -u)" = 0 ]; then
    id fkpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin fkpg
    chown fkpg "$dir"
  fi
  chmod 700 "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U fkpg -A trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # unix socket only, in DIR: no port clashes with other runs or a system server
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=on -c max_connections=20" start \
    >/dev/null 2>&1 || { cat "$dir/server.log" >&2; exit 1; }
  echo "postgresql:///postgres?host=$dir&user=fkpg"
  ;;
stop)
  [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: pg_harness.sh start|stop DIR" >&2; exit 2 ;;
esac
