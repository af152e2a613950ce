"""ModelVersion now belongs to the registry app (registry 0001): training rounds point there and
the model leaves modeltrain's state. State only: the rows stay where they are, and registry 0002
renames the table afterwards."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("modeltrain", "0002_training_rounds"),
        ("registry", "0001_initial"),
        ("annotation", "0008_model_version_in_registry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="traininground",
                    name="parent",
                    field=models.ForeignKey(
                        help_text="the version training starts from (the active one at launch)",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rounds_started",
                        to="registry.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="traininground",
                    name="result",
                    field=models.OneToOneField(
                        blank=True,
                        help_text="the version this round made",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="training_round",
                        to="registry.modelversion",
                    ),
                ),
                migrations.DeleteModel(name="ModelVersion"),
            ],
        ),
    ]
