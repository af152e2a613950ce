"""The gate that keeps a test's last live-server requests away from the database flush after it
(tests/browser/conftest.py): it waits for the requests inside and turns new ones away."""

from __future__ import annotations

import threading
import time

import pytest

from tests.browser.conftest import ServerGate


def test_the_gate_waits_for_a_request_inside_and_turns_new_ones_away():
    gate = ServerGate()
    gate.started(None)
    released = threading.Event()

    def finish_later():
        time.sleep(0.3)
        released.set()
        gate.finished(None)

    threading.Thread(target=finish_later).start()
    start = time.monotonic()
    assert gate.close_and_drain(timeout=10)
    assert released.is_set() and time.monotonic() - start >= 0.25
    with pytest.raises(RuntimeError, match="takes no more requests"):
        gate.started(None)
    assert gate.inside == 0


def test_the_gate_reports_a_request_that_never_ends():
    gate = ServerGate()
    gate.started(None)
    assert not gate.close_and_drain(timeout=0.1)
    assert gate.inside == 1
