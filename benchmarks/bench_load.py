"""Load test: simulated annotators against a real server on loopback, with the vit_b-shaped
model (seeded random weights) and production settings.

    python benchmarks/bench_load.py [--annotators 16] [--duration 60] [--think 1.0]

The script prepares a temporary data directory (SQLite, or the database of DATABASE_URL), one
dataset of images with their embeddings cached, one user and token per annotator, then starts
gunicorn with deploy/gunicorn.conf.py and SADE_PRODUCTION=1 on 127.0.0.1 (HTTPS redirect off:
there is no TLS on loopback). Each annotator loops until the time is up:

    claim the next image (POST next-image); for each of --masks-per-image objects: 2 to 4 clicks
    (predict; each click refines the previous mask through mask_input_id), then save the best
    mask (POST /api/masks/); then complete the image.

Think time: people look before they click. Each click and each save waits a random 0.5x to
1.5x --think seconds (default 1 s), which is brisk: the SA paper's annotators took 14 to 34 s
per mask. Reported: requests per second, p50 / p95 / max latency per endpoint, errors, the
load average; goal: no errors and p95 under 300 ms for every endpoint.

Every image's pixels differ (one pixel each, so they are distinct images to the platform), but
they share one computed embedding, stored under each image's hash: computing 150 vit_b
embeddings would take longer than the test and says nothing about serving clicks.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from benchmarks.common import (  # noqa: E402
    benchmark_image,
    free_port,
    percentiles,
    setup_django_with_seeded_model,
)

GOAL_P95_MS = 300.0


def prepare(data_dir: Path, model_type: str, images: int, annotators: int) -> dict:
    """Migrate, write a seeded checkpoint, import ``images`` one-pixel variants of the benchmark
    image into one dataset, store one computed embedding under every image's hash, create the
    annotators with tokens. Returns what the clients need."""
    import torch
    from PIL import Image as PILImage

    checkpoint = setup_django_with_seeded_model(data_dir, model_type)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.models import Dataset, DatasetMembership, Role
    from annotation.services.embeddings import embedding_store, get_or_compute_embedding
    from annotation.services.imports import Candidate, import_images
    from registry.active import get_active_version

    pixels, source = benchmark_image()

    def variant(i: int) -> bytes:
        array = pixels.copy()
        array[0, 0] = (i % 256, i // 256, 7)
        buf = io.BytesIO()
        PILImage.fromarray(array).save(buf, format="PNG")
        return buf.getvalue()

    dataset = Dataset.objects.create(name="load")
    report = import_images(
        dataset, [Candidate(f"{i}.png", read=lambda i=i: variant(i)) for i in range(images)]
    )
    assert len(report.imported) == images, report.rejected[:3]
    version = get_active_version()
    stored = list(dataset.images.order_by("pk"))
    with torch.inference_mode():
        embedding, _ = get_or_compute_embedding(stored[0], version)
    store = embedding_store()
    for image in stored[1:]:
        store.put(image.content_sha256, version.encoder_key, embedding)
    tokens = []
    for i in range(annotators):
        user = get_user_model().objects.create_user(f"annotator{i}", password=secrets.token_hex())
        DatasetMembership.objects.create(dataset=dataset, user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    print(f"{images} images of {source} ({pixels.shape[1]}x{pixels.shape[0]}); {model_type}")
    return {"dataset": dataset.pk, "tokens": tokens, "checkpoint": checkpoint}


class Annotator(threading.Thread):
    """One person: claims images, clicks, saves masks, completes images until ``deadline``."""

    def __init__(self, port: int, token: str, dataset: int, deadline: float, args, seed: int):
        super().__init__(daemon=True)
        self.port, self.dataset, self.deadline, self.args = port, dataset, deadline, args
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.rng = random.Random(seed)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, endpoint: str, path: str, body: dict | None) -> tuple[int, dict | None]:
        data = json.dumps(body) if body is not None else None
        start = time.perf_counter()
        try:
            self.conn.request("POST" if data else "GET", path, data, self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{endpoint}: {exc!r}")
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return 0, None
        self.times[endpoint].append(time.perf_counter() - start)
        if response.status >= 400:
            self.errors.append(f"{endpoint}: {response.status} {raw[:200]!r}")
        return response.status, json.loads(raw) if raw else None

    def think(self) -> None:
        time.sleep(self.args.think * self.rng.uniform(0.5, 1.5))

    def run(self) -> None:
        while time.monotonic() < self.deadline:
            status, image = self.call(
                "next-image", f"/api/datasets/{self.dataset}/next-image/", {"stage": 1}
            )
            if status != 200:
                return  # nothing left (204) or an error (recorded)
            for _ in range(self.args.masks_per_image):
                if time.monotonic() >= self.deadline or not self.annotate_object(image):
                    break
            if time.monotonic() < self.deadline:
                self.call("complete", f"/api/images/{image['id']}/complete/", {})

    def annotate_object(self, image: dict) -> bool:
        width, height = image["width"], image["height"]
        points, labels, logits_id, best = [], [], None, None
        for click in range(self.rng.randint(2, 4)):
            self.think()
            points.append([self.rng.uniform(0, width), self.rng.uniform(0, height)])
            labels.append(1 if click == 0 else self.rng.choice([0, 1]))
            body = {"points": points, "labels": labels}
            if logits_id:
                body["mask_input_id"] = logits_id
            status, answer = self.call("predict", f"/api/images/{image['id']}/predict/", body)
            if status != 200:
                return False
            best = max(answer["masks"], key=lambda mask: mask["predicted_iou"])
            logits_id = best["logits_id"]
        self.think()
        mask = {
            "image": image["id"],
            "rle": best["rle"],
            "source": "model_assisted",
            "predicted_iou": best["predicted_iou"],
            "seconds_spent": 4.0,
            "prompt": {"points": points, "labels": labels},
        }
        status, _ = self.call("save mask", "/api/masks/", mask)
        return status == 201


def start_server(args, env: dict, port: int, log_path: Path) -> subprocess.Popen:
    server_env = {
        **env,
        "SADE_WEB_BIND": f"127.0.0.1:{port}",
        "SADE_WEB_WORKERS": str(args.web_workers),
        "SADE_WEB_THREADS": str(args.web_threads),
        "SADE_WEB_TORCH_THREADS": str(args.torch_threads),
        "OMP_NUM_THREADS": str(args.torch_threads),
        "SADE_WEB_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
    command += ["--access-logfile", "/dev/null", "deploy.wsgi:application"]
    return subprocess.Popen(
        command, cwd=ROOT, env=server_env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT
    )


def warm_up(port: int, token: str, dataset: int, workers: int, threads: int) -> None:
    """Load the model in every gunicorn worker before the clock starts. Which worker takes a
    connection is the kernel's choice, so rounds of concurrent first clicks go on until a whole
    round answers quickly (no worker still loading). Each round sends as many clicks as the
    server has threads, so that the threads have opened their database connections too (on
    PostgreSQL, 16 first connections at once made the annotators' first claims slow, a cost
    paid once per server start that would otherwise be a fifth of the next-image samples)."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("GET", f"/api/datasets/{dataset}/images/?limit=1", headers=headers)
    image = json.loads(conn.getresponse().read())["results"][0]
    body = json.dumps({"points": [[10, 10]], "labels": [1]})

    def click(out: list) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        start = time.perf_counter()
        connection.request("POST", f"/api/images/{image['id']}/predict/", body, headers)
        response = connection.getresponse()
        response.read()
        out.append((response.status, time.perf_counter() - start))

    for _ in range(10):
        answers: list = []
        clicks = max(4 * workers, workers * threads)
        threads_ = [threading.Thread(target=click, args=(answers,)) for _ in range(clicks)]
        for thread in threads_:
            thread.start()
        for thread in threads_:
            thread.join()
        if {status for status, _ in answers} != {200}:
            raise RuntimeError(f"warm-up clicks answered {answers}")
        if max(seconds for _, seconds in answers) < 1.0:
            return


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not become healthy in time")


