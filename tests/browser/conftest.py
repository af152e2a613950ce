"""Headless Chromium through Playwright against pytest-django's live server.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/install.sh); Playwright's own
browser download is never used. Every screen a test checks is kept as a screenshot under
test-artifacts/screenshots/ so a person can look at it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core import signals

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


class ServerGate:
    """Counts the live server's requests in flight and, once closed, turns new ones away.

    Closing a page fires its ``pagehide`` handlers, which send keep-alive requests (a heartbeat,
    pending deletes); Chromium delivers them after the test has returned. Served while
    pytest-django truncates the tables for the next test, such a request's row locks and the
    TRUNCATE's table locks can deadlock, and the flush fails. So between the page's close and the
    flush, the gate shuts and waits for the requests already inside to finish."""

    def __init__(self) -> None:
        self.inside = 0
        self.open = True
        self.changed = threading.Condition()

    def started(self, sender, **kwargs) -> None:
        with self.changed:
            if not self.open:
                raise RuntimeError("the test is over: the live server takes no more requests")
            self.inside += 1

    def finished(self, sender, **kwargs) -> None:
        with self.changed:
            self.inside = max(0, self.inside - 1)
            self.changed.notify_all()

    def close_and_drain(self, timeout: float = 30.0) -> bool:
        with self.changed:
            self.open = False
            return self.changed.wait_for(lambda: self.inside == 0, timeout=timeout)


@pytest.fixture(autouse=True)
def _live_server_drained(request) -> Iterator[None]:
    """For tests on the live server: no request of theirs is still being served (or starts) when
    the database is flushed after them. Set up after the database fixture, so torn down before
    its flush, and (autouse) before ``page``, so torn down after the browser context closes."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")
    gate = ServerGate()
    signals.request_started.connect(gate.started, dispatch_uid="sade-browser-gate-started")
    signals.request_finished.connect(gate.finished, dispatch_uid="sade-browser-gate-finished")
    try:
        yield
        drained = gate.close_and_drain()
    finally:
        signals.request_started.disconnect(dispatch_uid="sade-browser-gate-started")
        signals.request_finished.disconnect(dispatch_uid="sade-browser-gate-finished")
    assert drained, f"{gate.inside} live-server request(s) still running 30 s after the test"


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
