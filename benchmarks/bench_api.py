"""Predict latency over HTTP against a real server (gunicorn on loopback), with a cached
vit_b-shaped embedding, for 1, 4 and 16 concurrent clients, beside the engine's bare decode
time in the same run; plus the size of a predict answer.

    python benchmarks/bench_api.py [--model vit_b] [--requests 48] [--concurrency 1,4,16]

Everything lives in a temporary data directory (SQLite, media, embeddings, checkpoint).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from benchmarks.common import (  # noqa: E402
    benchmark_image,
    free_port,
    machine_line,
    percentiles,
    setup_django_with_seeded_model,
)


def prepare(data_dir: Path, model_type: str) -> tuple[int, str, Path]:
    """Migrate, create an admin with a token, import the benchmark image, write a seeded
    checkpoint and cache the image's embedding. Returns (image id, token, checkpoint path)."""
    import torch

    checkpoint = setup_django_with_seeded_model(data_dir, model_type)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Image
    from annotation.services.embeddings import get_or_compute_embedding
    from registry.active import get_active_version

    user = get_user_model().objects.create_superuser("bench", "bench@example.org", "bench-pass")
    token = Token.objects.create(user=user).key
    pixels, source = benchmark_image()
    from PIL import Image as PILImage

    folder = data_dir / "import"
    folder.mkdir()
    PILImage.fromarray(pixels).save(folder / "bench.png")
    call_command("import_images", "bench", str(folder), "--create", stdout=open(os.devnull, "w"))
    image = Image.objects.get()
    with torch.inference_mode():
        get_or_compute_embedding(image, get_active_version())
    print(f"image: {source} ({image.width}x{image.height}); model {model_type} (seeded random)")
    return image.pk, token, checkpoint


def paired_single_client(port: int, token: str, image_id: int, clicks: np.ndarray) -> dict:
    """One client, each click measured twice in a row: the engine alone in this process (the
    same cached embedding, no HTTP, no database), then the same click over HTTP. Pairing makes
    both see the same machine state, so their difference is the platform's overhead."""
    from annotation.models import Image
    from annotation.services.embeddings import embedding_store
    from registry.active import get_active_version
    from registry.predictors import get_predictor

    version = get_active_version()
    image = Image.objects.get(pk=image_id)
    embedding = embedding_store().get(image.content_sha256, version.encoder_key)
    predictor = get_predictor(version.pk)
    bare, http_times, sizes, errors = [], [], [], []
    for i, (x, y) in enumerate(clicks):
        start = time.perf_counter()
        predictor.decode(embedding, points=[[x, y]], labels=[1])
        bare_s = time.perf_counter() - start
        client = Client(port, token, image_id, clicks[i : i + 1])
        client.run()  # in this thread: one request
        if i >= 3 and client.times:
            bare.append(bare_s)
            http_times.append(client.times[0])
        sizes += client.sizes
        errors += client.errors
    p50, p95 = percentiles(http_times)
    return {
        "concurrency": 1,
        "requests": len(http_times),
        "rps": len(http_times) / max(sum(http_times), 1e-9),
        "p50": p50,
        "p95": p95,
        "errors": errors,
        "size": max(sizes, default=0),
        "bare_p50": percentiles(bare)[0],
        "overhead_p50": float(np.median(np.array(http_times) - np.array(bare)) * 1000),
    }


def object_answer_size(image_id: int) -> tuple[int, str]:
    """Size of a predict answer built by the API's own code from object-shaped masks: what a
    trained model returns. Random weights give speckled masks whose RLE says little about the
    format. Uses this image's GrabCut ground truth when the shared datasets are present."""
    from django.contrib.auth import get_user_model

    from annotation.models import Image
    from annotation.services.predict import describe_prediction
    from benchmarks.common import GRABCUT
    from engine import Prediction
    from registry.active import get_active_version

    image = Image.objects.get(pk=image_id)
    truth = GRABCUT.parent / "masks" / "106024.png"
    if truth.is_file() and image.width == 481 and image.height == 321:
        from PIL import Image as PILImage

        whole = np.asarray(PILImage.open(truth)) >= 128
        source = "GrabCut ground truth of 106024 (whole, upper half, lower half)"
    else:
        yy, xx = np.mgrid[0 : image.height, 0 : image.width]
        cy, cx = image.height / 2, image.width / 2
        whole = ((yy - cy) / (0.35 * image.height)) ** 2 + (
            (xx - cx) / (0.3 * image.width)
        ) ** 2 < 1
        source = "an ellipse and its halves"
    middle = int(np.argwhere(whole)[:, 0].mean()) if whole.any() else image.height // 2
    upper, lower = whole.copy(), whole.copy()
    upper[middle:] = False
    lower[:middle] = False
    prediction = Prediction(
        masks=np.stack([whole, upper, lower]),
        iou=np.array([0.95, 0.9, 0.85], dtype=np.float32),
        low_res_logits=np.zeros((3, 256, 256), dtype=np.float32),
    )
    user = get_user_model().objects.get(username="bench")
    answer = describe_prediction(
        prediction, image, get_active_version(), user, embedding_computed=False
    )
    return len(json.dumps(answer).encode()), source


