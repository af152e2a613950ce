"""Request and answer shapes. Serializers check types and ranges that need no database; the
services check everything that depends on the image (sizes, holds, roles)."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework import serializers

from annotation.api.base import MAX_ID
from annotation.models import (
    AnnotatorSession,
    Dataset,
    DatasetMembership,
    Image,
    ImageStatus,
    ImportJob,
    Mask,
    MaskPrompt,
    MaskSource,
    Role,
    Stage,
)
from annotation.services.access import role_in
from annotation.services.prompts import MAX_POINTS

MAX_SECONDS = 24 * 3600
# PositiveIntegerField's range on every database backend.
MAX_POSITIVE_INT = 2**31 - 1
# A model-made mask comes from one grid point; a few allow for merged proposals.
MAX_POINT_COORDS = 16


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """An object's id in a body: within the database's range, so a huge number is a 400 and
    never reaches a query it would overflow."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class DatasetSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()
    image_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "created_at", "my_role", "image_count"]
        read_only_fields = ["created_at"]

    def get_my_role(self, dataset: Dataset) -> str | None:
        return role_in(self.context["request"].user, dataset)

    def validate_name(self, value: str) -> str:
        return check_printable(value, "name", allowed="")

    def validate_description(self, value: str) -> str:
        return check_printable(value, "description", allowed="\n\t")


# Unicode categories that print nothing a reader can see: control characters (Cc), format
# characters such as bidi overrides and zero-width joiners (Cf), line/paragraph separators
# (Zl, Zp), unassigned and private-use code points and lone surrogates (Cn, Co, Cs).
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"}


def check_printable(value: str, field: str, *, allowed: str) -> str:
    """``value`` unless it holds a character that prints nothing (except those in ``allowed``):
    names show up in file names, logs, CSV exports and other people's screens, where control and
    bidi characters hide or reorder text."""
    for position, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            raise serializers.ValidationError(
                f"{field} has the invisible or control character U+{ord(char):04X} at position "
                f"{position}; use printable text"
            )
    return value


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = DatasetMembership
        fields = ["user", "username", "role", "created_at"]


class MembershipWriteSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)

    def validate_username(self, value: str) -> Any:
        user = get_user_model().objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(f"no user named {value!r}")
        return user


class ImageSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id",
            "dataset",
            "original_name",
            "file_url",
            "format",
            "width",
            "height",
            "file_size",
            "sha256",
            "stage",
            "status",
            "held_by",
            "held_until",
            "embedding_status",
            "embedding_error",
            "created_at",
        ]
        read_only_fields = fields

    def get_file_url(self, image: Image) -> str:
        return reverse("image-file", args=[image.pk])


class UploadOptionsSerializer(serializers.Serializer):
    short_side = serializers.IntegerField(
        min_value=0,
        max_value=MAX_POSITIVE_INT,
        required=False,
        help_text="downscale so the shorter side is at most this",
    )


class UploadSerializer(UploadOptionsSerializer):
    """For the schema: the view reads the files itself so one bad file rejects only itself."""

    files = serializers.ListField(child=serializers.FileField(), help_text="images or zips")


class ImportReportSerializer(serializers.Serializer):
    imported = serializers.ListField(child=serializers.DictField())
    duplicates = serializers.ListField(child=serializers.DictField())
    rejected = serializers.ListField(child=serializers.DictField())


class ImportPathSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=1000)
    short_side = serializers.IntegerField(min_value=0, max_value=MAX_POSITIVE_INT, required=False)


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = ["id", "dataset", "path", "short_side", "status", "report", "error"]
        fields += ["created_by", "created_at", "finished_at"]
        read_only_fields = fields


class StageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    status = serializers.ChoiceField(choices=ImageStatus.choices, default=ImageStatus.PENDING)


class BulkStageSerializer(StageSerializer):
    image_ids = serializers.ListField(
        child=id_field(),
        min_length=1,
        max_length=100_000,
        required=False,
        help_text="the images to move; or leave out and give from_stage",
    )
    from_stage = serializers.ChoiceField(
        choices=Stage.choices, required=False, help_text="move every image in this stage"
    )
    from_status = serializers.ChoiceField(
        choices=ImageStatus.choices,
        required=False,
        help_text="with from_stage: only its images with this status",
    )

    def validate(self, data: dict) -> dict:
        if "from_status" in data and "from_stage" not in data:
            raise serializers.ValidationError({"from_status": "goes with from_stage"})
        if ("image_ids" in data) == ("from_stage" in data):
            raise serializers.ValidationError(
                "give either image_ids or from_stage (with from_status, optionally)"
            )
        return data


class BulkStageAnswerSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="images moved")
    stage = serializers.IntegerField()
    status = serializers.CharField()


class NextImageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)


class ReleaseSerializer(serializers.Serializer):
    skip = serializers.BooleanField(default=False, help_text="set the image aside (skipped)")


class FiniteFloatField(serializers.FloatField):
    """A float that is a number: NaN and +-Infinity (which Python's JSON parser accepts) are
    refused, so nothing downstream compares against NaN or stores it in a JSON column."""

    default_error_messages = {"not_finite": "must be a finite number, got {value}."}

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite", value=value)
        return value


def point_field() -> serializers.ListField:
    return serializers.ListField(child=FiniteFloatField(), min_length=2, max_length=2)


