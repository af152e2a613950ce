"""GET /healthz: no authentication, any Host, plain HTTP; "ok" when the database and the broker
answer, 503 "unavailable" when one does not, with nothing else said."""

from __future__ import annotations

import socket

import pytest
from django.db import OperationalError
from django.test import Client

from deploy import health

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def probe(settings):
    """A load balancer's probe: its own Host, no credentials; production's HTTPS redirect on."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["annotate.example.org"]
    return Client(HTTP_HOST="10.0.0.7:8000")


def test_healthy_answers_ok_without_authentication_host_or_https(probe):
    response = probe.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_other_paths_still_get_host_validation(probe):
    assert probe.get("/api/me/").status_code == 400  # DisallowedHost


def test_only_get_and_head(probe):
    assert probe.post("/healthz").status_code == 405
    assert probe.head("/healthz").status_code == 200


def test_an_unreachable_broker_is_unavailable(probe, settings):
    from deploy.celery import app
    from tests.integration.conftest import drop_broker_connections

    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app.conf.broker_transport_options = {}
    drop_broker_connections(app)
    try:
        response = probe.get("/healthz")
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        drop_broker_connections(app)

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_a_failing_database_is_unavailable_and_its_error_is_not_shown(probe, monkeypatch):
    secret = "password authentication failed for user sade at 10.1.2.3"

    def broken() -> None:
        raise OperationalError(secret)

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = probe.get("/healthz")

    assert response.status_code == 503
    assert response.content == b'{"status": "unavailable"}'
