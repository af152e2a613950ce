"""python manage.py export_coco DATASET OUT.json [--stage N] [--source S] [--min-iou X] ..."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import add_filter_arguments, filters_from_options, find_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.coco import export_coco
from annotation.services.errors import ServiceError
from annotation.services.export_format import parse_filters


class Command(BaseCommand):
    help = (
        "Export a dataset's masks as a COCO instances JSON file (RLE segmentations, one "
        "category 'object'); the file is written under a temporary name, then renamed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("out", help="output .json file")
        add_filter_arguments(parser)
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_dataset(options["dataset"])
        try:
            filters = parse_filters(filters_from_options(options))
            with ProgressBar(options, "exporting", "images") as bar:
                counts = export_coco(dataset, options["out"], filters=filters, progress=bar)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{dataset.name}: {counts['images']} images, {counts['masks']} masks "
            f"in {options['out']}"
        )
