"""Per-image SA-1B documents: the state of an image's masks as a revision, and the document
written for one revision (annotation.services.sa1b_docs).

``revision`` is raised by database triggers on ``annotation_mask`` and ``annotation_maskprompt``
(migration ``annotation/0014_image_docs``), in the transaction that changes the rows, so no
write path can forget it. A document is valid while ``doc_revision == revision``; its file's
size and SHA-256 are kept here because a file on disk is not trusted on its own.
"""

from __future__ import annotations

from django.db import models

from annotation.models import Image


class ImageDoc(models.Model):
    image = models.OneToOneField(
        Image, primary_key=True, on_delete=models.CASCADE, related_name="sa1b_doc"
    )
    revision = models.BigIntegerField(
        default=0,
        help_text="raised by triggers whenever a mask (or its prompt) of the image changes",
    )
    doc_revision = models.BigIntegerField(
        null=True, blank=True, help_text="the revision the stored document describes"
    )
    doc_bytes = models.BigIntegerField(null=True, blank=True)
    doc_sha256 = models.CharField(max_length=64, null=True, blank=True)

    def __str__(self) -> str:
        return f"SA-1B document of image {self.image_id}: revision {self.revision}"
