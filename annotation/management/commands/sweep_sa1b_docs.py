"""python manage.py sweep_sa1b_docs [--min-age SECONDS] [--dry-run] [--json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.services.sa1b_docs import SWEEP_MIN_AGE_S, sweep_doc_files


class Command(BaseCommand):
    help = (
        "Remove the SA-1B document files that no row records: temporary files and documents "
        "left by a process killed while writing or recording them, older revisions, those of "
        "deleted images. Files younger than --min-age seconds (their writer may be about to "
        "record them) and files not named as documents are left alone. Celery beat runs it "
        "once a day (CELERY_BEAT_SCHEDULE's sweep-sa1b-docs)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--min-age",
            type=float,
            default=SWEEP_MIN_AGE_S,
            help=f"only files older than this many seconds (default {SWEEP_MIN_AGE_S})",
        )
        parser.add_argument("--dry-run", action="store_true", help="only report what would go")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options) -> None:
        if not 0 <= options["min_age"] <= 10 * 365 * 86400:
            raise CommandError("--min-age must be from 0 to ten years, in seconds")
        report = sweep_doc_files(options["min_age"], dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        verb = "would be removed" if options["dry_run"] else "removed"
        self.stdout.write(
            f"{report['files']} files: {report['removed']} {verb} ({report['bytes']:,} bytes), "
            f"{report['recent']} too recent to judge, {report['unknown']} not documents (left)"
        )
