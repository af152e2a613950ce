"""python manage.py train_round DATASET [--mode auto|decoder|full] [--steps N] [--promotion P]
[--option KEY=VALUE ...] [--queue]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.management.lookup import find_dataset
from annotation.services.errors import ServiceError
from modeltrain.models import TrainingRound
from modeltrain.round_pipeline import run_training_round
from modeltrain.rounds import launch_training_round
from modeltrain.training import Progress


class Command(BaseCommand):
    help = (
        "Run a retraining round on a dataset's masks, starting from the active model version: "
        "export, train, evaluate on the held-out images, save a new version and (by the "
        "promotion policy) make it active. Runs here, printing progress; --queue hands it to "
        "a gpu worker instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("--mode", choices=["auto", "decoder", "full"], default=None)
        parser.add_argument("--steps", type=int, default=None, help="training steps")
        parser.add_argument("--promotion", choices=TrainingRound.Promotion.values, default=None)
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any TrainConfig field, value as JSON, e.g. --option lr=3e-4",
        )
        parser.add_argument("--queue", action="store_true", help="queue it for a gpu worker")

    def handle(self, *args, **options) -> None:
        dataset = find_dataset(options["dataset"])
        overrides = self._options(options["option"])
        if options["steps"] is not None:
            overrides["steps"] = options["steps"]
        try:
            run = launch_training_round(
                dataset,
                mode=options["mode"],
                promotion=options["promotion"],
                options=overrides,
                queue=options["queue"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"round {run.pk} on {dataset.name!r}: {run.config['mode']} training, "
            f"{run.config['steps']} steps, from {run.parent.name}"
        )
        if options["queue"]:
            self.stdout.write("queued for a gpu worker")
            return
        every = max(1, run.config["steps"] // 20)

        def show(progress: Progress) -> None:
            if progress.step % every == 0 or progress.step == progress.steps:
                self.stdout.write(
                    f"step {progress.step}/{progress.steps}  loss {progress.loss:.4f}  "
                    f"eta {progress.eta_seconds:.0f} s"
                )

        status = run_training_round(run.pk, on_progress=show)
        run.refresh_from_db()
        if status != TrainingRound.Status.DONE:
            raise CommandError(f"round {run.pk} {status}: {run.error}")
        self.stdout.write(
            json.dumps(
                {
                    "round": run.pk,
                    "version": run.result.name if run.result else None,
                    "heldout": run.result.metrics.get("heldout") if run.result else None,
                    "baseline": run.baseline_metrics,
                    "promoted": run.promoted,
                    "decision": run.decision,
                },
                indent=2,
            )
        )

    @staticmethod
    def _options(pairs: list[str]) -> dict:
        parsed = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--option {pair!r}: write KEY=VALUE")
            try:
                parsed[key] = json.loads(raw)
            except json.JSONDecodeError:
                parsed[key] = raw
        return parsed
