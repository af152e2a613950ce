"""ModelVersion moves here from modeltrain, its rows kept: this migration only tells Django's
state that the existing table (still named modeltrain_modelversion) is now registry's model.
annotation 0008 and modeltrain 0003 point their foreign keys here, modeltrain 0003 drops the
model from its own state, and 0002 renames the table."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("modeltrain", "0002_training_rounds"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ModelVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, unique=True)),
                        (
                            "model_type",
                            models.CharField(
                                help_text="engine registry name, e.g. vit_b", max_length=32
                            ),
                        ),
                        (
                            "checkpoint",
                            models.CharField(
                                help_text=(
                                    "checkpoint file, relative to CHECKPOINT_DIR when inside it"
                                ),
                                max_length=1000,
                            ),
                        ),
                        (
                            "encoder_key",
                            models.CharField(
                                help_text=(
                                    "hash of the image-encoder weights; embeddings are keyed by it"
                                ),
                                max_length=128,
                            ),
                        ),
                        (
                            "round",
                            models.PositiveIntegerField(
                                default=0, help_text="retraining round (0: the start)"
                            ),
                        ),
                        ("is_active", models.BooleanField(default=False)),
                        (
                            "trained_on",
                            models.TextField(
                                help_text="plain words on the data these weights have seen"
                            ),
                        ),
                        (
                            "is_official",
                            models.BooleanField(
                                default=False, help_text="one of Meta's released files"
                            ),
                        ),
                        ("metrics", models.JSONField(blank=True, default=dict)),
                        ("config", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="children",
                                to="registry.modelversion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "modeltrain_modelversion",
                        "ordering": ["-created_at", "-id"],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("is_active", True)),
                                fields=("is_active",),
                                name="modelversion_at_most_one_active",
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
