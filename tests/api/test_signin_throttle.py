"""Sign-in attempts are rate-limited per client address across every way to sign in (the token
endpoint, the sign-in page, the browsable API's and the admin's log-in forms): over the limit
the answer is 429 with Retry-After, before any password is checked."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def guess(client, password="wrong"):
    return client.post(
        "/api/auth/token/", {"username": "annie", "password": password}, format="json"
    )


def test_the_token_endpoint_answers_429_with_retry_after_past_the_limit(annotator, settings):
    settings.SIGNIN_RATE = "5/min"
    client = APIClient()

    answers = [guess(client) for _ in range(30)]

    assert [a.status_code for a in answers[:5]] == [400] * 5
    assert {a.status_code for a in answers[5:]} == {429}
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "SADE_SIGNIN_RATE" in refused.json()["detail"]
    # Even the right password waits: the limit is on attempts, so guessing cannot go on.
    assert guess(client, "pw-for-tests").status_code == 429


def test_every_sign_in_form_counts_against_the_same_limit(annotator, settings):
    settings.SIGNIN_RATE = "3/min"
    browser = Client()
    form = {"username": "annie", "password": "wrong"}

    assert browser.post("/login/", form).status_code == 200  # the form again, with its error
    assert browser.post("/admin/login/", form).status_code == 200
    assert browser.post("/api/auth/login/", form).status_code == 200

    for path in ("/login/", "/admin/login/", "/api/auth/login/"):
        refused = browser.post(path, form)
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert guess(APIClient()).status_code == 429
    assert "too many sign-in attempts" in browser.post("/login/", form).content.decode()


def test_reading_the_sign_in_page_is_not_counted(annotator, settings):
    settings.SIGNIN_RATE = "2/min"
    browser = Client()

    for _ in range(5):
        assert browser.get("/login/").status_code == 200
    signed_in = browser.post("/login/", {"username": "annie", "password": "pw-for-tests"})
    assert signed_in.status_code == 302


def test_the_limit_is_per_address(annotator, settings):
    settings.SIGNIN_RATE = "2/min"
    here, there = APIClient(REMOTE_ADDR="10.1.1.1"), APIClient(REMOTE_ADDR="10.2.2.2")

    assert [guess(here).status_code for _ in range(3)] == [400, 400, 429]
    assert guess(there).status_code == 400
    # A client cannot pick its own address with X-Forwarded-For when no proxy is configured.
    spoofed = APIClient(REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert guess(spoofed).status_code == 429
