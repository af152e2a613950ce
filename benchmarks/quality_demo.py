"""An audit of the model's automatic masks, as the SA paper did for SA-1B, on a folder of images
with ground truth (GrabCut by default), then a release gate on an export.

    python benchmarks/quality_demo.py [PATH] [--points-per-side 8] [--model-type vit_tiny]
        [--checkpoint FILE] [--match-iou 0.0] [--gate 0.9]

PATH holds ``images/`` and ``masks/`` (PNG paired by name: 255 the object, 128 an ignored band,
treated as background here). Everything goes through the REST API in one process (Celery
inline, SQLite, a temporary data directory):

1. import the images into stage 3 and run a fully automatic pass with the model (the cold-start
   vit_tiny unless a checkpoint is named; thresholds at 0 so that it keeps masks at all);
2. an admin starts an audit over every image;
3. a simulated reviewer takes each image of the sample: the model mask that overlaps the ground
   truth most (IoU above ``--match-iou``) is edited into the ground truth, every other model mask
   is deleted as wrong, and when no mask matched the object is added as missed; then Done;
4. the report is printed (shares at IoU > 0.90 / 0.75 / 0.50, median, precision, recall,
   boundary IoU, the histogram), and an SA-1B export with the gate
   ``{"min_share_iou_90": GATE}`` is asked for: refused (409) unless the audit met it.

With the cold-start model the shares are low: the point is that they are measured and that the
gate acts on them. Not a test (nothing asserts); CI does not run it.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

DEFAULT_PATH = str(ROOT.parent / "shared" / "datasets" / "grabcut")  # beside the checkout


def setup_django(data_dir: Path, checkpoint: str, model_type: str) -> None:
    os.environ["SADE_DATA_DIR"] = str(data_dir)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ["SAM_CHECKPOINT"] = str(Path(checkpoint).resolve()) if checkpoint else ""
    os.environ["SAM_MODEL_TYPE"] = model_type
    os.environ.setdefault("SADE_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def truth_of(masks_dir: Path, stem: str) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(PILImage.open(masks_dir / f"{stem}.png")) == 255


def check(answer, expected: int, what: str):
    if answer.status_code != expected:
        raise RuntimeError(f"{what} answered {answer.status_code}: {answer.content[:500]!r}")
    return answer.json() if answer.content else None


def review(client, image, truth: np.ndarray, match_iou: float) -> str:
    """The simulated reviewer's work on one image; returns what it did."""
    from annotation.services.audit_metrics import iou
    from engine import rle as rle_codec

    masks = check(client.get(f"/api/masks/?image={image}&page_size=1000"), 200, "masks")
    masks = masks["results"] if isinstance(masks, dict) else masks
    model = [m for m in masks if m["source"] == "automatic"]
    scores = [iou(rle_codec.decode(m["rle"]).astype(bool), truth) for m in model]
    best = int(np.argmax(scores)) if scores and max(scores) > match_iou else None
    for k, mask in enumerate(model):
        if k == best:
            body = {"rle": rle_codec.encode(truth), "version": mask["version"]}
            check(client.patch(f"/api/masks/{mask['id']}/", body, format="json"), 200, "edit")
        else:
            url = f"/api/masks/{mask['id']}/?version={mask['version']}"
            check(client.delete(url), 204, "delete")
    if best is None:
        body = {"image": image, "rle": rle_codec.encode(truth), "source": "manual"}
        check(client.post("/api/masks/", body, format="json"), 201, "add")
    return f"{len(model)} model masks, best IoU {max(scores, default=0):.3f}" + (
        "" if best is not None else ", object added"
    )


