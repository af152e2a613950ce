"""Mask tallies for the statistics (annotation.services.tallies): two tables and the triggers on
annotation_mask that keep them, on PostgreSQL and on SQLite, then a first count of the masks
already stored. Reversible: going back drops the triggers, then the tables."""

import django.db.models.deletion
from django.db import migrations, models

HUMAN = "('manual', 'model_assisted')"

# What one mask row adds to the tallies (sign +1) or takes away (-1). {row} is NEW or OLD.
PG_FUNCTION = f"""
CREATE FUNCTION annotation_mask_tally_row(m annotation_mask, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    owner bigint;
BEGIN
    IF sign > 0 THEN
        INSERT INTO annotation_masktally (image_id, stage, model_version_key, masks)
        VALUES (m.image_id, m.stage, COALESCE(m.model_version_id, 0), 1)
        ON CONFLICT (image_id, stage, model_version_key)
        DO UPDATE SET masks = annotation_masktally.masks + 1;
    ELSE
        UPDATE annotation_masktally SET masks = masks - 1
        WHERE image_id = m.image_id AND stage = m.stage
          AND model_version_key = COALESCE(m.model_version_id, 0);
        DELETE FROM annotation_masktally
        WHERE image_id = m.image_id AND stage = m.stage
          AND model_version_key = COALESCE(m.model_version_id, 0) AND masks = 0;
    END IF;
    IF m.source IN {HUMAN} AND m.seconds_spent > 0 THEN
        SELECT dataset_id INTO owner FROM annotation_image WHERE id = m.image_id;
        IF owner IS NULL THEN
            RETURN;  -- the image is being deleted: its dataset's rows go with the dataset
        END IF;
        IF sign > 0 THEN
            INSERT INTO annotation_humanmaskday (dataset_id, stage, day, masks, seconds)
            VALUES (owner, m.stage, (m.created_at AT TIME ZONE 'UTC')::date, 1, m.seconds_spent)
            ON CONFLICT (dataset_id, stage, day) DO UPDATE SET
                masks = annotation_humanmaskday.masks + 1,
                seconds = annotation_humanmaskday.seconds + EXCLUDED.seconds;
        ELSE
            UPDATE annotation_humanmaskday
            SET masks = masks - 1, seconds = seconds - m.seconds_spent
            WHERE dataset_id = owner AND stage = m.stage
              AND day = (m.created_at AT TIME ZONE 'UTC')::date;
            DELETE FROM annotation_humanmaskday
            WHERE dataset_id = owner AND stage = m.stage
              AND day = (m.created_at AT TIME ZONE 'UTC')::date AND masks = 0;
        END IF;
    END IF;
END $$;

CREATE FUNCTION annotation_mask_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM annotation_mask_tally_row(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM annotation_mask_tally_row(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER annotation_mask_tally_write AFTER INSERT OR DELETE ON annotation_mask
FOR EACH ROW EXECUTE FUNCTION annotation_mask_tally();

CREATE TRIGGER annotation_mask_tally_change AFTER UPDATE ON annotation_mask
FOR EACH ROW WHEN (
    OLD.image_id IS DISTINCT FROM NEW.image_id OR OLD.stage IS DISTINCT FROM NEW.stage
    OR OLD.model_version_id IS DISTINCT FROM NEW.model_version_id
    OR OLD.source IS DISTINCT FROM NEW.source
    OR OLD.seconds_spent IS DISTINCT FROM NEW.seconds_spent
    OR OLD.created_at IS DISTINCT FROM NEW.created_at
) EXECUTE FUNCTION annotation_mask_tally();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS annotation_mask_tally_change ON annotation_mask;
DROP TRIGGER IF EXISTS annotation_mask_tally_write ON annotation_mask;
DROP FUNCTION IF EXISTS annotation_mask_tally();
DROP FUNCTION IF EXISTS annotation_mask_tally_row(annotation_mask, integer);
"""


def _sqlite_add(row: str) -> str:
    return f"""
    INSERT INTO annotation_masktally (image_id, stage, model_version_key, masks)
    VALUES ({row}.image_id, {row}.stage, COALESCE({row}.model_version_id, 0), 1)
    ON CONFLICT (image_id, stage, model_version_key) DO UPDATE SET masks = masks + 1;
    INSERT INTO annotation_humanmaskday (dataset_id, stage, day, masks, seconds)
    SELECT dataset_id, {row}.stage, date({row}.created_at), 1, {row}.seconds_spent
    FROM annotation_image
    WHERE id = {row}.image_id AND {row}.source IN {HUMAN} AND {row}.seconds_spent > 0
    ON CONFLICT (dataset_id, stage, day)
    DO UPDATE SET masks = masks + 1, seconds = seconds + excluded.seconds;
"""


