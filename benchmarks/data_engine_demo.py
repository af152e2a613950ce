"""The data engine's loop, end to end, on a folder of images with ground truth (GrabCut by
default): import, a simulated annotator making masks through the REST API with the model's
help, retraining rounds from the cold-start vit_tiny (or from a checkpoint), and the held-out
numbers after each.

    python benchmarks/data_engine_demo.py [PATH] [--rounds 3] [--steps 150] [--mode decoder]
        [--checkpoint var/checkpoints/sam_vit_b_01ec64.pth --model-type vit_b]

PATH holds ``images/`` and ``masks/`` (PNG paired by name: 0 background, 255 object, 128 an
ignored band). The platform's held-out rule (a share of the images by content hash) sets some
images aside; their ground truth is imported as the admin's evaluation masks. The others are
annotated in ``rounds + 1`` batches by a simulated annotator over the API: its clicks go where
the evaluation puts them (the centre of the largest error region), it accepts once the model's
mask reaches IoU 0.9 or after 20 clicks, and saves the ground truth as its mask, as a person
finishing with the brush would. After each batch but the last, an admin launches a training
round through the API (promoted when its held-out numbers beat the active version's).

Everything runs in one process (Celery inline, SQLite) in a temporary data directory.
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
ACCEPT_IOU = 0.9
MAX_CLICKS = 20


def setup_django(data_dir: Path, heldout_percent: int, checkpoint: str, model_type: str) -> None:
    os.environ["SADE_DATA_DIR"] = str(data_dir)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    # The round's starting model: the cold start, unless a checkpoint file is named.
    os.environ["SAM_CHECKPOINT"] = str(Path(checkpoint).resolve()) if checkpoint else ""
    os.environ["SAM_MODEL_TYPE"] = model_type
    os.environ["SADE_TRAINING_HELDOUT_PERCENT"] = str(heldout_percent)
    os.environ.setdefault("SADE_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def read_truth(masks: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image as PILImage

    values = np.asarray(PILImage.open(masks / f"{stem}.png"))
    return values == 255, values == 128


class Annotator:
    """A person at the annotation tool, through the REST API."""

    def __init__(self, client) -> None:
        self.client = client

    def annotate(self, image, truth: np.ndarray, ignore: np.ndarray) -> int:
        """Click until the model's mask is good enough; save the mask; return the clicks."""
        from engine import rle as rle_codec
        from modeltrain.metrics import first_click, iou, next_click

        url = f"/api/images/{image.pk}/predict/"
        points: list[list[int]] = []
        labels: list[int] = []
        click = first_click(truth, ignore)
        logits_id, version = None, None
        while click is not None and len(points) < MAX_CLICKS:
            points.append([click.x, click.y])
            labels.append(click.label)
            body = {"points": points, "labels": labels, "multimask": len(points) == 1}
            if logits_id is not None:
                body["mask_input_id"] = logits_id
            answer = self.client.post(url, body, format="json")
            if answer.status_code != 200:
                raise RuntimeError(f"predict answered {answer.status_code}: {answer.content!r}")
            data = answer.json()
            version = data["model"]["id"]
            best = max(data["masks"], key=lambda m: m["predicted_iou"])
            logits_id = best["logits_id"]
            mask = rle_codec.decode(best["rle"]).astype(bool)
            if iou(mask, truth, ignore) >= ACCEPT_IOU:
                break
            click = next_click(mask, truth, ignore)
        saved = self.client.post(
            "/api/masks/",
            {
                "image": image.pk,
                "rle": rle_codec.encode(truth),
                "source": "model_assisted",
                "model_version": version,
                "prompt": {"points": points, "labels": labels},
            },
            format="json",
        )
        if saved.status_code != 201:
            raise RuntimeError(f"saving the mask answered {saved.status_code}: {saved.content!r}")
        return len(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150, help="training steps per round")
    parser.add_argument("--mode", choices=["decoder", "full"], default="decoder")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--heldout-percent", type=int, default=20)
    parser.add_argument("--promotion", choices=["auto", "always"], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--checkpoint", default="", help="start from this checkpoint (e.g. Meta's sam_vit_b)"
    )
    parser.add_argument("--model-type", default="vit_b", help="the checkpoint's model type")
    args = parser.parse_args(argv)
    source = Path(args.path)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    data_dir = Path(tempfile.mkdtemp(prefix="sade-demo-"))
    started = time.monotonic()
    try:
        setup_django(data_dir, args.heldout_percent, args.checkpoint, args.model_type)
        rows = run_demo(source, args)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print_table(rows, time.monotonic() - started)
    return 0


def run_demo(source: Path, args) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from annotation.models import Dataset, DatasetMembership, Image
    from modeltrain.models import TrainingRound
    from modeltrain.round_export import assign_splits
    from registry.active import get_active_version

    users = get_user_model().objects
    admin = users.create_user("admin", password="x", is_staff=True, is_superuser=True)
    person = users.create_user("annotator", password="x")
    call_command(
        "import_images", "grabcut", str(source / "images"), "--create", stdout=io.StringIO()
    )
    dataset = Dataset.objects.get(name="grabcut")
    DatasetMembership.objects.create(dataset=dataset, user=person, role="annotator")
    admin_api, person_api = APIClient(), APIClient()
    admin_api.force_authenticate(admin)
    person_api.force_authenticate(person)
    start = get_active_version()

    assign_splits(dataset)
    images = list(Image.objects.filter(dataset=dataset).select_related("training_split"))
    stem = {image.pk: Path(image.original_name).stem for image in images}
    heldout = [i for i in images if i.training_split.heldout]
    to_annotate = [i for i in images if not i.training_split.heldout]
    for image in heldout:  # the admin's evaluation set: ground truth, imported
        from engine import rle as rle_codec

        truth, _ = read_truth(source / "masks", stem[image.pk])
        admin_api.post(
            "/api/masks/",
            {"image": image.pk, "rle": rle_codec.encode(truth), "source": "imported"},
            format="json",
        )
    batches = np.array_split(np.arange(len(to_annotate)), args.rounds + 1)
    print(
        f"{len(images)} images: {len(heldout)} held out, {len(to_annotate)} annotated in "
        f"{len(batches)} batches; {args.rounds} rounds of {args.steps} {args.mode} steps",
        flush=True,
    )
    annotator = Annotator(person_api)
    rows = [{"round": 0, "version": start, "trained_masks": 0}]
    options = {"steps": args.steps}
    if args.lr is not None:
        options["lr"] = args.lr
    for number, batch in enumerate(batches):
        tick = time.monotonic()
        clicks = []
        for index in batch:
            image = to_annotate[index]
            truth, ignore = read_truth(source / "masks", stem[image.pk])
            clicks.append(annotator.annotate(image, truth, ignore))
        rows[-1]["clicks_per_mask"] = float(np.mean(clicks))
        rows[-1]["annotation_s"] = time.monotonic() - tick
        print(f"batch {number + 1}: {np.mean(clicks):.1f} clicks per mask", flush=True)
        if number == args.rounds:
            break
        tick = time.monotonic()
        answer = admin_api.post(
            "/api/training-rounds/",
            {
                "dataset": dataset.pk,
                "mode": args.mode,
                "promotion": args.promotion,
                "options": options,
            },
            format="json",
        )
        if answer.status_code != 202:
            raise RuntimeError(f"launching a round answered {answer.status_code}: {answer.json()}")
        run = TrainingRound.objects.select_related("result", "parent").get(pk=answer.json()["id"])
        if run.status != "done":
            raise RuntimeError(f"round {run.pk} {run.status}: {run.error}")
        if number == 0:
            rows[0]["heldout"] = run.baseline_metrics
        rows.append(
            {
                "round": number + 1,
                "version": run.result,
                "trained_masks": run.train_masks,
                "heldout": run.result.metrics["heldout"],
                "promoted": run.promoted,
                "train_s": time.monotonic() - tick,
            }
        )
        print(f"round {number + 1}: {run.decision}", flush=True)
    return rows


def print_table(rows: list[dict], seconds: float) -> None:
    print()
    print(
        "| model | masks trained on | held-out NoC@90 | NoC@85 | 1-click mIoU (top / best) "
        "| mIoU 5 / 10 clicks | box mIoU | annotator clicks per mask |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        m = row.get("heldout") or {}
        name = f"{row['version'].name} (round 0)" if row["round"] == 0 else f"round {row['round']}"
        if row["round"] and not row.get("promoted"):
            name += " (not promoted)"
        clicks = row.get("clicks_per_mask")
        print(
            f"| {name} | {row['trained_masks']} | {m.get('noc90', float('nan')):.2f} "
            f"| {m.get('noc85', float('nan')):.2f} "
            f"| {m.get('miou_1click_top', float('nan')):.3f} / "
            f"{m.get('miou_1click_best', float('nan')):.3f} "
            f"| {m.get('miou_5clicks', float('nan')):.3f} / "
            f"{m.get('miou_10clicks', float('nan')):.3f} "
            f"| {m.get('miou_box', float('nan')):.3f} "
            f"| {'-' if clicks is None else f'{clicks:.1f}'} |"
        )
    held = (rows[0].get("heldout") or {}).get("masks", 0)
    print(f"\n{held} held-out masks; total {seconds / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
