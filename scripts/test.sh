#!/usr/bin/env bash
# The test command. Installs what is missing, starts a throwaway PostgreSQL cluster and Redis
# server on free loopback ports, and runs pytest twice:
#   1. the whole suite against PostgreSQL (postgres, redis and browser tests included);
#   2. again against SQLite, the default database, everything whose outcome can depend on the
#      database: not the engine's tests (no database at all), not the browser and real-worker
#      tests (they ran in pass 1 and drive the same ORM code through a page or a worker), so
#      that CI stays well within its time budget on 2 cores.
# Exits non-zero if either pass fails. Extra arguments go to both pytest runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

bash scripts/install.sh
PY="$ROOT/.venv/bin/python"

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

SERVICES_DIR="$(mktemp -d /tmp/sade-test-services.XXXXXX)"
PG_DIR="$SERVICES_DIR"  # the cluster in pg/, its socket and logs beside it
REDIS_PID=""

cleanup() {
    local rc=$?
    trap '' INT TERM  # a second signal must not leave the servers running
    bash scripts/throwaway_pg.sh stop "$PG_DIR" || true
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$SERVICES_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_postgres() {
    PG_URL="$(bash scripts/throwaway_pg.sh start "$PG_DIR")"
    log "PostgreSQL on ${PG_URL#postgres://postgres@} ($PG_DIR)"
}

start_redis() {
    local port
    port="$(free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$SERVICES_DIR" --logfile "$SERVICES_DIR/redis.log" &
    REDIS_PID=$!
    REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 1 100); do
        if "$PY" -c "import redis, sys; redis.Redis.from_url(sys.argv[1]).ping()" "$REDIS_URL" 2>/dev/null; then
            log "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$port"
            return
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$SERVICES_DIR/redis.log" >&2
    echo "test.sh: redis-server did not start" >&2
    exit 1
}

# The script owns where the databases and the broker are; a developer's shell settings for
# them must not leak into a pass.
unset DATABASE_URL CELERY_BROKER_URL SADE_DATA_DIR

start_postgres
start_redis

# Screenshots of this run only (browser tests write them; a person looks at them afterwards).
rm -rf test-artifacts/screenshots
mkdir -p test-artifacts/screenshots
export SADE_TEST_REDIS_URL="$REDIS_URL"
export PYTHONUNBUFFERED=1

# Runs one pytest pass; records its exit code and duration. Exit code 5 (nothing collected)
# means the selection is broken, so it counts as a failure rather than a pass.
declare -a SUMMARY=()
FAILED=0
run_pass() {
    local name="$1"; shift
    local start rc=0
    start=$(date +%s)
    log "pass '$name': pytest $*"
    "$PY" -m pytest "$@" || rc=$?
    local secs=$(( $(date +%s) - start ))
    local verdict="passed"
    if [ "$rc" -eq 5 ]; then
        verdict="FAILED (no tests collected)"
    elif [ "$rc" -ne 0 ]; then
        verdict="FAILED (pytest exit $rc)"
    fi
    [ "$rc" -eq 0 ] || FAILED=1
    SUMMARY+=("$(printf '%-32s %-28s %4ds' "$name" "$verdict" "$secs")")
}

# Each pass gets its own data directory (media, embeddings, broker folders, the SQLite test
# database), so runs neither see nor clobber var/ of a developer's `make run`.
PASS_DATA="$SERVICES_DIR/data"
mkdir -p "$PASS_DATA/postgres" "$PASS_DATA/sqlite"

SADE_DATA_DIR="$PASS_DATA/postgres" DATABASE_URL="$PG_URL" \
    run_pass "1: all tests, PostgreSQL" --durations=15 "$@"
SADE_DATA_DIR="$PASS_DATA/sqlite" \
    run_pass "2: database-facing, SQLite" -m "not postgres and not browser and not redis" \
    --ignore=tests/engine --durations=15 "$@"

echo
log "summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if [ -n "$(ls -A test-artifacts/screenshots 2>/dev/null)" ]; then
    echo "  screenshots: test-artifacts/screenshots/ ($(ls test-artifacts/screenshots | wc -l) files)"
fi
if [ "$FAILED" -ne 0 ]; then
    log "FAILED"
    exit 1
fi
log "all passes passed"
