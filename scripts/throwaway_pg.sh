#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a free loopback port, for the tests (scripts/test.sh) and the
# benchmarks that need PostgreSQL (benchmarks/bench_scale.py):
#
#   bash scripts/throwaway_pg.sh start DIR   initdb a cluster in DIR/pg, start it, create the
#                                            database "sade", print its URL on stdout
#   bash scripts/throwaway_pg.sh stop DIR    stop the cluster of DIR (DIR itself is the caller's)
#
# Durability is off (fsync, synchronous commit, full-page writes): the data is thrown away.
# initdb refuses to run as root, so as root the cluster belongs to the postgres system user.
# Extra server settings can be passed as "-c name=value" after DIR when starting.
set -euo pipefail

# Debian keeps initdb/pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin.
pg_bindir() {
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    dir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    echo "throwaway_pg.sh: PostgreSQL's initdb not found (scripts/install.sh installs postgresql)" >&2
    exit 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local dir="$1"; shift
    local bin port
    bin="$(pg_bindir)"
    port="$(free_port)"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
    as_pg "$bin/initdb" -D "$dir/pg" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/pg" -l "$dir/postgres.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $*" \
        >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres sade
    echo "postgres://postgres@127.0.0.1:$port/sade"
}

stop() {
    local dir="$1"
    if [ -f "$dir/pg/postmaster.pid" ]; then
        as_pg "$(pg_bindir)/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
    start) [ $# -ge 2 ] || { echo "usage: $0 start DIR [-c name=value ...]" >&2; exit 2; }; shift; start "$@" ;;
    stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
    *) echo "usage: $0 start DIR [-c name=value ...] | stop DIR" >&2; exit 2 ;;
esac
