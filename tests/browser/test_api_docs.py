"""A signed-in admin opens the API documentation: Swagger UI renders the schema from this
server alone (drf-spectacular-sidecar), with no request leaving it."""

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sees_swagger_ui_with_the_api_title(live_server, page, login, screenshot):
    requested = []
    page.on("request", lambda request: requested.append(request.url))

    login(page)
    screenshot(page, "admin")
    page.goto(f"{live_server.url}/api/docs/")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for()
    # At least one operation rendered: the schema was fetched and parsed, not just the shell.
    page.locator(".swagger-ui .opblock").first.wait_for()
    screenshot(page)

    assert settings.SPECTACULAR_SETTINGS["TITLE"] in title.inner_text()
    outside = [
        url
        for url in requested
        if url.startswith(("http:", "https:", "ws:", "wss:"))
        and not url.startswith(live_server.url)
    ]
    assert outside == [], f"the docs page fetched from outside the server: {outside}"
