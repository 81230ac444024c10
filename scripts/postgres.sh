#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for Veil's proving-job queue (tests, `make postgres`, the
# README's two-machine setup on one box). Loopback only, trust authentication: never for data you
# keep. PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres`
# system user (or a `veilpg` user created for it).
#
#   scripts/postgres.sh start DIR [PORT]   init (once) and start; prints the database URL
#   scripts/postgres.sh stop DIR           fast shutdown
#   scripts/postgres.sh kill DIR           immediate shutdown (as a crash would)
#   scripts/postgres.sh url DIR            the database URL of a started cluster
#
# The binaries come from $VEIL_PG_BIN, `pg_config --bindir`, or /usr/lib/postgresql/*/bin.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bin() {
    if [ -n "${VEIL_PG_BIN:-}" ] && [ -x "$VEIL_PG_BIN/initdb" ]; then echo "$VEIL_PG_BIN"; return; fi
    if command -v pg_config >/dev/null 2>&1; then
        local d; d="$(pg_config --bindir)"
        if [ -x "$d/initdb" ]; then echo "$d"; return; fi
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [ -x "$d/initdb" ]; then echo "$d"; return; fi
    done
    die "no PostgreSQL server binaries (initdb): install Debian's postgresql package or set VEIL_PG_BIN"
}

# Runs "$@" as the cluster's owner.
as_owner() {
    if [ "$(id -u)" != 0 ]; then "$@"; return; fi
    local user=postgres
    if ! id "$user" >/dev/null 2>&1; then
        user=veilpg
        id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    fi
    chown -R "$user" "$DIR"
    runuser -u "$user" -- "$@"
}

cmd="${1:-}"; DIR="${2:-}"
[ -n "$cmd" ] && [ -n "$DIR" ] || die "usage: postgres.sh start|stop|kill|url DIR [PORT]"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
BIN="$(find_bin)"
PGDATA="$DIR/data"

case "$cmd" in
start)
    port="${3:-}"
    if [ -z "$port" ]; then
        if [ -f "$DIR/port" ]; then port="$(cat "$DIR/port")"; else
            port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        fi
    fi
    echo "$port" > "$DIR/port"
    chmod 0755 "$DIR"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        as_owner "$BIN/initdb" -D "$PGDATA" -U veil -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    as_owner "$BIN/pg_ctl" -D "$PGDATA" -l "$DIR/postgres.log" -w -t 60 \
        -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
        || { tail -20 "$DIR/postgres.log" >&2; die "pg_ctl start failed"; }
    if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$port" -U veil -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'veil'" | grep -q 1; then
        as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U veil veil
    fi
    echo "postgres://veil@127.0.0.1:$port/veil"
    ;;
stop|kill)
    mode=fast; [ "$cmd" = kill ] && mode=immediate
    [ -f "$PGDATA/postmaster.pid" ] || exit 0
    as_owner "$BIN/pg_ctl" -D "$PGDATA" -m "$mode" -w stop >/dev/null
    ;;
url)
    [ -f "$DIR/port" ] || die "$DIR has no started cluster"
    echo "postgres://veil@127.0.0.1:$(cat "$DIR/port")/veil"
    ;;
*) die "unknown command $cmd" ;;
esac