def report(args, annotators: list[Annotator], wall: float, load_before: float) -> bool:
    import torch

    times: dict[str, list[float]] = defaultdict(list)
    for annotator in annotators:
        for endpoint, samples in annotator.times.items():
            times[endpoint] += samples
    errors = [e for a in annotators for e in a.errors]
    total = sum(len(s) for s in times.values())
    load = os.getloadavg()
    print(
        f"\ntorch {torch.__version__}, {os.cpu_count()} cpus; load average before "
        f"{load_before:.2f}, after (1/5/15 min) {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )
    print(
        f"gunicorn {args.web_workers} workers x {args.web_threads} threads, "
        f"{args.torch_threads} torch thread(s) each; "
        f"{'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'SQLite'}; token auth"
    )
    print(
        f"{len(annotators)} annotators for {wall:.0f} s, think time {args.think:.1f} s "
        f"(x0.5-1.5); {total} requests, {total / wall:.1f} req/s, {len(errors)} errors\n"
    )
    print(f"{'endpoint':<12}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    passed = not errors
    for endpoint in ("next-image", "predict", "save mask", "complete"):
        samples = times.get(endpoint, [])
        if not samples:
            print(f"{endpoint:<12}{0:>9}")
            passed = False
            continue
        p50, p95 = percentiles(samples)
        passed = passed and p95 < GOAL_P95_MS
        print(
            f"{endpoint:<12}{len(samples):>9}{len(samples) / wall:>8.1f}{p50:>9.1f}{p95:>9.1f}"
            f"{max(samples) * 1000:>9.1f}"
        )
    for error in errors[:5]:
        print(f"error: {error}")
    verdict = "met" if passed else "NOT met"
    print(f"\ngoal (no errors, p95 < {GOAL_P95_MS:.0f} ms on every endpoint): {verdict}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds before a click")
    parser.add_argument("--masks-per-image", type=int, default=3)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="sade-bench-load-"))
    env = {
        "SADE_DATA_DIR": str(data_dir),
        "SAM_MODEL_TYPE": args.model,
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
        "SADE_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SADE_SSL_REDIRECT": "0",
    }
    os.environ.update(env)
    server = None
    try:
        setup = prepare(data_dir, args.model, args.images, args.annotators)
        port = free_port()
        env["SAM_CHECKPOINT"] = str(setup["checkpoint"])
        server = start_server(args, {**os.environ, **env}, port, data_dir / "gunicorn.log")
        wait_ready(port, server)
        warm_up(port, setup["tokens"][0], setup["dataset"], args.web_workers, args.web_threads)
        load_before = os.getloadavg()[0]
        start = time.monotonic()
        annotators = [
            Annotator(port, token, setup["dataset"], start + args.duration, args, seed=i)
            for i, token in enumerate(setup["tokens"])
        ]
        for annotator in annotators:
            annotator.start()
        for annotator in annotators:
            annotator.join(args.duration + 120)
        wall = time.monotonic() - start
        passed = report(args, annotators, wall, load_before)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
