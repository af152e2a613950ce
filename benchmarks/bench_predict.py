"""Per-click decode latency and embedding time: our engine vs Meta's reference implementation,
same seeded weights, same image, same run. Also checks that every output still matches.

    python benchmarks/bench_predict.py [--model vit_b] [--clicks 40] [--embed-runs 2]
                                       [--precision bf16]

``--threads 1`` measures as the web processes decode. ``--embed-runs 0`` times the clicks
alone: one embedding of ours, which the reference's predictor decodes too (the two encoders'
features are equal; see a run with embeddings).

With ``--precision bf16`` (or fp16 on CUDA) a third column times our encoder in that precision
(engine.precision) and reports its masks' agreement with our fp32 masks (mean, 5th percentile
and worst IoU over every click's three masks; the largest predicted-IoU difference).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks.common import benchmark_image, machine_line, percentiles, timed  # noqa: E402
from engine import SamPredictor, build_sam  # noqa: E402
from engine.precision import PRECISIONS  # noqa: E402
from tests.reference import random_state_dict, segment_anything  # noqa: E402


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--image", default=None)
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument(
        "--embed-runs", type=int, default=2, help="0: time clicks only, on our features"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); the web "
        "processes decode with one (SADE_WEB_TORCH_THREADS=1)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    low = args.precision != "fp32"

    image, source = benchmark_image(args.image)
    print(f"image: {source} ({image.shape[1]}x{image.shape[0]}); model {args.model}, fp32, CPU")
    print(machine_line())
    sa = segment_anything()
    ours = build_sam(args.model)
    state = random_state_dict(ours, seed=args.seed)
    ours.load_state_dict(state, strict=True)
    reference = sa.sam_model_registry[args.model](checkpoint=None)
    reference.load_state_dict(state, strict=True)
    reference.eval()
    ref_predictor, our_predictor = sa.SamPredictor(reference), SamPredictor(ours)
    low_predictor = SamPredictor(ours, args.precision) if low else None

    ref_embed, our_embed, low_embed = [], [], []
    if args.embed_runs == 0:  # clicks only: the reference decodes our (identical) features
        embedding = our_predictor.embed(image)
        ref_predictor.features = embedding.features[None].clone()
        ref_predictor.original_size, ref_predictor.input_size = (
            image.shape[:2],
            embedding.input_size,
        )
        ref_predictor.is_image_set = True
        if low_predictor is not None:
            low_embedding = low_predictor.embed(image)
    for _ in range(args.embed_runs):  # alternate so all see the same machine state
        _, seconds = timed(ref_predictor.set_image, image)
        ref_embed.append(seconds)
        embedding, seconds = timed(our_predictor.embed, image)
        our_embed.append(seconds)
        if low_predictor is not None:
            low_embedding, seconds = timed(low_predictor.embed, image)
            low_embed.append(seconds)
    feature_error = float((embedding.features - ref_predictor.features[0]).abs().max())

    rng = np.random.default_rng(args.seed)
    height, width = image.shape[:2]
    clicks = rng.uniform([0, 0], [width - 1, height - 1], size=(args.clicks + 3, 2))
    ref_decode, our_decode, worst_iou, worst_score = [], [], 1.0, 0.0
    low_decode, low_ious, low_score = [], [], 0.0
    for i, (x, y) in enumerate(clicks):
        point, label = np.array([[x, y]]), np.array([1])
        (ref_masks, ref_scores, _), ref_s = timed(
            ref_predictor.predict, point, label, multimask_output=True
        )
        out, our_s = timed(our_predictor.decode, embedding, point, label, multimask=True)
        if low_predictor is not None:
            low_out, low_s = timed(low_predictor.decode, low_embedding, point, label)
            low_ious += [mask_iou(a, b) for a, b in zip(out.masks, low_out.masks, strict=True)]
            low_score = max(low_score, float(np.abs(out.iou - low_out.iou).max()))
            if i >= 3:
                low_decode.append(low_s)
        if i >= 3:  # the first calls warm up allocators and caches
            ref_decode.append(ref_s)
            our_decode.append(our_s)
        worst_iou = min(
            worst_iou, *(mask_iou(a, b) for a, b in zip(ref_masks, out.masks, strict=True))
        )
        worst_score = max(worst_score, float(np.abs(ref_scores - out.iou).max()))

    ref_p50, ref_p95 = percentiles(ref_decode)
    our_p50, our_p95 = percentiles(our_decode)
    rows = [
        ("decode p50 (ms/click)", ref_p50, our_p50, ".1f"),
        ("decode p95 (ms/click)", ref_p95, our_p95, ".1f"),
    ]
    lows = [*percentiles(low_decode)] if low else []
    if args.embed_runs:
        rows.append(
            (f"embed (s, best of {args.embed_runs})", min(ref_embed), min(our_embed), ".2f")
        )
        lows += [min(low_embed)] if low else []
    head = f"{'':28}{'reference':>12}{'ours fp32':>12}{'speed-up':>10}"
    if low:
        head += f"{'ours ' + args.precision:>12}{'speed-up':>10}"
    print()
    print(head)
    for n, (name, ref, ours_fp32, fmt) in enumerate(rows):
        line = f"{name:28}{ref:12{fmt}}{ours_fp32:12{fmt}}{ref / ours_fp32:9.2f}x"
        if low:
            line += f"{lows[n]:12{fmt}}{ref / lows[n]:9.2f}x"
        print(line)
    print()
    if low:
        ious = np.array(low_ious)
        print(
            f"{args.precision} vs ours fp32: mask IoU mean {ious.mean():.4f}, 5th percentile "
            f"{np.percentile(ious, 5):.4f}, worst {ious.min():.4f} over {len(ious)} masks; "
            f"worst predicted-IoU difference {low_score:.4f}"
        )
    print(
        f"parity: worst mask IoU {worst_iou:.5f} over {len(clicks)} clicks x 3 masks, "
        f"worst predicted-IoU difference {worst_score:.2e}, max feature difference "
        + (f"{feature_error:.2e}" if args.embed_runs else "n/a (features shared)")
    )
    print(machine_line())


if __name__ == "__main__":
    with torch.inference_mode():
        main()
