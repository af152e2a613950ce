"""Request and answer shapes of audits of model-made masks (annotation.services.audits)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from annotation.api.base import MAX_ID
from annotation.models import Audit, AuditImage
from annotation.services.audits import MAX_SAMPLE, MAX_SEED


class AuditSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Audit
        fields = ["id", "dataset", "source", "model_version", "sample_size", "seed"]
        fields += ["candidate_images", "status", "created_by", "created_at", "finished_at"]
        fields += ["progress", "urls", "report"]
        read_only_fields = fields

    def get_progress(self, audit: Audit) -> dict[str, int]:
        images = audit.report.get("images", {})
        return {"sampled": images.get("sampled", 0), "reviewed": images.get("reviewed", 0)}

    def get_urls(self, audit: Audit) -> dict[str, str]:
        return {
            "report": reverse("audit-report", args=[audit.pk]),
            "report_csv": reverse("audit-report-csv", args=[audit.pk]),
            "next_image": reverse("audit-next-image", args=[audit.pk]),
            "review": reverse("audit-review", args=[audit.pk]),
        }


class AuditRequestSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=Audit.Source.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="which model masks: automatic (stage 3), prefilled (stage 2); empty: both",
    )
    model_version = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="only this model version's masks"
    )
    sample_size = serializers.IntegerField(
        min_value=1, max_value=MAX_SAMPLE, help_text="images to draw"
    )
    seed = serializers.IntegerField(min_value=0, max_value=MAX_SEED, default=0)


class AuditNextImageSerializer(serializers.Serializer):
    image = serializers.IntegerField(allow_null=True, help_text="null: nothing left for you")
    annotate_url = serializers.CharField(allow_null=True)


class AuditImageDoneSerializer(serializers.ModelSerializer):
    kept = serializers.SerializerMethodField()
    fixed = serializers.SerializerMethodField()
    deleted = serializers.SerializerMethodField()
    added = serializers.SerializerMethodField()
    audit_status = serializers.CharField(source="audit.status")

    class Meta:
        model = AuditImage
        fields = ["image", "status", "reviewed_at", "kept", "fixed", "deleted", "added"]
        fields += ["audit_status"]
        read_only_fields = fields

    def _count(self, entry: AuditImage, outcome: str) -> int:
        return sum(1 for item in entry.items.all() if item.outcome == outcome)

    def get_kept(self, entry: AuditImage) -> int:
        return self._count(entry, "kept")

    def get_fixed(self, entry: AuditImage) -> int:
        return self._count(entry, "fixed")

    def get_deleted(self, entry: AuditImage) -> int:
        return self._count(entry, "deleted")

    def get_added(self, entry: AuditImage) -> int:
        return len(entry.added_mask_ids)