def box_field() -> serializers.ListField:
    return serializers.ListField(
        child=FiniteFloatField(), min_length=4, max_length=4, required=False, allow_null=True
    )


def unit_score_field(help_text: str) -> FiniteFloatField:
    return FiniteFloatField(
        min_value=0.0, max_value=1.0, required=False, allow_null=True, help_text=help_text
    )


# The shape of click prompts in JSON, declared once for a prediction and for the prompts stored
# with a mask; the rules against the image are annotation.services.prompts'. (A comment, not a
# docstring: the schema would show it as the description of both.)
class PromptFields(serializers.Serializer):
    points = serializers.ListField(
        child=point_field(), required=False, default=list, max_length=MAX_POINTS
    )
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=1), required=False, default=list
    )
    box = box_field()


class PredictSerializer(PromptFields):
    mask_input_id = serializers.CharField(required=False, allow_null=True, max_length=64)
    refine_mask = serializers.IntegerField(
        min_value=1,
        max_value=MAX_POSITIVE_INT,
        required=False,
        allow_null=True,
        help_text="id of a stored mask of this image to refine: its pixels are the mask prompt "
        "(for a loaded mask with no logits_id); not together with mask_input_id",
    )
    multimask = serializers.BooleanField(default=True)


class PromptSerializer(PromptFields, serializers.ModelSerializer):
    chosen_index = serializers.IntegerField(
        min_value=0, max_value=2, required=False, allow_null=True
    )

    class Meta:
        model = MaskPrompt
        fields = ["points", "labels", "box", "chosen_index"]


class MaskSerializer(serializers.ModelSerializer):
    prompt = PromptSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Mask
        fields = [
            "id",
            "image",
            "rle",
            "bbox",
            "area",
            "source",
            "stage",
            "predicted_iou",
            "stability_score",
            "point_coords",
            "crop_box",
            "author",
            "model_version",
            "session",
            "seconds_spent",
            "client_id",
            "prompt",
            "label",
            "iscrowd",
            "version",
            "review",
            "reviewed_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MaskCreateSerializer(serializers.Serializer):
    image = id_field()
    rle = serializers.JSONField(help_text='COCO RLE {"size": [h, w], "counts": str or [int]}')
    source = serializers.ChoiceField(choices=MaskSource.choices, default=MaskSource.MANUAL)
    client_id = serializers.UUIDField(required=False, allow_null=True)
    model_version = id_field(required=False, allow_null=True)
    session = id_field(required=False, allow_null=True)
    seconds_spent = FiniteFloatField(min_value=0, max_value=MAX_SECONDS, default=0.0)
    predicted_iou = unit_score_field("the model's IoU estimate of the mask, 0..1")
    stability_score = unit_score_field("the mask's stability score, 0..1")
    point_coords = serializers.ListField(
        child=point_field(),
        required=False,
        allow_null=True,
        max_length=MAX_POINT_COORDS,
        help_text="the grid point(s) the mask came from, in image pixels (inside the image)",
    )
    crop_box = box_field()
    prompt = PromptSerializer(required=False, allow_null=True)
    label = id_field(
        required=False, allow_null=True, help_text="a label of the image's dataset; null: none"
    )


class MaskUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1,
        max_value=MAX_POSITIVE_INT,
        required=False,
        help_text="the version the edit started from (or send it as an If-Match header)",
    )
    rle = serializers.JSONField(required=False)
    seconds_spent = FiniteFloatField(min_value=0, max_value=MAX_SECONDS, required=False)
    prompt = PromptSerializer(required=False)
    label = id_field(
        required=False,
        allow_null=True,
        help_text="a label of the mask's dataset, or null to remove it; left out: unchanged",
    )


class MaskKeepSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE_INT, required=False)


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnnotatorSession
        fields = [
            "id",
            "annotator",
            "image",
            "stage",
            "started_at",
            "last_heartbeat_at",
            "ended_at",
            "active_seconds",
            "masks_made",
        ]
        read_only_fields = fields


class SessionStartSerializer(serializers.Serializer):
    image = id_field()


class HeartbeatSerializer(serializers.Serializer):
    active_seconds = FiniteFloatField(min_value=0, max_value=MAX_SECONDS, required=False)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    datasets = serializers.ListField(child=serializers.DictField())


class TodaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="the UTC day counted")
    masks = serializers.IntegerField(help_text="masks you made today that still exist")
    timed_masks = serializers.IntegerField(help_text="of those, masks with a recorded time")
    seconds = serializers.FloatField(help_text="seconds spent on the timed masks")
    images = serializers.IntegerField(help_text="images you finished (done) today")


class ModelStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    model_type = serializers.CharField()
    round = serializers.IntegerField()
    trained_on = serializers.CharField()
    is_official = serializers.BooleanField()
    precision = serializers.ChoiceField(
        choices=["fp32", "bf16", "fp16"], help_text="the image encoder's arithmetic (SAM_PRECISION)"
    )
    hint = serializers.CharField(allow_null=True)


class PredictedMaskSerializer(serializers.Serializer):
    rle = serializers.DictField()
    bbox = serializers.ListField(child=serializers.FloatField())
    area = serializers.IntegerField()
    predicted_iou = serializers.FloatField()
    logits_id = serializers.CharField()


class PredictAnswerSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    masks = PredictedMaskSerializer(many=True)
    model = ModelStatusSerializer()
    embedding_computed = serializers.BooleanField()
