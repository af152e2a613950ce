#!/usr/bin/env bash
# The run command: Python environment (no apt, no server to install), database migrations, demo
# users and dataset, a local Celery worker in the background and the web server in the
# foreground on http://127.0.0.1:8000. Ctrl-C stops both.
#
# Everything lives in SADE_DATA_DIR (default ./var): the SQLite database, images, embeddings,
# checkpoints and the filesystem broker's queue folders.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
HOST="${SADE_HOST:-127.0.0.1}"
PORT="${SADE_PORT:-8000}"

log() { printf '\033[1m[run]\033[0m %s\n' "$*"; }

bash scripts/install.sh --python
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1

DATA_DIR="$("$PY" -c 'from deploy.env import env_path; from pathlib import Path; print(env_path("SADE_DATA_DIR", Path("var").resolve()))')"
# kombu's filesystem transport does not create its folders.
mkdir -p "$DATA_DIR/log" "$DATA_DIR/demo" "$DATA_DIR/broker/queue" "$DATA_DIR/broker/control"

log "database migrations"
"$PY" manage.py migrate --no-input -v 0

# Before the demo images are imported, so their embeddings are computed by the model that will
# answer. Offline it says so in one line and the cold start answers; SADE_AUTO_DOWNLOAD=0 skips it.
log "Meta's vit_b checkpoint"
"$PY" -m deploy.official_model

# The worker and the web server each run in their own process group (setsid), so stopping one
# reaches its children too (prefork pool, autoreloader) whatever signal reached this script.
WORKER_PID=""
SERVER_PID=""
stop_group() {  # pid, seconds to wait for a clean exit
    local pid="$1" grace="$2"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_all() {
    # A second signal (make passes its own on to this script) must not cut the clean-up short.
    trap '' INT TERM
    stop_group "$SERVER_PID" 5
    if [ -n "$WORKER_PID" ] && kill -0 "$WORKER_PID" 2>/dev/null; then
        log "stopping the Celery worker (it finishes the current task, for up to 30 s)"
        stop_group "$WORKER_PID" 30
    fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "Celery worker (queues gpu,cpu; log: $DATA_DIR/log/worker.log)"
setsid "$ROOT/.venv/bin/celery" -A deploy worker -Q gpu,cpu --concurrency 1 --loglevel INFO \
    >>"$DATA_DIR/log/worker.log" 2>&1 </dev/null &
WORKER_PID=$!

log "demo dataset"
"$PY" -m deploy.demo images "$DATA_DIR/demo"
"$PY" manage.py import_images demo "$DATA_DIR/demo" --create

log "demo users (passwords are kept in $DATA_DIR/demo-credentials.json)"
"$PY" -m deploy.demo users "$DATA_DIR/demo-credentials.json" --dataset demo

log "model"
"$PY" -m deploy.demo model

if ! kill -0 "$WORKER_PID" 2>/dev/null; then
    tail -n 30 "$DATA_DIR/log/worker.log" >&2
    echo "run.sh: the Celery worker exited (log above)" >&2
    exit 1
fi
log "web server on http://$HOST:$PORT/ (admin: /admin/, API docs: /api/docs/); Ctrl-C stops it"
setsid "$PY" manage.py runserver "$HOST:$PORT" </dev/null &
SERVER_PID=$!
# Waiting on a background server (not running it in the foreground) lets the traps run as soon
# as a signal arrives.
wait "$SERVER_PID"
