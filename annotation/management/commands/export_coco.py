"""python manage.py export_coco DATASET OUT.json [--ids platform] [--results] [--stage N] ..."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import add_filter_arguments, filters_from_options, find_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.coco import ID_CHOICES, export_coco, parse_coco_options
from annotation.services.errors import ServiceError
from annotation.services.export_format import parse_filters


class Command(BaseCommand):
    help = (
        "Export a dataset's masks as a COCO instances JSON file (RLE segmentations, the "
        "dataset's labels as categories, the source file's ids unless --ids platform), or as "
        "COCO results for COCOeval (--results); the file is written under a temporary name, "
        "then renamed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("out", help="output .json file")
        parser.add_argument(
            "--ids", choices=ID_CHOICES, default="source", help="whose ids to write (source)"
        )
        parser.add_argument(
            "--results", action="store_true", help="results format (with scores), for COCOeval"
        )
        add_filter_arguments(parser)
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_dataset(options["dataset"])
        try:
            filters = parse_filters(filters_from_options(options))
            coco = parse_coco_options(
                {"ids": options["ids"], "coco_format": "results" if options["results"] else None}
            )
            with ProgressBar(options, "exporting", "images") as bar:
                counts = export_coco(
                    dataset, options["out"], filters=filters, options=coco, progress=bar
                )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{dataset.name}: {counts['images']} images, {counts['masks']} masks "
            f"in {options['out']}"
        )
