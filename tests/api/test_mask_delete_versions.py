"""DELETE /api/masks/{id}/ names the version it started from, like an edit: a delete from a
client that never saw the latest change is refused with 409 and loses nobody's work."""

from __future__ import annotations

import pytest

from annotation.models import Mask
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def mask(annotator_client, image):
    body = {"image": image.pk, "rle": factories.rect_rle(image, 4, 6, 14, 26)}
    return annotator_client.post("/api/masks/", body, format="json").json()


def edit(client, mask, image):
    return client.patch(
        f"/api/masks/{mask['id']}/",
        {"rle": factories.rect_rle(image, 0, 0, 9, 9), "version": mask["version"]},
        format="json",
    )


def test_a_delete_from_a_stale_version_is_409_and_keeps_the_newer_edit(
    annotator_client, image, mask
):
    assert edit(annotator_client, mask, image).status_code == 200  # now at version 2

    stale = annotator_client.delete(f"/api/masks/{mask['id']}/", HTTP_IF_MATCH='"1"')
    stale_query = annotator_client.delete(f"/api/masks/{mask['id']}/?version=1")

    assert stale.status_code == 409 and stale_query.status_code == 409
    assert stale.json()["current_version"] == 2 and "version 2" in stale.json()["detail"]
    assert Mask.objects.get(pk=mask["id"]).area == 81


def test_a_delete_naming_the_current_version_deletes(annotator_client, mask):
    by_header = annotator_client.delete(f"/api/masks/{mask['id']}/", HTTP_IF_MATCH='W/"1"')

    assert by_header.status_code == 204 and not Mask.objects.exists()


def test_a_delete_naming_no_version_is_428_and_deletes_nothing(annotator_client, mask):
    response = annotator_client.delete(f"/api/masks/{mask['id']}/")

    assert response.status_code == 428 and "If-Match" in response.json()["detail"]
    assert Mask.objects.count() == 1


@pytest.mark.parametrize("version", ["0", "-1", "abc", "1.5", str(2**63), str(2**64 + 1)])
def test_a_delete_with_a_version_that_cannot_be_one_is_a_4xx_naming_it(
    annotator_client, mask, version
):
    by_query = annotator_client.delete(f"/api/masks/{mask['id']}/?version={version}")
    by_header = annotator_client.delete(f"/api/masks/{mask['id']}/", HTTP_IF_MATCH=version)

    assert by_query.status_code == 400 and "version" in by_query.json()["detail"]
    assert by_header.status_code == 428 and "If-Match" in by_header.json()["detail"]
    assert Mask.objects.count() == 1
