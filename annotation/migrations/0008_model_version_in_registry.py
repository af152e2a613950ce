"""Masks and automatic passes point at registry.ModelVersion (the same table, moved there by
registry 0001): state only, the database's foreign keys already reference that table."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0007_job_cancelled"),
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="mask",
                    name="model_version",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="masks",
                        to="registry.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="automaticpass",
                    name="model_version",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="automatic_passes",
                        to="registry.modelversion",
                    ),
                ),
            ],
        ),
    ]
