"""The moved ModelVersion table takes registry's name (rows, ids and the foreign keys pointing at
it kept), its content type follows it (so admin permissions and history stay attached), and the
datasets each version was trained on get their own table (filled from the training rounds by
modeltrain 0004)."""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if content_types.objects.using(db).filter(app_label="registry", model="modelversion").exists():
        return
    content_types.objects.using(db).filter(app_label="modeltrain", model="modelversion").update(
        app_label="registry"
    )


def move_content_type_back(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if (
        content_types.objects.using(db)
        .filter(app_label="modeltrain", model="modelversion")
        .exists()
    ):
        return
    content_types.objects.using(db).filter(app_label="registry", model="modelversion").update(
        app_label="modeltrain"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("registry", "0001_initial"),
        ("modeltrain", "0003_model_version_in_registry"),
    ]

    operations = [
        migrations.AlterModelTable(name="modelversion", table=None),
        migrations.RunPython(move_content_type, move_content_type_back),
        migrations.CreateModel(
            name="VersionDataset",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("dataset_id", models.BigIntegerField()),
                (
                    "version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="datasets",
                        to="registry.modelversion",
                    ),
                ),
            ],
            options={
                "ordering": ["version_id", "dataset_id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("version", "dataset_id"), name="versiondataset_once_per_version"
                    )
                ],
            },
        ),
    ]
