"""Click to mask drawn, in the browser: headless Chromium drives the annotation page against a
real server with a vit_b-shaped model (seeded random weights, the image's embedding computed
once beforehand), and the page itself times each click, from its pointerup handler to the end
of the canvas draw of the answer (performance.now()).

    python benchmarks/bench_click.py [--objects 5] [--clicks-per-object 4] [--warmup 3]

Each object is a first click (three candidate masks) followed by refinement clicks (+, -, +:
one mask each, sent with the previous logits_id). Reports p50 / p95 over every measured click,
and splits each click into the predict request (network + server, from the page's resource
timing) and the page's own work (RLE decode into ImageData, putImageData, drawImage). The
untrained model's masks are speckled (many short runs): a harder case for the decode than
object-shaped masks. Everything lives in a temporary data directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from benchmarks.common import benchmark_image, free_port, machine_line  # noqa: E402

CHROMIUM = os.environ.get("SADE_CHROMIUM", "/usr/bin/chromium")
USER, PASSWORD = "bench-annotator", "bench-click-pass"


def prepare(data_dir: Path, model_type: str) -> tuple[int, Path]:
    """Migrate, create an annotator of a dataset holding the benchmark image, write a seeded
    checkpoint and compute the image's embedding. Returns (image id, checkpoint path)."""
    import django
    import torch

    from engine import build_sam, save_checkpoint

    checkpoint = data_dir / f"bench-{model_type}.pt"
    torch.manual_seed(0)
    save_checkpoint(
        build_sam(model_type), checkpoint, trained_on="nothing: seeded random (benchmark)"
    )
    os.environ["SAM_CHECKPOINT"] = str(checkpoint)
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from PIL import Image as PILImage

    from annotation.models import DatasetMembership, Image
    from annotation.services.embeddings import get_or_compute_embedding
    from registry.active import get_active_version

    call_command("migrate", verbosity=0)
    pixels, source = benchmark_image()
    folder = data_dir / "import"
    folder.mkdir()
    PILImage.fromarray(pixels).save(folder / "bench.png")
    start = time.perf_counter()
    # With CELERY_TASK_ALWAYS_EAGER the import computes the embedding inline; the call below
    # then only finds it (or computes it, should the import not have).
    call_command("import_images", "bench", str(folder), "--create", stdout=open(os.devnull, "w"))
    image = Image.objects.get()
    with torch.inference_mode():
        get_or_compute_embedding(image, get_active_version())
    print(
        f"image: {source} ({image.width}x{image.height}); model {model_type} (seeded random); "
        f"import and embedding beforehand: {time.perf_counter() - start:.1f} s"
    )
    user = get_user_model().objects.create_user(USER, password=PASSWORD)
    DatasetMembership.objects.create(dataset=image.dataset, user=user, role="annotator")
    return image.pk, checkpoint


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server did not answer in time")


def click_at(page, x: float, y: float, button: str = "left") -> None:
    point = page.evaluate("([x, y]) => window.sade.view.toClient(x, y)", [x + 0.5, y + 0.5])
    page.mouse.click(point["x"], point["y"], button=button)


def bare_decoder(image_id: int):
    """A function timing the engine's decode alone, in this process, on the same embedding:
    paired with each browser click it shows what the model costs on the machine right now."""
    from annotation.models import Image
    from annotation.services.embeddings import embedding_store
    from registry.active import get_active_version
    from registry.predictors import get_predictor

    version = get_active_version()
    image = Image.objects.get(pk=image_id)
    embedding = embedding_store().get(image.content_sha256, version.encoder_key)
    predictor = get_predictor(version.pk)

    def decode(points, labels) -> float:
        start = time.perf_counter()
        predictor.decode(embedding, points=points, labels=labels, multimask=len(points) == 1)
        return (time.perf_counter() - start) * 1000

    return decode