def run(source: Path, args) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from annotation.models import Dataset, DatasetMembership, Image
    from annotation.services.image_holds import change_stage

    users = get_user_model().objects
    admin = users.create_user("admin", password="x", is_staff=True, is_superuser=True)
    reviewer = users.create_user("reviewer", password="x")
    folder = source / "images"
    if args.limit:  # import only the first N files (each import computes an embedding)
        folder = Path(tempfile.mkdtemp(prefix="sade-quality-images-"))
        for path in sorted((source / "images").iterdir())[: args.limit]:
            shutil.copy(path, folder / path.name)
    call_command("import_images", "grabcut", str(folder), "--create", stdout=io.StringIO())
    if args.limit:
        shutil.rmtree(folder, ignore_errors=True)
    dataset = Dataset.objects.get(name="grabcut")
    print(f"imported {dataset.images.count()} images from {source}", flush=True)
    DatasetMembership.objects.create(dataset=dataset, user=reviewer, role="reviewer")
    images = list(Image.objects.filter(dataset=dataset))
    change_stage(dataset, [image.pk for image in images], 3)
    admin_api, reviewer_api = APIClient(), APIClient()
    admin_api.force_authenticate(admin)
    reviewer_api.force_authenticate(reviewer)

    tick = time.monotonic()
    config = {
        "points_per_side": args.points_per_side,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "min_mask_region_area": 0,
        "crop_n_layers": 0,  # the whole image only: crops embed each image five times more
    }
    body = {"kind": "automatic", "stage": 3, "config": config}
    run_pass = check(
        admin_api.post(f"/api/datasets/{dataset.pk}/automatic-passes/", body, format="json"),
        202,
        "the automatic pass",
    )
    passed = check(admin_api.get(f"/api/automatic-passes/{run_pass['id']}/"), 200, "the pass")
    print(
        f"automatic pass {passed['id']} ({passed['status']}): {passed['mask_count']} masks on "
        f"{passed['done_images']} images in {time.monotonic() - tick:.0f} s "
        f"({args.model_type}, {args.points_per_side}x{args.points_per_side} points)",
        flush=True,
    )

    audit = check(
        admin_api.post(
            f"/api/datasets/{dataset.pk}/audits/",
            {"source": "automatic", "sample_size": len(images), "seed": 0},
            format="json",
        ),
        201,
        "starting the audit",
    )
    stems = {image.pk: Path(image.original_name).stem for image in images}
    reviewed = 0
    while True:
        answer = check(reviewer_api.post(f"/api/audits/{audit['id']}/next-image/"), 200, "next")
        image = answer["image"]
        if image is None:
            break
        what = review(reviewer_api, image, truth_of(source / "masks", stems[image]), args.match_iou)
        done = check(
            reviewer_api.post(f"/api/audits/{audit['id']}/images/{image}/done/"), 200, "done"
        )
        reviewed += 1
        if args.verbose:
            print(f"  image {image} ({stems[image]}): {what}; {done}", flush=True)
    report = check(admin_api.get(f"/api/audits/{audit['id']}/"), 200, "the audit")
    print_report(report, reviewed)

    gate = {"min_share_iou_90": args.gate}
    answer = admin_api.post(
        f"/api/datasets/{dataset.pk}/exports/", {"format": "sa1b", "gate": gate}, format="json"
    )
    print(f"\nexport with gate {gate}: HTTP {answer.status_code}")
    print(f"  {answer.json().get('detail') or answer.json().get('report', {}).get('gate')}")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(audit: dict, reviewed: int) -> None:
    report = audit["report"]
    print(f"\naudit {audit['id']} ({audit['status']}): {reviewed} images reviewed\n")
    print(
        "| masks | originals | pairs | deleted | added | IoU > 0.90 | > 0.75 | > 0.50 "
        "| median IoU | boundary IoU | precision | recall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [("all", report["overall"])] + [
        (f"{g['model_version_name']} {g['source']} stage {g['stage']}", g) for g in report["groups"]
    ]
    for name, f in rows:
        print(
            f"| {name} | {f['originals']} | {f['pairs']} | {f['deleted']} | {f['added']} "
            f"| {_pct(f['share_iou_90'])} | {_pct(f['share_iou_75'])} | {_pct(f['share_iou_50'])} "
            f"| {_num(f['median_iou'])} | {_num(f['mean_boundary_iou'])} "
            f"| {_pct(f['precision'])} | {_pct(f['recall'])} |"
        )
    edges, counts = report["histogram_edges"], report["overall"]["histogram"]
    print("\nIoU histogram of the pairs (all masks):")
    top = max(counts) or 1
    for k, count in enumerate(counts):
        bar = "#" * round(40 * count / top)
        print(f"  {edges[k]:.2f}-{edges[k + 1]:.2f} {count:4d} {bar}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--points-per-side", type=int, default=8)
    parser.add_argument("--model-type", default="vit_tiny")
    parser.add_argument("--checkpoint", default="", help="the model (default: the cold start)")
    parser.add_argument("--match-iou", type=float, default=0.0)
    parser.add_argument("--gate", type=float, default=0.9, help="min share at IoU > 0.90")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    source = Path(args.path)
    if not (source / "images").is_dir():
        parser.error(f"{source}/images: no such folder (the shared datasets beside the checkout)")
    data_dir = Path(tempfile.mkdtemp(prefix="sade-quality-"))
    started = time.monotonic()
    try:
        setup_django(data_dir, args.checkpoint, args.model_type)
        run(source, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
