"""Health commands for the containers of deploy/docker-compose.yml; exit 0 when healthy, 1 with a
line on stderr when not:

    python -m deploy.healthcheck web [URL]          GET URL (the web process's /healthz): 200?
    python -m deploy.healthcheck worker NAME        does the Celery worker NAME@<this host> answer
                                                    a ping through the broker?
    python -m deploy.healthcheck beat FILE [SECS]   has Celery beat written its schedule FILE in
                                                    the last SECS seconds (default 900)?

The worker check goes through the broker on purpose: a worker that runs but no longer hears the
broker takes no work, and is unhealthy. Beat rewrites its schedule file whenever it sends a task
(every 5 minutes: CELERY_BEAT_SCHEDULE's expire-holds) and at least every few minutes besides.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/healthz"
PING_TIMEOUT_SECONDS = 5.0
BEAT_MAX_AGE_SECONDS = 900


def check_web(url: str) -> str | None:
    """None if ``url`` answers 200, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def check_worker(name: str, host: str | None = None) -> str | None:
    """None if the worker ``name@host`` (this machine by default) answers a ping."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    from deploy.celery import app

    node = f"{name}@{host or socket.gethostname()}"
    try:
        replies = app.control.ping(destination=[node], timeout=PING_TIMEOUT_SECONDS)
    except Exception as exc:  # the broker itself is unreachable
        return f"cannot reach the broker to ping {node}: {exc.__class__.__name__}: {exc}"
    if not any(node in reply for reply in replies):
        return f"worker {node} did not answer a ping in {PING_TIMEOUT_SECONDS:.0f} s"
    return None


def check_beat(schedule: Path, max_age: float = BEAT_MAX_AGE_SECONDS) -> str | None:
    """None if a file of the beat schedule ``schedule`` (shelve may add a suffix) was written in
    the last ``max_age`` seconds."""
    files = [p for p in schedule.parent.glob(f"{schedule.name}*") if p.is_file()]
    if not files:
        return f"no beat schedule file {schedule}"
    age = time.time() - max(p.stat().st_mtime for p in files)
    if age > max_age:
        return f"beat schedule {schedule} last written {age:.0f} s ago (limit {max_age:.0f} s)"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.healthcheck", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    web = sub.add_parser("web")
    web.add_argument("url", nargs="?", default=DEFAULT_URL)
    worker = sub.add_parser("worker")
    worker.add_argument("name", help="the worker's --hostname before the @, e.g. gpu")
    worker.add_argument("--host", help="default: this machine's hostname (%%h)")
    beat = sub.add_parser("beat")
    beat.add_argument("schedule", type=Path)
    beat.add_argument("max_age", type=float, nargs="?", default=BEAT_MAX_AGE_SECONDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.role == "web":
        problem = check_web(args.url)
    elif args.role == "worker":
        problem = check_worker(args.name, args.host)
    else:
        problem = check_beat(args.schedule, args.max_age)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
