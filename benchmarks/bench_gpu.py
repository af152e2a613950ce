"""GPU figures (seeded random weights, generated images): embedding ms/image per model,
precision and batch size, with and without torch.compile; click p50/p95; the automatic pass in
images/hour with the encoder included. Run by benchmarks/gpu_check.sh; runs on a CPU too
(``--device cpu``, fp16 left out) to try the script itself.

    python benchmarks/bench_gpu.py [--device cuda] [--models vit_b vit_h] [--batches 1 8]
                                   [--precisions fp32 bf16 fp16] [--compile]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks.common import machine_line, percentiles  # noqa: E402
from engine import AutomaticConfig, AutomaticMaskGenerator, SamPredictor, build_sam  # noqa: E402


def generated_image(seed: int, height: int = 768, width: int = 1024) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.full((height, width, 3), rng.integers(0, 255, 3), np.float64)
    for _ in range(12):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(30, 250)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def embed_ms(predictor: SamPredictor, images: list[np.ndarray], batch: int, device: str) -> float:
    predictor.embed_batch(images[:batch], batch_size=batch)  # warm-up (and compilation)
    sync(device)
    runs = 3
    start = time.perf_counter()
    for _ in range(runs):
        predictor.embed_batch(images[:batch], batch_size=batch)
    sync(device)
    return (time.perf_counter() - start) * 1000 / (runs * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["vit_b", "vit_h"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--automatic-images", type=int, default=2)
    args = parser.parse_args()
    device = args.device
    precisions = [p for p in args.precisions if p != "fp16" or device.startswith("cuda")]
    print(machine_line())
    if device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(device)}")
    images = [generated_image(seed) for seed in range(max(args.batches))]

    print(
        f"\n{'model':8}{'precision':>10}{'compile':>9}"
        + "".join(f"{'batch ' + str(b) + ' ms/img':>16}" for b in args.batches)
    )
    for model_type in args.models:
        torch.manual_seed(0)
        model = build_sam(model_type).to(device)
        for precision in precisions:
            for compiled in [False, True] if args.compile else [False]:
                predictor = SamPredictor(model, precision, compile=compiled)
                cells = [embed_ms(predictor, images, b, device) for b in args.batches]
                print(
                    f"{model_type:8}{precision:>10}{'yes' if compiled else 'no':>9}"
                    + "".join(f"{ms:16.1f}" for ms in cells)
                )
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

    torch.manual_seed(0)
    model = build_sam("vit_b").to(device)
    rng = np.random.default_rng(0)
    print()
    for precision in precisions:
        predictor = SamPredictor(model, precision)
        embedding = predictor.embed(images[0])
        h, w = images[0].shape[:2]
        times = []
        for i in range(args.clicks + 3):
            point = [[float(rng.uniform(0, w)), float(rng.uniform(0, h))]]
            start = time.perf_counter()
            predictor.decode(embedding, point, [1])
            if i >= 3:
                times.append(time.perf_counter() - start)
        p50, p95 = percentiles(times)
        generator = AutomaticMaskGenerator(predictor, AutomaticConfig())
        start = time.perf_counter()
        for image in images[: args.automatic_images]:
            generator.generate(image)
        sync(device)
        per_image = (time.perf_counter() - start) / args.automatic_images
        print(
            f"vit_b {precision}: click p50 {p50:.1f} ms, p95 {p95:.1f} ms; automatic pass "
            f"(32x32 grid, encoder included) {per_image:.2f} s/image = "
            f"{3600 / per_image:.0f} images/hour"
        )


if __name__ == "__main__":
    with torch.inference_mode():
        main()
