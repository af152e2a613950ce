"""Reduced-precision parity on real images: masks of our encoder in bf16 (or fp16 on CUDA)
against our fp32 masks, over every GrabCut and tiny-COCO image of ``../shared/datasets``, for
seeded vit_b and vit_tiny weights, with point clicks, boxes and refinement clicks (issue 16's
bounds: mean mask IoU >= 0.99, 5th percentile >= 0.98, predicted IoU within 0.02).

    python benchmarks/bench_parity.py [--models vit_b,vit_tiny] [--max-images 0]
                                      [--precision bf16] [--clicks 4] [--seed 0]

Prompts sit on the ground truth, where an annotator would put them: point clicks inside the
object (GrabCut's mask, COCO's instances), its box, and refinement rounds in which each
precision feeds its own previous best mask back with a corrective click (on the object's
pixels the previous fp32 mask missed, else outside it). Each point click compares three
masks, each box and refinement click one. ``--max-images`` spreads a smaller sample over both
datasets (0 = all); vit_b's two embeddings per image cost about 12 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from benchmarks.common import ROOT, machine_line  # noqa: E402
from engine import SamPredictor, build_sam  # noqa: E402
from engine.precision import PRECISIONS  # noqa: E402
from tests.reference import random_state_dict  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
BOUNDS = {"mean": 0.99, "p5": 0.98, "iou_gap": 0.02}
KINDS = ("points", "boxes", "refinement")


def grabcut_items() -> list[tuple[Path, list[np.ndarray]]]:
    """(image file, [object mask]) of each GrabCut image; the band of 128 counts as object."""
    folder = DATASETS / "grabcut"
    items = []
    for image in sorted((folder / "images").iterdir()):
        mask_file = folder / "masks" / f"{image.stem}.png"
        if mask_file.is_file():
            items.append((image, [np.asarray(Image.open(mask_file).convert("L")) >= 128]))
    return items


def coco_items(max_objects: int = 6) -> list[tuple[Path, list[np.ndarray]]]:
    """(image file, the largest ``max_objects`` instance masks) of each tiny-COCO image."""
    from pycocotools import mask as mask_utils

    folder = DATASETS / "tiny-coco"
    data = json.loads((folder / "instances_train2017_small.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    items = []
    for info in sorted(data["images"], key=lambda i: i["file_name"]):
        h, w = info["height"], info["width"]
        anns = sorted(by_image.get(info["id"], []), key=lambda a: -a["area"])[:max_objects]
        masks = []
        for ann in anns:
            seg = ann["segmentation"]
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            else:
                rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
            masks.append(mask_utils.decode(rle).astype(bool))
        items.append((folder / "train_2017_small" / info["file_name"], masks))
    return items


def spread(items: list, count: int) -> list:
    """``count`` items evenly spread over ``items`` (all when count is 0 or too large)."""
    if count <= 0 or count >= len(items):
        return items
    return [items[int(i * len(items) / count)] for i in range(count)]


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (M, H, W) bool masks, mask by mask; two empty masks agree fully."""
    union = (a | b).sum((-2, -1))
    return np.where(union > 0, (a & b).sum((-2, -1)) / np.maximum(union, 1), 1.0)


@dataclass
class Tally:
    """Mask IoUs and predicted-IoU differences of one prompt kind."""

    ious: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)

    def add(self, a, b) -> None:
        self.ious += [float(v) for v in mask_iou(a.masks, b.masks)]
        self.gaps += [float(v) for v in np.abs(a.iou - b.iou)]


def pick(rng: np.random.Generator, region: np.ndarray) -> list[float] | None:
    """A random pixel of ``region`` as [x, y] (pixel centre), or None when it is empty."""
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    i = int(rng.integers(len(xs)))
    return [float(xs[i]) + 0.5, float(ys[i]) + 0.5]