def measure(page, url: str, image_id: int, size: tuple[int, int], decode, args) -> list[dict]:
    """Clicks objects on the page; returns per click {total, request, bare, kind} in ms."""
    width, height = size
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/annotate/{image_id}/")
    page.wait_for_function("() => document.body.dataset.embedding === 'ready'", timeout=120_000)
    page.evaluate("() => window.sade.toggleHover()")  # every click is a real round trip
    rng = np.random.default_rng(0)
    labels = ["left", "left", "right", "left"]
    results, done = [], 0
    for obj in range(args.warmup + args.objects):
        page.keyboard.press("Escape")
        centre = rng.uniform([width * 0.2, height * 0.2], [width * 0.8, height * 0.8])
        for k in range(args.clicks_per_object):
            x, y = np.clip(centre + rng.normal(0, 25, 2), 0, [width - 1, height - 1])
            page.evaluate("() => performance.clearResourceTimings()")
            click_at(page, int(x), int(y), labels[k % len(labels)])
            done += 1
            page.wait_for_function(
                f"() => window.sade.metrics.clickToMask.length >= {done}", timeout=60_000
            )
            total = page.evaluate(f"() => window.sade.metrics.clickToMask[{done - 1}]")
            request = page.evaluate(
                """() => performance.getEntriesByType('resource')
                    .filter((e) => e.name.endsWith('/predict/'))
                    .map((e) => e.responseEnd - e.startTime).pop() ?? null"""
            )
            prompts = page.evaluate(
                "() => ({points: sade.editor.state.points, labels: sade.editor.state.labels})"
            )
            bare = decode(prompts["points"], prompts["labels"])
            if obj >= args.warmup:
                kind = "first" if k == 0 else "refine"
                results.append({"total": total, "request": request, "bare": bare, "kind": kind})
    return results


def report(results: list[dict]) -> None:
    def pct(values):
        return np.percentile(values, 50), np.percentile(values, 95)

    totals = [r["total"] for r in results]
    requests = [r["request"] for r in results if r["request"] is not None]
    page_work = [r["total"] - r["request"] for r in results if r["request"] is not None]
    p50, p95 = pct(totals)
    print(f"\nclick -> mask drawn over {len(totals)} clicks: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print("  (goal: p50 under 150 ms)")
    for kind in ("first", "refine"):
        part = [r["total"] for r in results if r["kind"] == kind]
        if part:
            a, b = pct(part)
            label = "first clicks (3 masks)" if kind == "first" else "refinements (1 mask)"
            print(f"  {label:<24} {len(part):>3} clicks: p50 {a:.1f} ms, p95 {b:.1f} ms")
    bare = [r["bare"] for r in results]
    a, b = pct(bare)
    print(f"  engine decode alone, same prompts, in this process: p50 {a:.1f} ms, p95 {b:.1f} ms")
    a, _ = pct([r["total"] - r["bare"] for r in results])
    print(f"  everything but the model (HTTP, Django, RLE, page): median {a:.1f} ms per click")
    if requests:
        a, b = pct(requests)
        print(f"  predict request (network + server): p50 {a:.1f} ms, p95 {b:.1f} ms")
        a, b = pct(page_work)
        print(f"  page work (RLE decode + draw):     p50 {a:.1f} ms, p95 {b:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--objects", type=int, default=5)
    parser.add_argument("--clicks-per-object", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1, help="objects clicked but not counted")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="intra-op threads of the web server's torch (OMP_NUM_THREADS) and of the paired "
        "decode here; 0 keeps torch's default (one per core)",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="sade-bench-click-"))
    env = {
        "SADE_DATA_DIR": str(data_dir),
        "SAM_MODEL_TYPE": args.model,
        "DJANGO_DEBUG": "0",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
    }
    os.environ.update(env)
    image_id, checkpoint = prepare(data_dir, args.model)
    from annotation.models import Image

    image = Image.objects.get(pk=image_id)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Django's threaded server, as `make run` serves the platform; --insecure serves the static
    # files (the page's modules) with DEBUG off.
    server_env = {**os.environ, **env, "SAM_CHECKPOINT": str(checkpoint)}
    if args.torch_threads:
        import torch

        server_env["OMP_NUM_THREADS"] = str(args.torch_threads)
        torch.set_num_threads(args.torch_threads)
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Before Playwright starts: its event loop makes Django refuse ORM calls in this thread.
    decode = bare_decoder(image_id)
    from playwright.sync_api import sync_playwright

    try:
        wait_ready(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            size = (image.width, image.height)
            results = measure(page, url, image_id, size, decode, args)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(machine_line())
    threads = args.torch_threads or "default"
    print(
        "server: Django's threaded server (runserver --noreload), SQLite, torch intra-op "
        f"threads {threads}; Chromium headless"
    )
    report(results)


if __name__ == "__main__":
    main()
