"""Requests and answers of quality control (ground truth, annotators' accuracy, agreement)."""

from __future__ import annotations

from rest_framework import serializers

from annotation.api.serializers import FiniteFloatField, id_field
from annotation.services.ground_truth import MAX_GROUND_TRUTH_SHARE, MAX_MARKED_AT_ONCE


class QualitySettingsSerializer(serializers.Serializer):
    ground_truth_share = FiniteFloatField(
        min_value=0.0,
        max_value=MAX_GROUND_TRUTH_SHARE,
        help_text="share of each annotator's hand-outs that are ground-truth images, 0..0.5",
    )
    double_share = FiniteFloatField(
        min_value=0.0,
        max_value=1.0,
        help_text="share of annotated images that a second annotator annotates too, 0..1",
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class QualitySettingsWriteSerializer(serializers.Serializer):
    ground_truth_share = FiniteFloatField(
        min_value=0.0, max_value=MAX_GROUND_TRUTH_SHARE, required=False
    )
    double_share = FiniteFloatField(min_value=0.0, max_value=1.0, required=False)


class GroundTruthMarkSerializer(serializers.Serializer):
    image_ids = serializers.ListField(child=id_field(), min_length=1, max_length=MAX_MARKED_AT_ONCE)


class GroundTruthUnmarkedSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    attempts_withdrawn = serializers.IntegerField(
        help_text="annotators' attempts measured against the truth, now out of every figure"
    )


class GroundTruthImageSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    stage = serializers.IntegerField()
    truth_masks = serializers.IntegerField()
    attempts_done = serializers.IntegerField()
    marked_by = serializers.CharField(allow_null=True)
    marked_at = serializers.DateTimeField()


def _nullable_float() -> serializers.FloatField:
    return serializers.FloatField(allow_null=True)


class _AccuracyFigures(serializers.Serializer):
    attempts = serializers.IntegerField()
    reference_masks = serializers.IntegerField(help_text="masks of the truth")
    attempt_masks = serializers.IntegerField(help_text="masks the annotator drew")
    matched = serializers.IntegerField(help_text="pairs matched at IoU >= 0.5")
    mean_iou = _nullable_float()
    share_above_90 = _nullable_float()
    missed_per_image = _nullable_float()
    extra_per_image = _nullable_float()
    seconds_per_mask = _nullable_float()


class AccuracyPeriodSerializer(_AccuracyFigures):
    start = serializers.DateField(help_text="first day of the period (UTC)")


class AnnotatorAccuracySerializer(_AccuracyFigures):
    annotator = serializers.IntegerField()
    username = serializers.CharField()
    over_time = AccuracyPeriodSerializer(many=True)


class AnnotatorsReportSerializer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["day", "week"])
    annotators = AnnotatorAccuracySerializer(many=True)


class AgreementStageSerializer(serializers.Serializer):
    stage = serializers.IntegerField()
    label = serializers.CharField()
    images = serializers.IntegerField()
    first_masks = serializers.IntegerField()
    second_masks = serializers.IntegerField()
    pairs = serializers.IntegerField(help_text="pairs matched at IoU >= 0.5")
    pairs_above_90 = serializers.IntegerField()
    share_above_90 = _nullable_float()
    mean_iou = _nullable_float()
    unmatched_first = serializers.IntegerField()
    unmatched_second = serializers.IntegerField()


class AgreementReportSerializer(serializers.Serializer):
    stages = AgreementStageSerializer(many=True)
