"""The dashboard's quality section shows the figures of the quality reports."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Image
from annotation.services.attempt_masks import add_attempt_mask
from annotation.services.ground_truth import mark_ground_truth
from annotation.services.image_holds import claim_next_image, complete_image
from annotation.services.masks import accept_mask
from annotation.services.quality_claims import open_attempt
from tests import factories
from tests.quality.conftest import rect
from tests.quality.helpers import next_claim_draws, set_shares

pytestmark = pytest.mark.django_db


def section(html: str) -> str:
    start = html.index('data-card="ground-truth"')
    return html[start : html.index("</section>", start)]


def test_the_dashboard_lists_accuracy_and_agreement(dataset, annotator, dataset_admin, admin_user):
    truth = factories.add_image(dataset, seed=100)
    factories.add_mask(truth, rle=rect(0, 0, 10, 10))
    mark_ground_truth(dataset, dataset_admin, [truth.pk])
    plain = factories.add_image(dataset, seed=1)
    set_shares(dataset, ground_truth=0.5, double=1.0)
    next_claim_draws(dataset, annotator, 0.5)
    image = claim_next_image(dataset, annotator, 1)
    add_attempt_mask(
        open_attempt(image, annotator),
        image,
        annotator,
        rle=rect(2, 0, 12, 10),
        source="manual",
        seconds_spent=7.5,
    )
    complete_image(Image.objects.get(pk=truth.pk), annotator)
    # The plain image: annotated by the admin, then doubled to the annotator.
    next_claim_draws(dataset, dataset_admin, 0.5, ground_truth=False)
    assert claim_next_image(dataset, dataset_admin, 1).pk == plain.pk
    accept_mask(plain, dataset_admin, rle=rect(0, 0, 10, 10), source="manual")
    complete_image(plain, dataset_admin)
    next_claim_draws(dataset, annotator, 0.5, ground_truth=False)
    doubled = claim_next_image(dataset, annotator, 1)
    add_attempt_mask(
        open_attempt(doubled, annotator), doubled, annotator, rle=rect(0, 0, 10, 9), source="manual"
    )
    complete_image(Image.objects.get(pk=plain.pk), annotator)

    client = Client()
    client.force_login(admin_user)
    html = section(client.get(reverse("dashboard-dataset", args=[dataset.pk])).content.decode())

    assert "0.500 of each annotator" in html and "1 of the images annotated" in html
    assert f'<th scope="row">{annotator.username}</th><td class="num">1</td>' in html
    assert '<td class="num">0.667</td>' in html  # 80 / 120
    assert '<td class="num">7.5</td>' in html
    assert '<th scope="row">1: assisted-manual</th><td class="num">1</td>' in html
    assert "0.900" in html and "0&nbsp;%" in html  # IoU 0.9 exactly is not above 0.90
