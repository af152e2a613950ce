"""The Django admin lists exports (with progress and download links) and automatic passes
(with progress counted from their images), read-only; the admin index links to the dashboard."""

from __future__ import annotations

import pytest

from annotation.models import AutomaticPass, AutomaticPassImage, Export
from annotation.services.exports import queue_export
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def test_export_list_shows_progress_and_every_download(
    staff_client, dataset, admin_user, django_capture_on_commit_callbacks
):
    for seed in range(2):
        image = add_jpeg_image(dataset, seed=seed)
        add_mask(image, blob(image, 20, 20, 6))
    with django_capture_on_commit_callbacks(execute=True):
        done = queue_export(dataset, admin_user, shard_size=1)
    queued = Export.objects.create(dataset=dataset, format="coco", progress_total=7)
    done.refresh_from_db()
    assert done.status == "done"

    page = staff_client.get("/admin/annotation/export/").content.decode()
    url = f"/api/exports/{done.pk}/download/"
    assert f'<a href="{url}">manifest.json</a>' in page
    assert f'<a href="{url}?shard=1">sa_000001.tar</a>' in page
    assert "2 / 2" in page and "0 / 7" in page
    assert f"/api/exports/{queued.pk}/download/" not in page
    assert staff_client.get("/admin/annotation/export/add/").status_code == 403


def test_automatic_pass_list_counts_done_images_and_masks(staff_client, dataset, tiny_model):
    images = [factories.add_image(dataset, seed=s) for s in range(3)]
    run = AutomaticPass.objects.create(
        dataset=dataset, kind="automatic", config={}, model_version=tiny_model,
        status="running", total_images=3,
    )  # fmt: skip
    for image, status, masks in zip(images, ["done", "failed", "pending"], [17, 0, 0], strict=True):
        AutomaticPassImage.objects.create(
            automatic_pass=run, image=image, status=status, mask_count=masks
        )
    page = staff_client.get("/admin/annotation/automaticpass/").content.decode()
    assert "1 / 3, 1 failed" in page
    assert '<td class="field-masks_so_far">17</td>' in page


def test_admin_index_links_to_the_dashboard(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert 'href="/admin/dashboard/"' in page
    assert staff_client.get("/admin/dashboard/").status_code == 200
