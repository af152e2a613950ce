"""python manage.py export_sa1b DATASET OUT_DIR [--stage N] [--source S] [--min-iou X]
[--min-stability X] [--model-version ID] [--shard-size N]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import add_filter_arguments, filters_from_options, find_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.errors import ServiceError
from annotation.services.export_format import parse_filters
from annotation.services.sa1b import DEFAULT_SHARD_SIZE, export_sa1b


class Command(BaseCommand):
    help = (
        "Export a dataset's masks in SA-1B's layout into OUT_DIR (which must not exist or be "
        "empty): tar shards sa_000000.tar, ... of images and per-image JSON, and "
        "meta/manifest.json and meta/sa_images_ids.txt. OUT_DIR appears only once the export "
        "is complete."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("out_dir", help="output folder")
        add_filter_arguments(parser)
        parser.add_argument(
            "--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="images per tar shard"
        )
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_dataset(options["dataset"])
        try:
            filters = parse_filters(filters_from_options(options))
            with ProgressBar(options, "exporting", "images") as bar:
                manifest = export_sa1b(
                    dataset,
                    options["out_dir"],
                    filters=filters,
                    shard_size=options["shard_size"],
                    progress=bar,
                )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for item in manifest["skipped"]:
            self.stdout.write(f"skipped image {item['image_id']}: {item['reason']}")
        self.stdout.write(
            f"{dataset.name}: {manifest['images']} images, {manifest['masks']} masks in "
            f"{len(manifest['shards'])} shards under {options['out_dir']}"
        )
