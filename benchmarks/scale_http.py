"""The HTTP side of benchmarks/bench_scale.py: gunicorn, and timing each endpoint in turn."""

from __future__ import annotations

import http.client
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_load import wait_ready
from benchmarks.common import percentiles

ROOT = Path(__file__).resolve().parent.parent
# Requests slower than this are sampled once; the database cancels statements running longer
# than STATEMENT_TIMEOUT_MS (the answer, a 500, is recorded as "timeout").
SLOW_ENOUGH_S = 30.0
STATEMENT_TIMEOUT_MS = 600_000


def start_gunicorn(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    url = env["DATABASE_URL"]
    server_env = {
        **env,
        "DATABASE_URL": f"{url}{'&' if '?' in url else '?'}options=-c%20statement_timeout%3D"
        f"{STATEMENT_TIMEOUT_MS}",
        "SADE_WEB_BIND": f"127.0.0.1:{port}",
        "SADE_WEB_WORKERS": "2",
        "SADE_WEB_THREADS": "4",
        "SADE_WEB_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "SADE_WEB_LOG_LEVEL": "warning",
        "SADE_WEB_TIMEOUT": str(STATEMENT_TIMEOUT_MS // 1000 + 60),
    }
    import os

    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
    command += ["--access-logfile", "/dev/null", "deploy.wsgi:application"]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **server_env},
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(port, server)
    return server


def stop_gunicorn(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


class HttpProbe:
    """One client timing one request after the other (a connection each: gunicorn closes idle
    keep-alive connections within seconds), as a token user or, for the dashboard pages, a
    signed-in staff member."""

    def __init__(self, port: int, setup: dict) -> None:
        self.port, self.setup = port, setup
        self.rng = random.Random(0)
        from benchmarks.scale_fill import mask_pool

        pool = mask_pool(seed=2)[:20]
        self.rles = [json.loads(m.rle_json) for m in pool]

    def call(self, method: str, path: str, body=None, *, who: str = "admin") -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if who == "session":
            name, key = self.setup["session"]
            headers["Cookie"] = f"{name}={key}"
        else:
            headers["Authorization"] = f"Token {self.setup[f'{who}_token']}"
        data = json.dumps(body) if body is not None else None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
        conn.request(method, path, data, headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, json.loads(raw) if raw and is_json else raw

    def timed(self, *args, **kwargs) -> tuple[float, object]:
        start = time.perf_counter()
        _, answer = self.call(*args, **kwargs)
        return time.perf_counter() - start, answer

    def _keyset_anchor(self, dataset: int) -> int | None:
        """The image before the last page of the benchmark's listing (None where the server
        has no keyset pages: a run of the code before them)."""
        listing = f"/api/images/?dataset={dataset}&stage=3&status=pending&limit=1"
        _, first = self.call("GET", listing)
        _, before_last = self.call("GET", f"{listing}&offset={max(0, first['count'] - 101)}")
        anchor = before_last["results"][0]["id"]
        _, keyset = self.call("GET", f"{listing}&after={anchor}")
        return anchor if "count" not in keyset else None

    def measure(self, samples: int, slow_samples: int) -> dict[str, float]:
        dataset = self.setup["dataset"]
        times: dict[str, list[float]] = {}

        def add(name: str, seconds: float) -> None:
            times.setdefault(name, []).append(seconds)

        # Warm up: each worker opens its connection and loads the model on a first predict.
        real = self.setup["real_image"]
        click = {"points": [[500, 400]], "labels": [1]}
        for _ in range(6):
            self.call("POST", f"/api/images/{real}/predict/", click, who="annotator")
        _, first = self.call("GET", f"/api/images/?dataset={dataset}&limit=1")
        count = first["count"]
        lowest = first["results"][0]["id"]
        keyset_anchor = self._keyset_anchor(dataset)
        for i in range(samples):
            seconds, image = self.timed(
                "POST", f"/api/datasets/{dataset}/next-image/", {"stage": 1}, who="annotator"
            )
            add("claim next image (stage 1)", seconds)
            body = {
                "image": image["id"],
                "rle": self.rles[i % len(self.rles)],
                "source": "model_assisted",
                "seconds_spent": 12.0,
                "predicted_iou": 0.93,
                "prompt": {"points": [[500, 400]], "labels": [1]},
            }
            add("save a mask", self.timed("POST", "/api/masks/", body, who="annotator")[0])
            self.call("POST", f"/api/images/{image['id']}/release/", {}, who="annotator")
            image_id = lowest + self.rng.randrange(count)
            add("mask list of an image", self.timed("GET", f"/api/masks/?image={image_id}")[0])
            predict = f"/api/images/{real}/predict/"
            add("predict (cached embedding)", self.timed("POST", predict, click)[0])
            listing = f"/api/images/?dataset={dataset}&stage=3&status=pending&limit=100"
            seconds, page = self.timed("GET", listing)
            add("image list, first page", seconds)
            deep = max(0, page["count"] - 100)
            add("image list, last page", self.timed("GET", f"{listing}&offset={deep}")[0])
            if keyset_anchor is not None:
                first_keyset = self.timed("GET", f"{listing}&after=0")[0]
                add("image list, first page (keyset)", first_keyset)
                deep_keyset = self.timed("GET", f"{listing}&after={keyset_anchor}")[0]
                add("image list, last page (keyset)", deep_keyset)
        slow = {
            "dataset stats (API)": (f"/api/datasets/{dataset}/stats/", "admin"),
            "dashboard index page": ("/admin/dashboard/", "session"),
            "dashboard dataset page": (f"/admin/dashboard/datasets/{dataset}/", "session"),
        }
        for name, (path, who) in slow.items():
            for _ in range(slow_samples):
                try:
                    seconds = self.timed("GET", path, who=who)[0]
                except RuntimeError as exc:  # the statement timeout: slower than it allows
                    print(f"{name}: {exc}", flush=True)
                    seconds = float("inf")
                add(name, seconds)
                if seconds > SLOW_ENOUGH_S:
                    break  # one sample says enough, and more would take the run's time
        figures = {}
        for name, samples_s in times.items():
            if float("inf") in samples_s:
                figures[f"{name}, p50 ms"] = float("inf")
                continue
            p50, p95 = percentiles(samples_s)
            figures[f"{name}, p50 ms"] = p50
            if len(samples_s) >= 20:
                figures[f"{name}, p95 ms"] = p95
        return figures