def _sqlite_remove(row: str) -> str:
    key = (
        f"image_id = {row}.image_id AND stage = {row}.stage "
        f"AND model_version_key = COALESCE({row}.model_version_id, 0)"
    )
    day = (
        f"{row}.source IN {HUMAN} AND {row}.seconds_spent > 0 AND stage = {row}.stage "
        f"AND day = date({row}.created_at) AND dataset_id = "
        f"(SELECT dataset_id FROM annotation_image WHERE id = {row}.image_id)"
    )
    return f"""
    UPDATE annotation_masktally SET masks = masks - 1 WHERE {key};
    DELETE FROM annotation_masktally WHERE {key} AND masks = 0;
    UPDATE annotation_humanmaskday
    SET masks = masks - 1, seconds = seconds - {row}.seconds_spent WHERE {day};
    DELETE FROM annotation_humanmaskday WHERE {day} AND masks = 0;
"""


SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER annotation_mask_tally_insert AFTER INSERT ON annotation_mask
    BEGIN {_sqlite_add("NEW")} END""",
    f"""CREATE TRIGGER annotation_mask_tally_delete AFTER DELETE ON annotation_mask
    BEGIN {_sqlite_remove("OLD")} END""",
    f"""CREATE TRIGGER annotation_mask_tally_update AFTER UPDATE ON annotation_mask
    WHEN OLD.image_id IS NOT NEW.image_id OR OLD.stage IS NOT NEW.stage
        OR OLD.model_version_id IS NOT NEW.model_version_id OR OLD.source IS NOT NEW.source
        OR OLD.seconds_spent IS NOT NEW.seconds_spent OR OLD.created_at IS NOT NEW.created_at
    BEGIN {_sqlite_remove("OLD")} {_sqlite_add("NEW")} END""",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS annotation_mask_tally_{name}"
    for name in ("insert", "delete", "update")
]


def _statements(schema_editor, *, create: bool) -> list[str]:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        return [PG_FUNCTION if create else PG_DROP]
    if vendor == "sqlite":
        return SQLITE_TRIGGERS if create else SQLITE_DROP
    raise RuntimeError(f"mask tallies have triggers for PostgreSQL and SQLite, not {vendor}")


def create_triggers(apps, schema_editor):
    for statement in _statements(schema_editor, create=True):
        schema_editor.execute(statement)
    # The masks stored before this migration, counted once as the triggers count later ones.
    day = (
        "(m.created_at AT TIME ZONE 'UTC')::date"
        if schema_editor.connection.vendor == "postgresql"
        else "date(m.created_at)"
    )
    schema_editor.execute(
        "INSERT INTO annotation_masktally (image_id, stage, model_version_key, masks) "
        "SELECT image_id, stage, COALESCE(model_version_id, 0), COUNT(*) FROM annotation_mask "
        "GROUP BY image_id, stage, COALESCE(model_version_id, 0)"
    )
    schema_editor.execute(
        "INSERT INTO annotation_humanmaskday (dataset_id, stage, day, masks, seconds) "
        f"SELECT i.dataset_id, m.stage, {day}, COUNT(*), SUM(m.seconds_spent) "
        "FROM annotation_mask m JOIN annotation_image i ON i.id = m.image_id "
        f"WHERE m.source IN {HUMAN} AND m.seconds_spent > 0 "
        f"GROUP BY i.dataset_id, m.stage, {day}"
    )


def drop_triggers(apps, schema_editor):
    for statement in _statements(schema_editor, create=False):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0009_image_encoder_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="HumanMaskDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "stage",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (1, "assisted-manual"),
                            (2, "semi-automatic"),
                            (3, "fully automatic"),
                        ]
                    ),
                ),
                ("day", models.DateField()),
                ("masks", models.PositiveIntegerField()),
                ("seconds", models.FloatField()),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="human_mask_days",
                        to="annotation.dataset",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("dataset", "stage", "day"), name="human_mask_day_unique_key"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="MaskTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "stage",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (1, "assisted-manual"),
                            (2, "semi-automatic"),
                            (3, "fully automatic"),
                        ]
                    ),
                ),
                (
                    "model_version_key",
                    models.PositiveIntegerField(help_text="model version id, 0 for none"),
                ),
                ("masks", models.PositiveIntegerField()),
                (
                    "image",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mask_tallies",
                        to="annotation.image",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("image", "stage", "model_version_key"), name="mask_tally_unique_key"
                    )
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
