"""Production-style answers for what is not there: with DEBUG off, a missing image, dataset or
page gets the platform's own 404 page (never Django's list of URL patterns, never a 500), the
API keeps answering JSON, and /favicon.ico is an icon, not a 404."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, annotator, settings):
    settings.DEBUG = False
    client.force_login(annotator)
    return client


def assert_our_404(answer) -> None:
    assert answer.status_code == 404
    page = answer.content.decode()
    assert "<h1>Not found</h1>" in page and "Back to your datasets" in page
    assert "URLconf" not in page and "urlpatterns" not in page


def test_a_missing_image_gets_the_platforms_404(signed_in):
    answer = signed_in.get("/annotate/999999/")
    assert_our_404(answer)
    assert "/annotate/999999/" in answer.content.decode()


def test_an_image_of_someone_elses_dataset_is_not_found_either(signed_in, other_dataset):
    foreign = factories.add_image(other_dataset)
    assert_our_404(signed_in.get(f"/annotate/{foreign.pk}/"))
    answer = signed_in.post(f"/datasets/{other_dataset.pk}/stage/1/next/")
    assert_our_404(answer)


def test_an_unknown_page_gets_the_platforms_404(signed_in):
    assert_our_404(signed_in.get("/no/such/page/"))


def test_the_api_still_answers_json(signed_in):
    answer = signed_in.get("/api/no-such-endpoint/")
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"


def test_favicon_is_served(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer["Content-Type"] == "image/svg+xml"
    assert answer.content.startswith(b"<svg") and "max-age" in answer["Cache-Control"]


def test_pages_link_the_icon(signed_in):
    page = signed_in.get("/").content.decode()
    assert '<link rel="icon" href="/static/frontend/favicon.svg"' in page
    assert finders.find("frontend/favicon.svg")
