"""Admin pages: model versions (promote, roll back) and training rounds ("Add training round"
launches one; the list follows its progress; cancel)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from annotation.services import access
from annotation.services.errors import ServiceError
from modeltrain import rounds, versions
from modeltrain.models import ImageSplit, TrainingRound
from registry.models import ModelVersion


def _heldout(version: ModelVersion, key: str) -> Any:
    value = (version.metrics or {}).get("heldout", {}).get(key)
    return "-" if value is None else value


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "model_type",
        "round",
        "is_active",
        "is_official",
        "noc90",
        "miou_1click",
        "created_at",
    )
    list_filter = ("is_active", "is_official", "model_type")
    search_fields = ("name", "trained_on")
    readonly_fields = ("encoder_key", "is_active", "created_at")
    actions = ["promote", "rollback"]

    @admin.display(description="held-out NoC@90")
    def noc90(self, version: ModelVersion) -> Any:
        return _heldout(version, "noc90")

    @admin.display(description="held-out 1-click mIoU")
    def miou_1click(self, version: ModelVersion) -> Any:
        return _heldout(version, "miou_1click_top")

    @admin.action(description="Promote the selected version (make it active)")
    def promote(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", messages.ERROR)
            return
        try:
            access.require_staff(request.user, "promote model versions")
            version = versions.promote_version(queryset.get())
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{version.name} is now the active version.")

    @admin.action(description="Roll back: activate the active version's parent")
    def rollback(self, request, queryset) -> None:
        try:
            access.require_staff(request.user, "roll back model versions")
            version = versions.rollback_version()
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"Rolled back: {version.name} is now the active version.")


class LaunchRoundForm(forms.ModelForm):
    """The add form: which dataset, how to train, whether to promote."""

    mode = forms.ChoiceField(
        choices=[
            ("auto", "auto (full fine-tuning on a GPU, decoder-only on a CPU)"),
            ("decoder", "decoder-only, on cached embeddings"),
            ("full", "full fine-tuning, encoder included"),
        ],
        initial="auto",
    )
    steps = forms.IntegerField(min_value=1, required=False)

    class Meta:
        model = TrainingRound
        fields = ["dataset", "promotion"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read per form, so the number shown is the one a round would use now.
        self.fields[
            "steps"
        ].help_text = f"leave empty for {settings.TRAINING_STEPS} (the TRAINING_STEPS setting)"

    def options(self) -> dict[str, Any]:
        steps = self.cleaned_data.get("steps")
        return {"steps": steps} if steps else {}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("dataset") is not None:
            try:
                rounds.plan_round(
                    data["dataset"],
                    mode=data.get("mode"),
                    promotion=data.get("promotion"),
                    options=self.options(),
                )
            except ServiceError as exc:
                raise ValidationError(exc.message) from None
        return data


@admin.register(TrainingRound)
class TrainingRoundAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "dataset",
        "status",
        "phase",
        "step",
        "total_steps",
        "loss",
        "eta_seconds",
        "result",
        "promoted",
        "created_at",
    )
    list_filter = ("status", "trigger", "dataset")
    actions = ["cancel"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = LaunchRoundForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["dataset", "mode", "steps", "promotion"]
        return [f.name for f in TrainingRound._meta.fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in TrainingRound._meta.fields]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        access.require_staff(request.user, "launch training rounds")
        run = rounds.launch_training_round(
            form.cleaned_data["dataset"],
            request.user,
            mode=form.cleaned_data.get("mode"),
            promotion=form.cleaned_data.get("promotion"),
            options=form.options(),
        )
        # The admin goes on with ``obj`` (its messages and redirect): make it the new round.
        for field in TrainingRound._meta.concrete_fields:
            setattr(obj, field.attname, getattr(run, field.attname))
        obj._state.adding = False

    @admin.action(description="Cancel the selected rounds")
    def cancel(self, request, queryset) -> None:
        cancelled = 0
        for run in queryset.filter(status__in=rounds.ACTIVE):
            try:
                access.require_staff(request.user, "cancel training rounds")
                rounds.cancel_training_round(run)
                cancelled += 1
            except ServiceError:
                continue  # finished meanwhile
        self.message_user(request, f"{cancelled} round(s) cancelled.")


@admin.register(ImageSplit)
class ImageSplitAdmin(admin.ModelAdmin):
    list_display = ("image", "dataset", "heldout", "created_at")
    list_filter = ("heldout", "dataset")
    readonly_fields = ("image", "dataset", "heldout", "created_at")
