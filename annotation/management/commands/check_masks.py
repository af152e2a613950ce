"""python manage.py check_masks [--dataset NAME_OR_ID] [--fix] [--json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import find_dataset
from annotation.management.progress import ProgressBar, add_progress_argument
from annotation.services.mask_checks import check_stored_masks


class Command(BaseCommand):
    help = (
        "Check every stored mask's RLE against its image (as if it came from outside) and its "
        "stored area and box against the RLE, in pages of 1000 rows. By default a dry run: it "
        "only reports (counts and mask ids) and changes nothing. With --fix it deletes masks "
        "whose RLE is invalid or empty (nothing can be recovered from it) and rewrites the "
        "area, box and canonical RLE of the inconsistent ones. Exits 1 when problems were "
        "found and not fixed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", help="only this dataset (name or id)")
        parser.add_argument(
            "--fix",
            action="store_true",
            help="delete the invalid masks and repair the inconsistent ones (default: dry run)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        add_progress_argument(parser)

    def handle(self, *args, **options) -> None:
        dataset = find_dataset(options["dataset"]) if options["dataset"] else None
        with ProgressBar(options, "checking", "masks") as bar:
            report = check_stored_masks(dataset=dataset, fix=options["fix"], progress=bar)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=1))
        else:
            verbs = ("deleted", "repaired") if report.fixed else ("found", "found")
            self.stdout.write(
                f"{report.checked} masks checked: {len(report.invalid)} invalid "
                f"({verbs[0]}), {len(report.inconsistent)} inconsistent ({verbs[1]})"
            )
            for kind, rows in (("invalid", report.invalid), ("inconsistent", report.inconsistent)):
                for row in rows:
                    where = f"mask {row['mask_id']} (image {row['image_id']})"
                    self.stdout.write(f"  {kind}: {where}: {row['reason']}")
        problems = len(report.invalid) + len(report.inconsistent)
        if not report.fixed and problems:
            raise CommandError(f"{problems} stored masks need attention: run with --fix")
