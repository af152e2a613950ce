"""python manage.py evaluate --images DIR --masks DIR [--model active|VERSION] [--max-clicks N]
[--per-object] [--limit N]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from engine.registry import CheckpointError
from modeltrain.evaluation import evaluate_images
from modeltrain.folders import read_folder
from registry.active import get_active_version
from registry.models import ModelVersion
from registry.predictors import describe_version, get_predictor


class Command(BaseCommand):
    help = (
        "Evaluate a model version on a folder of images with ground-truth masks (PNG paired by "
        "file name; 0 background, 128 ignored, any other value an object): 1-click mIoU with "
        "the highest-scoring and the best of three masks, NoC@85 and NoC@90 (clicks at the "
        "centre of the largest error region, at most --max-clicks), mIoU after 5 and 10 "
        "clicks, box-prompt mIoU. Prints JSON."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--images", required=True, help="folder of images")
        parser.add_argument("--masks", required=True, help="folder of PNG masks")
        parser.add_argument("--model", default="active", help="active, or a version id or name")
        parser.add_argument("--max-clicks", type=int, default=20)
        parser.add_argument("--limit", type=int, default=None, help="at most N images")
        parser.add_argument("--per-object", action="store_true", help="add every object's numbers")

    def handle(self, *args, **options) -> None:
        if options["max_clicks"] < 1:
            raise CommandError("--max-clicks must be at least 1")
        version = self._version(options["model"])
        try:
            folder = read_folder(options["images"], options["masks"], options["limit"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for warning in folder.warnings:
            self.stderr.write(f"warning: {warning}")
        try:
            predictor = get_predictor(version.pk)
        except CheckpointError as exc:
            raise CommandError(f"model version {version.name} cannot be loaded: {exc}") from exc
        per_object: list[dict] = []
        summary = evaluate_images(
            predictor,
            folder.images,
            max_clicks=options["max_clicks"],
            per_object=per_object if options["per_object"] else None,
        )
        answer: dict[str, Any] = {"model": describe_version(version), **summary}
        answer["max_clicks"] = options["max_clicks"]
        if options["per_object"]:
            answer["objects"] = per_object
        self.stdout.write(json.dumps(answer, indent=2))

    @staticmethod
    def _version(ref: str) -> ModelVersion:
        if ref == "active":
            return get_active_version()
        version = ModelVersion.objects.filter(name=ref).first()
        if version is None and ref.isdigit():
            version = ModelVersion.objects.filter(pk=int(ref)).first()
        if version is None:
            raise CommandError(f"no model version named {ref!r} (use active, an id or a name)")
        return version
