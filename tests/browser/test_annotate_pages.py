"""The annotator's pages as Django serves them (no browser needed): sign-in required, the queue
per dataset and stage, claiming the next image, and the annotation page only for members."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Image, Role
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(dataset, annotator, isolated_storage):
    client = Client()
    client.force_login(annotator)
    return client


def test_pages_need_a_signed_in_user(dataset, isolated_storage):
    image = factories.add_image(dataset)
    for url in ["/", f"/annotate/{image.pk}/"]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    assert Client().get("/login/").status_code == 200


def test_home_counts_the_queue_of_each_stage(member, dataset, tiny_model):
    for seed in range(3):
        factories.add_image(dataset, seed=seed)
    Image.objects.filter(pk=Image.objects.order_by("pk").last().pk).update(stage=2)

    response = member.get("/")

    queue = response.context["queues"][0]
    assert [s["available"] for s in queue["stages"]] == [2, 1]
    assert b"Next image" in response.content
    assert response.context["model"]["name"] == tiny_model.name


def test_next_image_claims_and_opens_it_or_says_nothing_is_left(member, dataset, annotator):
    image = factories.add_image(dataset)

    response = member.post(f"/datasets/{dataset.pk}/stage/1/next/")
    assert response.status_code == 302 and response["Location"] == f"/annotate/{image.pk}/"
    image.refresh_from_db()
    assert image.held_by == annotator

    response = member.post(f"/datasets/{dataset.pk}/stage/2/next/", follow=True)
    assert b"Nothing left to annotate" in response.content


def test_a_bad_stage_is_told_not_a_500(member, dataset):
    response = member.post(f"/datasets/{dataset.pk}/stage/9/next/", follow=True)

    assert response.status_code == 200 and b"stage must be 1" in response.content


def test_next_image_is_a_post(member, dataset):
    assert member.get(f"/datasets/{dataset.pk}/stage/1/next/").status_code == 405


def test_outsiders_get_404_for_other_datasets(client_for, dataset, outsider, other_dataset):
    image = factories.add_image(dataset)
    client = Client()
    client.force_login(outsider)

    assert client.get(f"/annotate/{image.pk}/").status_code == 404
    assert client.post(f"/datasets/{dataset.pk}/stage/1/next/").status_code == 404


def test_annotation_page_carries_the_config_the_script_needs(member, dataset, annotator):
    image = factories.add_image(dataset)

    response = member.get(f"/annotate/{image.pk}/")

    config = response.context["config"]
    assert config["imageId"] == image.pk and config["stage"] == 1
    assert (config["width"], config["height"]) == (64, 48)
    assert config["user"] == {"id": annotator.pk, "username": annotator.username}
    assert config["role"] == Role.ANNOTATOR
    assert config["annotateUrl"] == "/annotate/{id}/"
    assert b'id="annotate-config"' in response.content
    assert "csrftoken" in response.cookies


def test_sign_out_is_a_post_back_to_the_login_page(member):
    response = member.post("/logout/")

    assert response.status_code == 302 and response["Location"] == "/login/"
