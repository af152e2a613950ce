"""Request and answer shapes of exports, annotation imports and dataset statistics."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from annotation.api.serializers import FiniteFloatField
from annotation.models import Export, MaskSource, Stage
from annotation.services.coco import FORMAT_CHOICES, ID_CHOICES, OPTION_KEYS
from annotation.services.sa1b import DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE


class ExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["id", "dataset", "format", "filters", "shard_size", "status"]
        fields += ["progress_done", "progress_total", "report", "error", "download_url"]
        fields += ["created_by", "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.DONE:
            return None
        return reverse("export-download", args=[export.pk])


class GateSerializer(serializers.Serializer):
    """Release gate: each threshold bounds a figure of the latest finished audit of every model
    version, source and stage whose model-made masks the export includes (see
    annotation.services.audit_gates)."""

    min_share_iou_90 = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_share_iou_75 = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_share_iou_50 = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_median_iou = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_precision = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_recall = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_boundary_iou = FiniteFloatField(min_value=0, max_value=1, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(key)[:40] for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    f"unknown thresholds: {', '.join(unknown)[:200]}; "
                    f"known: {', '.join(self.fields)}"
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("give at least one threshold")
        return attrs


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=Export.Format.choices, default=Export.Format.SA1B)
    shard_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_SHARD_SIZE,
        default=DEFAULT_SHARD_SIZE,
        help_text="images per tar",
    )
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    source = serializers.ChoiceField(choices=MaskSource.choices, required=False)
    model_version = serializers.IntegerField(min_value=1, required=False)
    min_predicted_iou = FiniteFloatField(min_value=0, max_value=1, required=False)
    min_stability_score = FiniteFloatField(min_value=0, max_value=1, required=False)

    ids = serializers.ChoiceField(
        choices=ID_CHOICES,
        required=False,
        help_text="COCO only: the source file's image, annotation and category ids (default) "
        "or the platform's",
    )
    coco_format = serializers.ChoiceField(
        choices=FORMAT_CHOICES,
        required=False,
        help_text="COCO only: instances JSON (default) or results for COCOeval",
    )
    gate = GateSerializer(
        required=False, help_text="refuse (409) unless audits of the model's masks meet these"
    )

    FILTERS = ("stage", "source", "model_version", "min_predicted_iou", "min_stability_score")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("format", Export.Format.SA1B) != Export.Format.COCO:
            for key in OPTION_KEYS:
                if key in attrs:
                    raise serializers.ValidationError({key: "an option of the COCO format only"})
        return attrs

    def filters(self) -> dict:
        return {key: self.validated_data[key] for key in self.FILTERS if key in self.validated_data}

    def options(self) -> dict:
        return {key: self.validated_data[key] for key in OPTION_KEYS if key in self.validated_data}


class AnnotationUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="a COCO instances JSON file or an SA-1B tar")


class AnnotationImportReportSerializer(serializers.Serializer):
    masks_imported = serializers.IntegerField()
    imported = serializers.ListField(child=serializers.DictField())
    already_imported = serializers.ListField(child=serializers.DictField())
    skipped = serializers.ListField(child=serializers.DictField())
    labels_created = serializers.ListField(
        child=serializers.CharField(), help_text="names of the labels made from COCO categories"
    )


class LabelCountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    masks = serializers.IntegerField()


class DatasetStatsSerializer(serializers.Serializer):
    """For the schema: see annotation.services.stats for each part."""

    dataset = serializers.DictField()
    images = serializers.DictField()
    masks_per_image = serializers.DictField()
    seconds_per_mask = serializers.ListField(child=serializers.DictField())
    annotators = serializers.ListField(child=serializers.DictField())
    model_versions = serializers.ListField(child=serializers.DictField())
    automatic_passes = serializers.ListField(child=serializers.DictField())
    labels = LabelCountSerializer(many=True, help_text="masks per label, in the pickers' order")
    unlabelled_masks = serializers.IntegerField(help_text="masks without a label")
