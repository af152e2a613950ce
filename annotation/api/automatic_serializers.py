"""Request and answer shapes of automatic passes."""

from __future__ import annotations

from rest_framework import serializers

from annotation.api.serializers import id_field
from annotation.models import AutomaticPass, Stage
from annotation.services.automatic_config import DEFAULT_PRESET, PRESETS
from annotation.services.automatic_plan import zero_masks_note


class AutomaticPassSerializer(serializers.ModelSerializer):
    done_images = serializers.IntegerField(read_only=True, help_text="images with masks written")
    failed_images = serializers.IntegerField(read_only=True)
    mask_count = serializers.IntegerField(read_only=True, help_text="masks written so far")
    note = serializers.SerializerMethodField(
        help_text="why a finished pass wrote no mask (empty otherwise)"
    )

    def get_note(self, run: AutomaticPass) -> str:
        return zero_masks_note(
            run.status, run.done_images, run.mask_count, run.config, run.model_version
        )

    class Meta:
        model = AutomaticPass
        fields = [
            "id",
            "dataset",
            "kind",
            "stage",
            "config",
            "model_version",
            "status",
            "total_images",
            "done_images",
            "failed_images",
            "mask_count",
            "error",
            "note",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class LeftAloneSerializer(serializers.Serializer):
    done_images = serializers.IntegerField(
        help_text="selected images a person marked done: not segmented"
    )
    reviewed_masks = serializers.IntegerField(
        help_text="model masks on the selected images a person kept or fixed: never replaced"
    )
    people_masks = serializers.IntegerField(
        help_text="masks people drew on the selected images: never replaced"
    )


class AutomaticPassLaunchAnswerSerializer(AutomaticPassSerializer):
    left_alone = LeftAloneSerializer(
        read_only=True, help_text="what the pass leaves as it is because people reviewed it"
    )

    class Meta(AutomaticPassSerializer.Meta):
        fields = [*AutomaticPassSerializer.Meta.fields, "left_alone"]
        read_only_fields = fields


class AutomaticPassLaunchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=AutomaticPass.Kind.choices, default=AutomaticPass.Kind.AUTOMATIC
    )
    image_ids = serializers.ListField(
        child=id_field(),
        required=False,
        max_length=1_000_000,
        help_text="the images to segment; leave out to take every image of a stage",
    )
    stage = serializers.ChoiceField(
        choices=Stage.choices,
        required=False,
        help_text="take every image in this stage (default: 3 for automatic, 2 for prefill)",
    )
    whole_dataset = serializers.BooleanField(
        default=False, help_text="take every image of the dataset (instead of image_ids or stage)"
    )
    preset = serializers.ChoiceField(
        choices=list(PRESETS),
        default=DEFAULT_PRESET,
        help_text="paper: the kind's recipe as it is; relaxed: predicted IoU > 0.5 and "
        "stability >= 0.8, for a model whose masks are rarely confident (a cold start)",
    )
    config = serializers.DictField(
        required=False,
        help_text="AutomaticConfig fields overriding the preset, e.g. "
        '{"pred_iou_thresh": 0.9, "points_per_side": 16}',
    )

    def selection(self) -> dict:
        """The keyword arguments of plan_automatic_pass / launch_automatic_pass."""
        data = self.validated_data
        return {
            "image_ids": data.get("image_ids"),
            "config": data.get("config"),
            "stage": data.get("stage"),
            "preset": data["preset"],
            "whole_dataset": data["whole_dataset"],
        }


class PreviewModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    untrained = serializers.BooleanField(help_text="the cold start: random weights")
    is_official = serializers.BooleanField(help_text="one of Meta's released checkpoints")


class AutomaticPassPreviewSerializer(serializers.Serializer):
    kind = serializers.CharField()
    preset = serializers.CharField()
    stage = serializers.IntegerField(allow_null=True)
    config = serializers.DictField(help_text="every AutomaticConfig field the pass would use")
    selected_images = serializers.IntegerField()
    images_to_process = serializers.IntegerField(
        help_text="selected images not marked done by a person: the ones segmented"
    )
    left_alone = LeftAloneSerializer()
    masks_replaced = serializers.IntegerField(
        help_text="unreviewed masks an earlier pass of the active model wrote on those images, "
        "which this pass replaces"
    )
    model = PreviewModelSerializer(help_text="the active model, which the pass would run")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="nothing to segment, or a model whose masks will not pass the thresholds",
    )
