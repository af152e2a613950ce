"""Automatic pass (grid of points -> filtered, de-duplicated masks): our engine vs Meta's
SamAutomaticMaskGenerator, same seeded weights, same image, same run, encoder time included.
Also reports how many records agree exactly.

    python benchmarks/bench_automatic.py [--model vit_b] [--points-per-side 32] [--crop-layers 0,1]
                                         [--precision bf16]

With ``--precision bf16`` each row also times ours with the encoder in bf16, and reports how
its masks match ours in fp32 (each fp32 mask's best IoU with a bf16 mask).

Each crop-layer setting is one row; times are per image, with the encoder and without it (the
time spent in the encoder, every crop's embedding included, is measured and subtracted).

Random weights give logits within about +-1 and predicted IoUs in (-1, 1), so the default
thresholds are relaxed (IoU > 0.1, stability >= 0.3 at offset 0.1) to leave the filters, NMS
and encoding real work; pass the paper's (--iou 0.88 --stability 0.95 --offset 1) with a
trained checkpoint's weights to time the recipe itself.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks.common import benchmark_image, machine_line, timed  # noqa: E402
from engine import SamPredictor, build_sam, rle  # noqa: E402
from engine.automatic import AutomaticConfig, AutomaticMaskGenerator  # noqa: E402
from engine.precision import PRECISIONS  # noqa: E402
from engine.registry import MODEL_CONFIGS  # noqa: E402
from tests.reference import random_state_dict, segment_anything  # noqa: E402


def opencv_standin() -> SimpleNamespace:
    """The one OpenCV call the reference's clean-up makes (OpenCV is not installed)."""

    def connected_components_with_stats(mask: np.ndarray, connectivity: int):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        stats = np.zeros((count + 1, 5), dtype=np.int32)
        stats[:, -1] = np.bincount(labels.ravel(), minlength=count + 1)
        return count + 1, labels.astype(np.int32), stats, None

    return SimpleNamespace(connectedComponentsWithStats=connected_components_with_stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--image", default=None)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--crop-layers", default="0,1", help="comma-separated settings to run")
    parser.add_argument("--min-area", type=int, default=0)
    parser.add_argument("--iou", type=float, default=0.1)
    parser.add_argument("--stability", type=float, default=0.3)
    parser.add_argument("--offset", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help="also run ours with the encoder in this precision (engine.precision)",
    )
    args = parser.parse_args()

    image, source = benchmark_image(args.image)
    print(f"image: {source} ({image.shape[1]}x{image.shape[0]}); model {args.model}, fp32, CPU")
    print(machine_line())
    sa = segment_anything()
    sys.modules.setdefault("cv2", opencv_standin())  # type: ignore[arg-type]
    ours = build_sam(args.model)
    state = random_state_dict(ours, seed=args.seed)
    ours.load_state_dict(state, strict=True)
    shape = MODEL_CONFIGS[args.model]  # Meta's builder with our registry's encoder shape
    reference = importlib.import_module("segment_anything.build_sam")._build_sam(
        shape.embed_dim, shape.depth, shape.num_heads, list(shape.global_attn_indexes), None
    )
    reference.load_state_dict(state, strict=True)
    reference.eval()

    rows = []
    for layers in (int(v) for v in args.crop_layers.split(",")):
        settings = {
            "points_per_side": args.points_per_side,
            "points_per_batch": args.points_per_batch,
            "pred_iou_thresh": args.iou,
            "stability_score_thresh": args.stability,
            "stability_score_offset": args.offset,
            "crop_n_layers": layers,
            "crop_n_points_downscale_factor": 2,
            "min_mask_region_area": args.min_area,
        }
        print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
        ref_generator = sa.SamAutomaticMaskGenerator(reference, output_mode="coco_rle", **settings)
        our_predictor = SamPredictor(ours)
        our_generator = AutomaticMaskGenerator(our_predictor, AutomaticConfig(**settings))
        ref_encoder = time_calls(ref_generator.predictor, "set_image")
        our_encoder = time_calls(our_predictor, "embed")
        ref_masks, ref_s = timed(lambda g=ref_generator: g.generate(image))
        our_masks, our_s = timed(lambda g=our_generator: g.generate(image))
        low = None
        if args.precision != "fp32":
            low_predictor = SamPredictor(ours, args.precision)
            low_generator = AutomaticMaskGenerator(low_predictor, AutomaticConfig(**settings))
            low_encoder = time_calls(low_predictor, "embed")
            low_masks, low_s = timed(lambda g=low_generator: g.generate(image))
            low = (low_s, sum(low_encoder))
        rows.append((layers, ref_s, our_s, sum(ref_encoder), sum(our_encoder), low))
        report_parity(our_masks, ref_masks)
        if low is not None:
            report_agreement(args.precision, low_masks, our_masks)

    print()
    head = f"{'crop layers':12}{'':22}{'reference':>12}{'ours fp32':>12}{'speed-up':>10}"
    if args.precision != "fp32":
        head += f"{'ours ' + args.precision:>12}{'speed-up':>10}"
    print(head)
    for layers, ref_s, our_s, ref_enc, our_enc, low in rows:
        for n, (label, ref_t, our_t) in enumerate(
            (
                ("with encoder (s)", ref_s, our_s),
                ("encoder excluded (s)", ref_s - ref_enc, our_s - our_enc),
            )
        ):
            line = f"{layers:<12}{label:22}{ref_t:12.2f}{our_t:12.2f}{ref_t / our_t:9.2f}x"
            if low is not None:
                low_t = low[0] if n == 0 else low[0] - low[1]
                line += f"{low_t:12.2f}{ref_t / low_t:9.2f}x"
            print(line)
    print(machine_line())


def time_calls(obj: object, name: str) -> list[float]:
    """Wrap ``obj.name`` so each call's duration is appended to the returned list."""
    spent: list[float] = []
    original = getattr(obj, name)

    def wrapper(*args, **kwargs):
        result, seconds = timed(original, *args, **kwargs)
        spent.append(seconds)
        return result

    setattr(obj, name, wrapper)
    return spent


def report_parity(our_masks, ref_masks) -> None:
    pairs = list(zip(our_masks, ref_masks, strict=False))  # record by record, in output order
    identical = sum(o.segmentation == r["segmentation"] for o, r in pairs)
    worst_iou = min((rle.iou(o.segmentation, r["segmentation"]) for o, r in pairs), default=1.0)
    print(
        f"  masks: reference {len(ref_masks)}, ours {len(our_masks)}; record by record "
        f"{identical} identical, worst mask IoU {worst_iou:.5f} (a logit within float noise of 0 "
        f"can flip a pixel, and a near-tie in predicted IoU can swap which duplicate NMS keeps)",
        flush=True,
    )


def report_agreement(precision: str, low_masks, our_masks) -> None:
    """How well the reduced-precision pass's masks match ours in fp32: for each fp32 mask the
    best IoU with any of the other pass's masks (the two lists need not line up one to one)."""
    ours = [m.segmentation for m in our_masks]
    lows = [m.segmentation for m in low_masks]
    best = rle.iou_matrix(ours, lows).max(axis=1) if ours and lows else np.zeros(len(ours))
    print(
        f"  {precision}: {len(lows)} masks vs ours fp32 {len(ours)}; each fp32 mask's best IoU "
        f"with a {precision} mask: mean {best.mean():.4f}, 5th percentile "
        f"{np.percentile(best, 5):.4f}, share >= 0.9: {(best >= 0.9).mean():.3f}",
        flush=True,
    )


if __name__ == "__main__":
    with torch.inference_mode():
        main()
