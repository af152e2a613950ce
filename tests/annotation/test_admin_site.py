"""The Django admin site lists every model of the annotation, registry and modeltrain apps."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = [
    "annotation/dataset",
    "annotation/datasetmembership",
    "annotation/image",
    "annotation/mask",
    "annotation/annotatorsession",
    "annotation/importjob",
    "registry/modelversion",
]


@pytest.mark.parametrize("page", PAGES)
def test_admin_changelists_load(page, image, tiny_model):
    superuser = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(superuser)

    response = client.get(f"/admin/{page}/")

    assert response.status_code == 200


def test_admin_image_page_loads(image):
    superuser = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(superuser)

    assert client.get(f"/admin/annotation/image/{image.pk}/change/").status_code == 200
