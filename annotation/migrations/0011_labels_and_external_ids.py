"""Labels (COCO categories) for masks, crowd flags and the source file's ids, kept for a lossless
COCO round trip."""

import importlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

tallies = importlib.import_module("annotation.migrations.0010_mask_tallies")


def recreate_sqlite_triggers(apps, schema_editor):
    """SQLite cannot add a foreign key in place: Django rebuilds annotation_mask under a new name
    and drops the old table, and its tally triggers with it. Put them back (the rows were copied,
    so the tallies themselves are still right). Every later migration that alters annotation_mask
    on SQLite needs this step too (import it from here: it also puts back the image documents'
    triggers)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in tallies.SQLITE_DROP + tallies.SQLITE_TRIGGERS:
        schema_editor.execute(statement)
    # The image documents' revision triggers (0014) go the same way once their table exists;
    # run from a migration before 0014, there is nothing to put back yet.
    if "annotation_imagedoc" in schema_editor.connection.introspection.table_names():
        docs = importlib.import_module("annotation.migrations.0014_image_docs")
        for statement in docs.SQLITE_DROP + docs.SQLITE_CREATE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0010_mask_tallies"),
        ("registry", "0002_own_table_and_version_datasets"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Label",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("color", models.CharField(default="#1f77b4", help_text="#rrggbb", max_length=7)),
                ("supercategory", models.CharField(blank=True, max_length=100)),
                (
                    "external_id",
                    models.BigIntegerField(
                        blank=True, help_text="category id in the source COCO file", null=True
                    ),
                ),
                (
                    "position",
                    models.PositiveIntegerField(default=0, help_text="order in pickers; digit key"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["dataset_id", "position", "id"],
            },
        ),
        migrations.AddField(
            model_name="image",
            name="external_id",
            field=models.BigIntegerField(
                blank=True, help_text="image id in the source COCO file", null=True
            ),
        ),
        migrations.AddField(
            model_name="mask",
            name="external_id",
            field=models.BigIntegerField(
                blank=True, help_text="annotation id in the source COCO file", null=True
            ),
        ),
        migrations.AddField(
            model_name="mask",
            name="iscrowd",
            field=models.BooleanField(default=False, help_text="COCO crowd region"),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(
                condition=models.Q(("external_id__isnull", False)),
                fields=["dataset", "external_id"],
                name="image_external_id_idx",
            ),
        ),
        migrations.AddField(
            model_name="label",
            name="dataset",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="labels",
                to="annotation.dataset",
            ),
        ),
        migrations.AddField(
            model_name="mask",
            name="label",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="masks",
                to="annotation.label",
            ),
        ),
        migrations.AddIndex(
            model_name="mask",
            index=models.Index(
                condition=models.Q(("label__isnull", False)),
                fields=["label"],
                name="mask_label_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="label",
            constraint=models.UniqueConstraint(
                fields=("dataset", "name"), name="label_unique_name"
            ),
        ),
        migrations.AddConstraint(
            model_name="label",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id__isnull", False)),
                fields=("dataset", "external_id"),
                name="label_unique_external_id",
            ),
        ),
        migrations.RunPython(recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
