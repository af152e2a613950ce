from django.contrib import admin

from modeltrain.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "model_type", "round", "is_active", "is_official", "created_at")
    list_filter = ("is_active", "is_official", "model_type")
    search_fields = ("name", "trained_on")
    readonly_fields = ("encoder_key", "created_at")
