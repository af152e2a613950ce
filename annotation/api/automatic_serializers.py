"""Request and answer shapes of automatic passes."""

from __future__ import annotations

from rest_framework import serializers

from annotation.api.serializers import id_field
from annotation.models import AutomaticPass, Stage


class AutomaticPassSerializer(serializers.ModelSerializer):
    done_images = serializers.IntegerField(read_only=True, help_text="images with masks written")
    failed_images = serializers.IntegerField(read_only=True)
    mask_count = serializers.IntegerField(read_only=True, help_text="masks written so far")

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
    config = serializers.DictField(
        required=False,
        help_text="AutomaticConfig fields overriding the kind's preset, e.g. "
        '{"pred_iou_thresh": 0.9, "points_per_side": 16}',
    )
