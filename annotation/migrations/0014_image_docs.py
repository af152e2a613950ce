"""Per-image SA-1B documents (annotation.services.sa1b_docs): the ImageDoc table and the
triggers that raise an image's revision whenever one of its masks or mask prompts is inserted,
updated or deleted, on PostgreSQL and on SQLite; then a row for every image that has masks.

Inserts upsert the image's row; updates and deletes only raise an existing one. That keeps the
triggers from re-creating the row of an image Django is deleting (its collector deletes the
ImageDoc row, then the masks; a re-created row would break the deferred foreign key at commit).
It is enough because every image with masks has a row: the insert trigger makes it, this
migration makes it for the masks already stored, and ``recount_tallies`` after a bulk load.

PostgreSQL: statement-level triggers with transition tables, so a statement writing 100 masks
of an image raises its revision once (one UPDATE per statement, not per row). SQLite has no
statement-level triggers: row-level ones. Reversible: going back drops the triggers and the table.
"""

import django.db.models.deletion
from django.db import migrations, models

UPSERT = (
    "INSERT INTO annotation_imagedoc (image_id, revision) {select} "
    "ON CONFLICT (image_id) DO UPDATE SET revision = annotation_imagedoc.revision + 1"
)
RAISE = "UPDATE annotation_imagedoc SET revision = revision + 1 WHERE image_id IN ({select})"
PROMPT_IMAGES = "SELECT m.image_id FROM {rows} p JOIN annotation_mask m ON m.id = p.mask_id"


def _pg_function(name: str, body: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {body};
    RETURN NULL;
END $$;"""


PG_FUNCTIONS = {
    "annotation_imagedoc_mask_insert": UPSERT.format(
        select="SELECT DISTINCT image_id, 1 FROM doc_new ORDER BY image_id"
    ),
    "annotation_imagedoc_mask_update": RAISE.format(
        select="SELECT image_id FROM doc_old UNION SELECT image_id FROM doc_new"
    ),
    "annotation_imagedoc_mask_delete": RAISE.format(select="SELECT image_id FROM doc_old"),
    "annotation_imagedoc_prompt_new": RAISE.format(select=PROMPT_IMAGES.format(rows="doc_new")),
    "annotation_imagedoc_prompt_old": RAISE.format(select=PROMPT_IMAGES.format(rows="doc_old")),
}
# (trigger, table, event, transition tables, function)
PG_TRIGGERS = [
    ("annotation_mask_doc_insert", "annotation_mask", "INSERT", "NEW TABLE AS doc_new",
     "annotation_imagedoc_mask_insert"),
    ("annotation_mask_doc_update", "annotation_mask", "UPDATE",
     "OLD TABLE AS doc_old NEW TABLE AS doc_new", "annotation_imagedoc_mask_update"),
    ("annotation_mask_doc_delete", "annotation_mask", "DELETE", "OLD TABLE AS doc_old",
     "annotation_imagedoc_mask_delete"),
    ("annotation_maskprompt_doc_insert", "annotation_maskprompt", "INSERT",
     "NEW TABLE AS doc_new", "annotation_imagedoc_prompt_new"),
    ("annotation_maskprompt_doc_update", "annotation_maskprompt", "UPDATE",
     "NEW TABLE AS doc_new", "annotation_imagedoc_prompt_new"),
    ("annotation_maskprompt_doc_delete", "annotation_maskprompt", "DELETE",
     "OLD TABLE AS doc_old", "annotation_imagedoc_prompt_old"),
]  # fmt: skip

PG_CREATE = [_pg_function(name, body) for name, body in PG_FUNCTIONS.items()] + [
    f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {tables} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    for trigger, table, event, tables, function in PG_TRIGGERS
]
PG_DROP = [f"DROP TRIGGER IF EXISTS {trigger} ON {table}" for trigger, table, *_ in PG_TRIGGERS] + [
    f"DROP FUNCTION IF EXISTS {name}()" for name in PG_FUNCTIONS
]


def _sqlite_upsert(image_id: str) -> str:
    return (
        f"INSERT INTO annotation_imagedoc (image_id, revision) VALUES ({image_id}, 1) "
        "ON CONFLICT (image_id) DO UPDATE SET revision = revision + 1;"
    )


def _sqlite_raise(where: str) -> str:
    return f"UPDATE annotation_imagedoc SET revision = revision + 1 WHERE {where};"


PROMPT_IMAGE = "image_id = (SELECT image_id FROM annotation_mask WHERE id = {row}.mask_id)"
SQLITE_TRIGGERS = {
    "annotation_mask_doc_insert": ("INSERT ON annotation_mask", _sqlite_upsert("NEW.image_id")),
    "annotation_mask_doc_update": (
        "UPDATE ON annotation_mask",
        _sqlite_raise("image_id = NEW.image_id OR image_id = OLD.image_id"),
    ),
    "annotation_mask_doc_delete": (
        "DELETE ON annotation_mask",
        _sqlite_raise("image_id = OLD.image_id"),
    ),
    "annotation_maskprompt_doc_insert": (
        "INSERT ON annotation_maskprompt",
        _sqlite_raise(PROMPT_IMAGE.format(row="NEW")),
    ),
    "annotation_maskprompt_doc_update": (
        "UPDATE ON annotation_maskprompt",
        _sqlite_raise(f"{PROMPT_IMAGE.format(row='NEW')} OR {PROMPT_IMAGE.format(row='OLD')}"),
    ),
    "annotation_maskprompt_doc_delete": (
        "DELETE ON annotation_maskprompt",
        _sqlite_raise(PROMPT_IMAGE.format(row="OLD")),
    ),
}
SQLITE_CREATE = [
    f"CREATE TRIGGER {name} AFTER {event} BEGIN {body} END"
    for name, (event, body) in SQLITE_TRIGGERS.items()
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


def statements(vendor: str, *, create: bool) -> list[str]:
    if vendor == "postgresql":
        return PG_CREATE if create else PG_DROP
    if vendor == "sqlite":
        return SQLITE_CREATE if create else SQLITE_DROP
    raise RuntimeError(f"image documents have triggers for PostgreSQL and SQLite, not {vendor}")


def create_triggers(apps, schema_editor):
    for statement in statements(schema_editor.connection.vendor, create=True):
        schema_editor.execute(statement)
    # Every image that has masks gets its row (see the module docstring).
    schema_editor.execute(
        "INSERT INTO annotation_imagedoc (image_id, revision) "
        "SELECT DISTINCT image_id, 1 FROM annotation_mask"
    )


def drop_triggers(apps, schema_editor):
    for statement in statements(schema_editor.connection.vendor, create=False):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0013_ground_truth"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImageDoc",
            fields=[
                (
                    "image",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="sa1b_doc",
                        serialize=False,
                        to="annotation.image",
                    ),
                ),
                (
                    "revision",
                    models.BigIntegerField(
                        default=0,
                        help_text=(
                            "raised by triggers whenever a mask (or its prompt) of the image "
                            "changes"
                        ),
                    ),
                ),
                (
                    "doc_revision",
                    models.BigIntegerField(
                        blank=True,
                        help_text="the revision the stored document describes",
                        null=True,
                    ),
                ),
                ("doc_bytes", models.BigIntegerField(blank=True, null=True)),
                ("doc_sha256", models.CharField(blank=True, max_length=64, null=True)),
            ],
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
