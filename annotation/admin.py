from django.contrib import admin

from annotation.models import (
    AnnotatorSession,
    Dataset,
    DatasetMembership,
    Image,
    ImportJob,
    Mask,
    MaskPrompt,
)


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


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "dataset", "stage", "status", "embedding_status")
    list_filter = ("dataset", "stage", "status", "embedding_status")
    search_fields = ("original_name", "sha256")
    raw_id_fields = ("held_by",)
    readonly_fields = ("sha256", "content_sha256", "file", "width", "height", "file_size")


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
