"""python manage.py import_images DATASET PATH [--short-side N] [--create]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import find_or_create_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.errors import ServiceError
from annotation.services.imports import candidates_at, import_images


class Command(BaseCommand):
    help = (
        "Import the images of a folder (recursively) or a zip archive on this machine into a "
        "dataset. Duplicates (same file already in the dataset) are skipped; each bad file is "
        "reported with its reason while the good ones are imported. Exits nonzero when nothing "
        "was imported and some files were rejected."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("path", help="a folder or a .zip file")
        parser.add_argument(
            "--short-side",
            type=int,
            default=None,
            help="downscale so the shorter side is at most N pixels (SA-1B's release used 1500)",
        )
        parser.add_argument(
            "--create", action="store_true", help="create the dataset if there is none by that name"
        )
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_or_create_dataset(options["dataset"], options["create"], self.stdout)
        try:
            with ProgressBar(options, "importing", "files") as bar:
                candidates = bar.iterate(candidates_at(options["path"]))
                report = import_images(dataset, candidates, short_side=options["short_side"])
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for item in report.imported:
            self.stdout.write(f"imported  {item['name']} -> image {item['id']}")
        for item in report.duplicates:
            self.stdout.write(f"duplicate {item['name']} (image {item['existing_id']})")
        for item in report.rejected:
            self.stdout.write(f"rejected  {item['name']}: {item['reason']}")
        self.stdout.write(f"{dataset.name}: {report.summary()}")
        if not report.imported and report.rejected:
            raise CommandError("nothing was imported")
