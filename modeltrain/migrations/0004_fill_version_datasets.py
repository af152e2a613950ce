"""Tell the registry which dataset each existing round's version was trained on (from now on a
round does so itself when it saves its version)."""

from django.db import migrations


def fill(apps, schema_editor):
    rounds = apps.get_model("modeltrain", "TrainingRound")
    version_datasets = apps.get_model("registry", "VersionDataset")
    db = schema_editor.connection.alias
    made = rounds.objects.using(db).filter(result__isnull=False)
    version_datasets.objects.using(db).bulk_create(
        [
            version_datasets(version_id=version_id, dataset_id=dataset_id)
            for version_id, dataset_id in made.values_list("result_id", "dataset_id")
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("modeltrain", "0003_model_version_in_registry"),
        ("registry", "0002_own_table_and_version_datasets"),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
