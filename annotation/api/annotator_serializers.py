"""Request and answer shapes of the endpoints the annotation tool adds around predict: the
per-image "Everything", the images next in line and embedding preparation."""

from __future__ import annotations

from rest_framework import serializers

from annotation.api.serializers import FiniteFloatField
from annotation.models import Stage
from annotation.services.everything import DEFAULT_POINTS_PER_SIDE, MAX_POINTS_PER_SIDE
from annotation.services.next_images import MAX_UPCOMING


class EverythingSerializer(serializers.Serializer):
    points_per_side = serializers.IntegerField(
        min_value=1,
        max_value=MAX_POINTS_PER_SIDE,
        default=DEFAULT_POINTS_PER_SIDE,
        help_text="the grid of point prompts is points_per_side x points_per_side",
    )
    pred_iou_thresh = FiniteFloatField(
        min_value=0.0, max_value=1.0, required=False, help_text="default 0.88 (the paper's)"
    )
    stability_score_thresh = FiniteFloatField(
        min_value=0.0, max_value=1.0, required=False, help_text="default 0.95 (the paper's)"
    )


class ProposedMaskSerializer(serializers.Serializer):
    rle = serializers.DictField()
    bbox = serializers.ListField(child=serializers.FloatField())
    area = serializers.IntegerField()
    predicted_iou = serializers.FloatField()
    stability_score = serializers.FloatField()
    point_coords = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField())
    )


class EverythingAnswerSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    masks = ProposedMaskSerializer(many=True)
    config = serializers.DictField()
    model = serializers.DictField()
    seconds = serializers.FloatField()


class UpcomingQuerySerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    count = serializers.IntegerField(min_value=1, max_value=MAX_UPCOMING, default=1)
