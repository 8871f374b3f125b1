#!/usr/bin/env bash
# Sourced by scripts/dev and scripts/test: makes PostgreSQL and Redis reachable
# at DATABASE_URL / REDIS_URL. Reachable already: used as they are. Otherwise
# local binaries are started (data under .local/), else `docker compose up -d`,
# else a clear message says how to get them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"

# host and port of a URL: scheme://[user[:pass]@]host[:port][/...]
url_host() { local rest="${1#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"; echo "${rest%%:*}"; }
url_port() {
  local rest="${1#*://}"; rest="${rest##*@}"; rest="${rest%%/*}"; rest="${rest%%\?*}"
  if [[ "$rest" == *:* ]]; then echo "${rest##*:}"; else echo "$2"; fi
}
reachable() { timeout 2 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }
wait_for() { # name host port
  for _ in $(seq 1 60); do reachable "$2" "$3" && return 0; sleep 0.5; done
  echo "error: $1 did not come up on $2:$3 within 30 s" >&2; return 1
}
compose_works() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
is_local() { [[ "$1" == "127.0.0.1" || "$1" == "localhost" || "$1" == "::1" ]]; }

ensure_postgres() {
  local host port
  host="$(url_host "$DATABASE_URL")"; port="$(url_port "$DATABASE_URL" 5432)"
  reachable "$host" "$port" && return 0
  if is_local "$host" && command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "starting the local PostgreSQL cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  elif is_local "$host" && bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)" && [ -x "$bin/initdb" ]; then
    echo "starting a PostgreSQL of our own in .local/pgdata (port $port)" >&2
    mkdir -p "$LOCAL"
    [ -d "$LOCAL/pgdata" ] || "$bin/initdb" -D "$LOCAL/pgdata" -U postgres --auth=trust >/dev/null
    "$bin/pg_ctl" -D "$LOCAL/pgdata" -l "$LOCAL/postgres.log" -o "-p $port -k $LOCAL" start >/dev/null
  elif is_local "$host" && compose_works; then
    echo "starting PostgreSQL with docker compose" >&2
    (cd "$ROOT" && docker compose up -d postgres)
  else
    cat >&2 <<MSG
error: PostgreSQL is not reachable at $host:$port (DATABASE_URL).
Start one, for example:  docker compose up -d postgres   (uses docker-compose.yml)
or install it:           apt-get install postgresql
or point DATABASE_URL at a running server.
MSG
    return 1
  fi
  wait_for PostgreSQL "$host" "$port"
}

ensure_redis() {
  local host port
  host="$(url_host "$REDIS_URL")"; port="$(url_port "$REDIS_URL" 6379)"
  reachable "$host" "$port" && return 0
  if is_local "$host" && command -v redis-server >/dev/null 2>&1; then
    echo "starting a Redis of our own (port $port, no persistence)" >&2
    mkdir -p "$LOCAL"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$LOCAL" --logfile "$LOCAL/redis.log" >/dev/null
  elif is_local "$host" && compose_works; then
    echo "starting Redis with docker compose" >&2
    (cd "$ROOT" && docker compose up -d redis)
  else
    cat >&2 <<MSG
error: Redis is not reachable at $host:$port (REDIS_URL).
Start one, for example:  docker compose up -d redis   (uses docker-compose.yml)
or install it:           apt-get install redis-server
or point REDIS_URL at a running server.
MSG
    return 1
  fi
  wait_for Redis "$host" "$port"
}

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/promotions}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
ensure_postgres
ensure_redis
