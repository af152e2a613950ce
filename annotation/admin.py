from collections import defaultdict

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from annotation.models import (
    AnnotatorSession,
    AutomaticPass,
    Dataset,
    DatasetMembership,
    Export,
    Image,
    ImportJob,
    Mask,
    MaskPrompt,
    Stage,
)
from annotation.services import access, image_holds
from annotation.services.automatic import with_progress
from annotation.services.errors import ServiceError

# The admin index links to the dashboard (frontend/templates/admin/sade_index.html).
admin.site.index_template = "admin/sade_index.html"
admin.site.site_header = "SA Data Engine administration"
admin.site.site_title = "SA Data Engine admin"


class MembershipInline(admin.TabularInline):
    model = DatasetMembership
    extra = 1
    raw_id_fields = ("user",)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    inlines = [MembershipInline]


@admin.register(DatasetMembership)
class DatasetMembershipAdmin(admin.ModelAdmin):
    list_display = ("dataset", "user", "role")
    list_filter = ("role", "dataset")
    raw_id_fields = ("user",)


def _move_to_stage(stage: int):
    """An admin action moving the selected images to ``stage`` (pending, holds dropped), per
    dataset through the same service and permission check as the API's bulk move."""

    @admin.action(description=f"Move selected images to stage {stage} ({Stage(stage).label})")
    def move(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        moved = 0
        by_dataset: dict[int, list[int]] = defaultdict(list)
        for image_id, dataset_id in queryset.values_list("pk", "dataset_id"):
            by_dataset[dataset_id].append(image_id)
        for dataset in Dataset.objects.filter(pk__in=by_dataset).order_by("name"):
            try:
                access.require_admin(request.user, dataset, "change stages")
                moved += image_holds.change_stage(dataset, by_dataset[dataset.pk], stage)
            except ServiceError as exc:
                modeladmin.message_user(request, exc.message, messages.ERROR)
        modeladmin.message_user(request, f"{moved} image(s) moved to stage {stage} (pending).")

    move.__name__ = f"move_to_stage_{stage}"
    return move


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "dataset", "stage", "status", "embedding_status")
    list_filter = ("dataset", "stage", "status", "embedding_status")
    search_fields = ("original_name", "sha256")
    raw_id_fields = ("held_by",)
    readonly_fields = ("sha256", "content_sha256", "file", "width", "height", "file_size")
    actions = [_move_to_stage(stage) for stage in Stage.values]


class MaskPromptInline(admin.StackedInline):
    model = MaskPrompt
    extra = 0


@admin.register(Mask)
class MaskAdmin(admin.ModelAdmin):
    list_display = ("id", "image", "source", "area", "author", "model_version", "created_at")
    list_filter = ("source", "stage")
    raw_id_fields = ("image", "author", "session")
    readonly_fields = ("bbox", "area")
    inlines = [MaskPromptInline]


@admin.register(AnnotatorSession)
class AnnotatorSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "annotator", "image", "stage", "started_at", "ended_at")
    list_display += ("active_seconds", "masks_made")
    list_filter = ("stage",)
    raw_id_fields = ("annotator", "image")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "path", "status", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    """Exports are started from the dashboard or the API (which validate the filters and queue
    the worker), so here they are only looked at."""

    list_display = ("id", "dataset", "format", "status", "progress", "masks", "created_at")
    list_display += ("finished_at", "download")
    list_filter = ("status", "format", "dataset")
    readonly_fields = [field.name for field in Export._meta.fields] + ["download"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Export | None = None) -> bool:
        return False

    @admin.display(description="images written")
    def progress(self, export: Export) -> str:
        return f"{export.progress_done} / {export.progress_total}"

    @admin.display(description="masks")
    def masks(self, export: Export) -> int | None:
        return export.report.get("masks")

    @admin.display(description="download")
    def download(self, export: Export) -> str:
        if export.status != Export.Status.DONE:
            return "–"
        url = reverse("export-download", args=[export.pk])
        if export.format == Export.Format.COCO:
            return format_html('<a href="{}">instances.json</a>', url)
        shards = format_html_join(
            " ",
            '<a href="{}?shard={}">{}</a>',
            ((url, i, shard["file"]) for i, shard in enumerate(export.report.get("shards", []))),
        )
        return format_html('<a href="{}">manifest.json</a> {}', url, shards)


@admin.register(AutomaticPass)
class AutomaticPassAdmin(admin.ModelAdmin):
    """Passes are launched, cancelled and resumed through the API (which queue the gpu work), so
    here they are only looked at, with the progress counted from their per-image rows."""

    list_display = ("id", "dataset", "kind", "status", "progress", "masks_so_far")
    list_display += ("model_version", "created_at", "finished_at")
    list_filter = ("status", "kind", "dataset")
    readonly_fields = [field.name for field in AutomaticPass._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AutomaticPass]:
        return with_progress(super().get_queryset(request)).select_related(
            "dataset", "model_version"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AutomaticPass | None = None) -> bool:
        return False

    @admin.display(description="images done")
    def progress(self, run: AutomaticPass) -> str:
        failed = f", {run.failed_images} failed" if run.failed_images else ""
        return f"{run.done_images} / {run.total_images}{failed}"

    @admin.display(description="masks so far")
    def masks_so_far(self, run: AutomaticPass) -> int:
        return run.mask_count
