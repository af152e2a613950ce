"""The first click never waits for the encoder: a precomputed embedding answers it, an image whose
embedding is still being computed says "preparing…" until it is ready, and the next image's
file and embedding are fetched while the annotator works on this one."""

from __future__ import annotations

import pytest

from annotation.models import EmbeddingStatus, Image
from annotation.services.embeddings import get_or_compute_embedding
from tests.browser.annotate_fixtures import (
    click_image,
    sign_in,
    wait_predicted,
    wait_ready,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_first_click_uses_the_stored_embedding_and_the_next_image_is_fetched(
    live_server, page, work, screenshot
):
    first, upcoming = work.images
    seen: list[str] = []
    page.on("request", lambda r: seen.append(f"{r.method} {r.url}"))
    answers: list[dict] = []
    page.on(
        "response",
        lambda r: answers.append(r.json()) if r.url.endswith("/predict/") else None,
    )
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    page.wait_for_url(f"**/annotate/{first.pk}/")
    wait_ready(page)
    page.evaluate("() => window.sade.toggleHover()")

    click_image(page, 160, 120)
    wait_predicted(page, 1)
    page.wait_for_function("() => window.sade.lifecycle.prefetched.length === 1")
    screenshot(page)

    assert answers[0]["embedding_computed"] is False
    assert f"GET {live_server.url}/api/images/{upcoming.pk}/file/" in seen
    assert f"POST {live_server.url}/api/images/{upcoming.pk}/prepare/" in seen
    assert Image.objects.get(pk=upcoming.pk).held_by is None  # fetched, not claimed


def test_an_embedding_being_computed_shows_preparing_until_ready(
    live_server, page, work, settings, tmp_path, screenshot
):
    image = work.images[0]
    settings.EMBEDDING_DIR = tmp_path / "fresh-embeddings"
    Image.objects.filter(pk=image.pk).update(
        embedding_status=EmbeddingStatus.QUEUED, encoder_key=work.model.encoder_key
    )
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    page.wait_for_function("() => document.body.dataset.embedding === 'preparing'")
    assert "Preparing" in page.locator("#status").inner_text()
    screenshot(page, "preparing")

    get_or_compute_embedding(image, work.model)  # what the gpu worker does

    page.wait_for_function("() => document.body.dataset.embedding === 'ready'")
    assert "Ready" in page.locator("#status").inner_text()
    screenshot(page, "ready")
