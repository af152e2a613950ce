"""Headless Chromium through Playwright against pytest-django's live server.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/install.sh); Playwright's own
browser download is never used. Every screen a test checks is kept as a screenshot under
test-artifacts/screenshots/ so a person can look at it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SADE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One Chromium for the browser tests, closed when they are done.

    Playwright's sync API keeps an asyncio loop running in this thread while it is started, and
    Django refuses ORM calls under a running loop; the calls here are ordinary synchronous ones,
    so the check is lifted only while the browser exists.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium "
            "package (scripts/install.sh installs it; `make test` runs that)."
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context (no cookies) and page per test; 10 s default timeout."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """``screenshot(page)`` saves test-artifacts/screenshots/<test name>.png;
    ``screenshot(page, "step")`` saves <test name>-step.png. Returns the path."""

    def take(page, step: str | None = None) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
        if step:
            name = f"{name}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', step)}"
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def login(live_server, django_user_model) -> Callable[..., None]:
    """``login(page)`` creates a staff superuser and signs in through the Django admin's
    login form, as a person would."""

    def sign_in(page, username: str = "browser-admin", password: str = "browser-pass-123") -> None:
        if not django_user_model.objects.filter(username=username).exists():
            django_user_model.objects.create_superuser(
                username, f"{username}@example.com", password
            )
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return sign_in
