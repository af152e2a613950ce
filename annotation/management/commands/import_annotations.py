"""python manage.py import_annotations DATASET PATH [--create]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import find_or_create_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.annotation_imports import import_annotations
from annotation.services.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Import masks into a dataset from a COCO instances JSON file (images matched by file "
        "name), an SA-1B tar, or a folder of SA-1B files or tars (images imported too). Each "
        "image's masks are imported all or nothing; skipped images are listed with the reason. "
        "Exits nonzero when nothing was imported and something was skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("path", help="a COCO .json, an SA-1B .tar or a folder")
        parser.add_argument(
            "--create", action="store_true", help="create the dataset if there is none by that name"
        )
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_or_create_dataset(options["dataset"], options["create"], self.stdout)
        try:
            with ProgressBar(options, "importing", "images") as bar:
                report = import_annotations(dataset, options["path"], count=bar.iterate)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for item in report.imported:
            self.stdout.write(f"imported  {item['name']}: {item['masks']} masks")
        for item in report.already_imported:
            self.stdout.write(f"already   {item['name']}: {item['masks']} masks")
        for item in report.skipped:
            self.stdout.write(f"skipped   {item['name']}: {item['reason']}")
        self.stdout.write(f"{dataset.name}: {report.summary()}")
        if not report.imported and report.skipped:
            raise CommandError("nothing was imported")
