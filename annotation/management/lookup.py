"""What the management commands share: finding the dataset named, the export filters."""

from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import Dataset


def find_dataset(ref: str) -> Dataset:
    """The dataset of that name, else of that id; CommandError if none."""
    dataset = Dataset.objects.filter(name=ref).first()
    if dataset is None and ref.isdigit():
        dataset = Dataset.objects.filter(pk=int(ref)).first()
    if dataset is None:
        raise CommandError(f"no dataset named {ref!r}")
    return dataset


def find_or_create_dataset(ref: str, create: bool, stdout) -> Dataset:
    """``find_dataset``, or with ``create`` a new dataset of that name (said on ``stdout``)."""
    try:
        return find_dataset(ref)
    except CommandError:
        if not create:
            raise CommandError(f"no dataset named {ref!r} (add --create to create it)") from None
    dataset = Dataset.objects.create(name=ref)
    stdout.write(f"created dataset {dataset.name!r} (id {dataset.pk})")
    return dataset


def add_filter_arguments(parser) -> None:
    parser.add_argument("--stage", type=int, help="only masks made in this stage (1, 2, 3)")
    parser.add_argument("--source", help="only masks of this source, e.g. automatic")
    parser.add_argument("--model-version", type=int, help="only masks of this model version id")
    parser.add_argument("--min-iou", type=float, help="minimum predicted IoU (humans' are 1.0)")
    parser.add_argument("--min-stability", type=float, help="minimum stability score")


def filters_from_options(options: dict) -> dict:
    return {
        "stage": options["stage"],
        "source": options["source"],
        "model_version": options["model_version"],
        "min_predicted_iou": options["min_iou"],
        "min_stability_score": options["min_stability"],
    }