def compare_image(fp32, low, image, objects, rng, clicks: int, tallies: dict) -> None:
    """Every prompt kind on one image, our fp32 embedding against the low-precision one."""
    ours, other = fp32.embed(image), low.embed(image)
    for obj in objects:
        ys, xs = np.nonzero(obj)
        if len(xs) == 0:
            continue
        box = [float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1]
        tallies["boxes"].add(
            fp32.decode(ours, box=box, multimask=False),
            fp32.decode(other, box=box, multimask=False),
        )
        for _ in range(clicks):
            points, labels = [pick(rng, obj)], [1]
            a, b = fp32.decode(ours, points, labels), fp32.decode(other, points, labels)
            tallies["points"].add(a, b)
            # Two refinement rounds: each precision refines its own previous answer.
            best_a, best_b = int(np.argmax(a.iou)), int(np.argmax(b.iou))
            logits_a, logits_b = (
                a.low_res_logits[best_a : best_a + 1],
                b.low_res_logits[best_b : best_b + 1],
            )
            previous = a.masks[best_a]
            for _ in range(2):
                missed = obj & ~previous
                point, label = (pick(rng, missed), 1) if missed.any() else (None, 0)
                if point is None:
                    point = pick(rng, previous & ~obj) or pick(rng, ~obj) or points[0]
                points, labels = [*points, point], [*labels, label]
                a = fp32.decode(ours, points, labels, mask_logits=logits_a, multimask=False)
                b = fp32.decode(other, points, labels, mask_logits=logits_b, multimask=False)
                tallies["refinement"].add(a, b)
                logits_a, logits_b = a.low_res_logits, b.low_res_logits
                previous = a.masks[0]


def report(model_type: str, tallies: dict) -> bool:
    """Print one line per prompt kind and the whole; True when every bound holds."""
    ok = True
    rows = [(kind, tallies[kind]) for kind in KINDS]
    whole = Tally(
        [v for t in tallies.values() for v in t.ious], [v for t in tallies.values() for v in t.gaps]
    )
    for kind, tally in [*rows, ("all", whole)]:
        ious = np.array(tally.ious)
        mean, p5, gap = ious.mean(), np.percentile(ious, 5), max(tally.gaps)
        passed = mean >= BOUNDS["mean"] and p5 >= BOUNDS["p5"] and gap <= BOUNDS["iou_gap"]
        ok &= bool(passed)
        print(
            f"{model_type:9}{kind:12}{len(ious):7d}{mean:9.4f}{p5:9.4f}{ious.min():9.4f}"
            f"{gap:10.4f}  {'PASS' if passed else 'FAIL'}",
            flush=True,
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="vit_b,vit_tiny")
    parser.add_argument("--max-images", type=int, default=0, help="0: every image")
    lower = [name for name in PRECISIONS if name != "fp32"]
    parser.add_argument("--precision", default="bf16", choices=lower)
    parser.add_argument("--clicks", type=int, default=4, help="point clicks per object")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATASETS.is_dir():
        print(f"no shared datasets beside the checkout ({DATASETS.name} under ../shared)")
        return 2
    grabcut, coco = grabcut_items(), coco_items()
    total = len(grabcut) + len(coco)
    if args.max_images > 0 and args.max_images < total:
        share = max(1, round(args.max_images * len(grabcut) / total))
        items = spread(grabcut, share) + spread(coco, max(1, args.max_images - share))
    else:
        items = grabcut + coco
    print(
        f"{len(items)} of {total} images ({len(grabcut)} GrabCut, {len(coco)} tiny-COCO); "
        f"{args.precision} vs ours fp32, seeded weights (seed {args.seed}), {args.clicks} "
        "clicks per object"
    )
    print(machine_line())
    print(
        f"{'model':9}{'prompts':12}{'masks':>7}{'mean':>9}{'p5':>9}{'worst':>9}"
        f"{'|dIoU|max':>10}  bounds: mean >= {BOUNDS['mean']}, p5 >= {BOUNDS['p5']}, "
        f"|dIoU| <= {BOUNDS['iou_gap']}"
    )
    ok = True
    for model_type in args.models.split(","):
        start = time.perf_counter()
        model = build_sam(model_type)
        model.load_state_dict(random_state_dict(model, seed=args.seed), strict=True)
        fp32, low = SamPredictor(model), SamPredictor(model, args.precision)
        rng = np.random.default_rng(args.seed)
        tallies = {kind: Tally() for kind in KINDS}
        for path, objects in items:
            image = np.asarray(Image.open(path).convert("RGB"))  # the pixels the masks index
            compare_image(fp32, low, image, objects, rng, args.clicks, tallies)
        ok &= report(model_type, tallies)
        print(f"{'':9}({len(items)} images in {time.perf_counter() - start:.0f} s)")
    print(machine_line())
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    with torch.inference_mode():
        sys.exit(main())
