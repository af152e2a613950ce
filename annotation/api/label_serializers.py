"""Shapes of a dataset's labels in the API. Names are checked for characters that print nothing
here; lengths, colours and uniqueness in annotation.services.labels (one rule for every
caller)."""

from __future__ import annotations

from rest_framework import serializers

from annotation.api.serializers import check_printable
from annotation.models import Label
from annotation.services.labels import MAX_NAME, MAX_POSITION


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "dataset", "name", "color", "supercategory", "position", "external_id"]
        read_only_fields = fields


class LabelWriteSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=MAX_NAME, help_text="1 to 100 printable characters, unique in the dataset"
    )
    color = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$",
        max_length=7,
        required=False,
        help_text="#rrggbb; a new label without one takes the next colour of a palette",
    )
    supercategory = serializers.CharField(max_length=MAX_NAME, required=False, allow_blank=True)
    position = serializers.IntegerField(
        min_value=0,
        max_value=MAX_POSITION,
        required=False,
        help_text="order in the pickers (Shift+1 picks the first); a new label goes last",
    )

    def validate_name(self, value: str) -> str:
        return check_printable(value, "name", allowed="")

    def validate_supercategory(self, value: str) -> str:
        return check_printable(value, "supercategory", allowed="")


class LabelDeletedSerializer(serializers.Serializer):
    unlabelled_masks = serializers.IntegerField(help_text="masks that lost the label (kept)")