class Client(threading.Thread):
    def __init__(self, port: int, token: str, image_id: int, clicks: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.image_id, self.clicks = port, token, image_id, clicks
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        for x, y in self.clicks:
            body = json.dumps({"points": [[float(x), float(y)]], "labels": [1]})
            start = time.perf_counter()
            try:
                conn.request("POST", f"/api/images/{self.image_id}/predict/", body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                continue
            self.times.append(time.perf_counter() - start)
            if response.status != 200:
                self.errors.append(f"{response.status}: {data[:200]!r}")
            else:
                self.sizes.append(len(data))


def run_level(port, token, image_id, clicks, concurrency, total) -> dict:
    per_client = max(1, total // concurrency)
    clients = [
        Client(port, token, image_id, clicks[i * per_client : (i + 1) * per_client])
        for i in range(concurrency)
    ]
    start = time.perf_counter()
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    wall = time.perf_counter() - start
    times = [t for c in clients for t in c.times]
    p50, p95 = percentiles(times)
    return {
        "concurrency": concurrency,
        "requests": len(times),
        "rps": len(times) / wall,
        "p50": p50,
        "p95": p95,
        "errors": [e for c in clients for e in c.errors],
        "size": max((s for c in clients for s in c.sizes), default=0),
    }


def wait_ready(port: int, token: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/model/", headers={"Authorization": f"Token {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not answer in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--requests", type=int, default=48, help="per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--web-threads", type=int, default=16)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="sade-bench-api-"))
    env = {
        "SADE_DATA_DIR": str(data_dir),
        "SAM_MODEL_TYPE": args.model,
        "DJANGO_DEBUG": "0",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
    }
    os.environ.update(env)
    image_id, token, checkpoint = prepare(data_dir, args.model)
    rng = np.random.default_rng(0)
    from annotation.models import Image

    image = Image.objects.get(pk=image_id)
    clicks = rng.uniform([0, 0], [image.width - 1, image.height - 1], size=(args.requests + 3, 2))

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "deploy.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            str(args.web_threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "SAM_CHECKPOINT": str(checkpoint)},
    )
    try:
        wait_ready(port, token, server)
        run_level(port, token, image_id, clicks[:4], 1, 4)  # loads the model, warms caches
        levels = [int(c) for c in args.concurrency.split(",") if int(c) > 1]
        results = [paired_single_client(port, token, image_id, clicks)]
        results += [run_level(port, token, image_id, clicks, c, args.requests) for c in levels]
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(machine_line())
    print(f"gunicorn: 1 worker process, {args.web_threads} threads; SQLite; token auth")
    single = results[0]
    bare_p50 = single["bare_p50"]
    print(f"engine decode alone, paired click by click with 1 client: p50 {bare_p50:.1f} ms\n")
    print(
        f"{'clients':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"
        f"{'answer bytes':>14}"
    )
    for r in results:
        print(
            f"{r['concurrency']:>8}{r['requests']:>10}{r['rps']:>8.1f}{r['p50']:>9.1f}"
            f"{r['p95']:>9.1f}{len(r['errors']):>8}{r['size']:>14}"
        )
    overhead = single["overhead_p50"]
    print(
        f"\nHTTP + database overhead at 1 client (median of paired differences): "
        f"{overhead:.1f} ms ({overhead / bare_p50:.2f}x the engine's decode p50; goal <= 1x)"
    )
    print(
        f"largest predict answer: {single['size']} bytes with the random-weight model's "
        "speckled masks"
    )
    size, source = object_answer_size(image_id)
    print(
        f"predict answer for object-shaped masks ({source}), built by the API's code: "
        f"{size} bytes (goal < 20 KB)"
    )
    for r in results:
        for error in r["errors"][:3]:
            print(f"error at {r['concurrency']} clients: {error}")


if __name__ == "__main__":
    main()
