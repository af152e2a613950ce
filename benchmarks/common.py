"""Shared bits of the benchmarks: the test image, the reference oracle, percentile reporting,
ports and a Django set up with a seeded model for the benchmarks that run the platform."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GRABCUT = ROOT.parent / "shared" / "datasets" / "grabcut" / "images"


def benchmark_image(path: str | None = None) -> tuple[np.ndarray, str]:
    """The image to measure on: the given file, else GrabCut's 106024.jpg (481x321) when the
    shared datasets are beside the checkout, else a synthetic 481x321 scene."""
    candidates = [Path(path)] if path else [GRABCUT / "106024.jpg"]
    for candidate in candidates:
        if candidate.is_file():
            return np.asarray(Image.open(candidate).convert("RGB")), str(candidate)
    yy, xx = np.mgrid[0:321, 0:481]
    image = np.stack([(xx * 0.5) % 255, (yy * 0.7) % 255, ((xx + yy) * 0.3) % 255], -1)
    image = image.astype(np.uint8)
    image[100:200, 150:300] = (200, 30, 30)
    return image, "synthetic 481x321"


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    arr = np.asarray(samples_s) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), seconds it took)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def machine_line() -> str:
    import torch

    load = os.getloadavg()
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cpus, load average {load[0]:.2f}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_django_with_seeded_model(data_dir: Path, model_type: str) -> Path:
    """Write a ``model_type`` checkpoint of seeded random weights into ``data_dir``, make it
    the configured checkpoint, set Django up and migrate. Returns the checkpoint's path."""
    import django
    from django.core.management import call_command

    from engine import build_sam, save_checkpoint
    from tests.reference import random_state_dict

    checkpoint = data_dir / f"bench-{model_type}.pt"
    model = build_sam(model_type)
    model.load_state_dict(random_state_dict(model, seed=0))
    save_checkpoint(model, checkpoint)
    del model
    os.environ["SAM_CHECKPOINT"] = str(checkpoint)
    django.setup()
    call_command("migrate", verbosity=0)
    return checkpoint
