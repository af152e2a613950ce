"""Image.embedding_key becomes Image.encoder_key: the same name as ModelVersion.encoder_key and
the embedding store's parameter. A column rename; no index or constraint covers it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0008_model_version_in_registry"),
    ]

    operations = [
        migrations.RenameField(
            model_name="image",
            old_name="embedding_key",
            new_name="encoder_key",
        ),
    ]
