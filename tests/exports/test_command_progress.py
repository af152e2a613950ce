"""The long management commands draw a progress bar on stderr when asked (--progress) or when
stderr is a terminal, and never otherwise; stdout holds the same report either way."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable

import pytest
from django.core.management import call_command

from annotation.management.progress import ProgressBar
from annotation.services.sa1b import export_sa1b
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_images(dataset):
    images = [factories.add_image(dataset, seed=s) for s in range(3)]
    for image in images:
        add_mask(image, blob(image, 20, 20, 6))
    return images


def with_stderr(work: Callable[[], None]) -> str:
    """What ``work`` wrote to the process's stderr (where the bars are drawn)."""
    err = io.StringIO()
    saved, sys.stderr = sys.stderr, err
    try:
        work()
    finally:
        sys.stderr = saved
    return err.getvalue()


def run(*args: str) -> tuple[str, str]:
    """The command's stdout and stderr."""
    out = io.StringIO()
    err = with_stderr(lambda: call_command(*args, stdout=out))
    return out.getvalue(), err


def last_count(bar_text: str) -> str:
    """The last count a bar drew: 'done/total', or 'done' where the total is unknown."""
    counts = re.findall(r"(\d+/\d+|\d+)(?=\S* \[)", bar_text)
    assert counts, bar_text
    return counts[-1]


@pytest.mark.parametrize(
    ("command", "args", "unit", "count"),
    [
        ("export_sa1b", ["cats", "{out}/sa1b"], "images", "3/3"),
        ("export_coco", ["cats", "{out}/coco.json"], "images", "3/3"),
        ("check_masks", [], "masks", "3/3"),
        ("import_images", ["cats", "{photos}"], "files", "2"),
        ("import_annotations", ["cats", "{exported}"], "images", "3"),
    ],
)
def test_a_bar_when_asked_and_the_same_report_either_way(
    three_images, tmp_path, command, args, unit, count
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in (7, 8):
        (photos / f"{seed}.png").write_bytes(factories.image_bytes(seed=seed))
    export_sa1b(three_images[0].dataset, tmp_path / "exported", shard_size=2)

    def filled(suffix: str) -> list[str]:
        (tmp_path / suffix).mkdir()
        paths = {"out": tmp_path / suffix, "photos": photos, "exported": tmp_path / "exported"}
        return [a.format(**paths) for a in args]

    quiet_out, quiet_err = run(command, *filled("quiet"))
    shown_out, shown_err = run(command, *filled("shown"), "--progress")

    assert quiet_err == ""  # stderr is not a terminal here: no bar unless asked
    assert unit in shown_err and last_count(shown_err) == count
    strip = re.compile(r"\S*(quiet|shown)\S*")
    if command.startswith("import"):  # the second run finds the first one's work done
        assert quiet_out.splitlines()[-1].split(":")[0] == shown_out.splitlines()[-1].split(":")[0]
    else:
        assert strip.sub("", quiet_out) == strip.sub("", shown_out)


def test_no_progress_hides_the_bar_even_when_asked_for_by_default(three_images, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    _, err = run("check_masks", "--no-progress")
    assert err == ""


def test_the_bar_follows_a_callback_and_an_iteration():
    def work() -> None:
        with ProgressBar({"progress": True}, "work", "things") as bar:
            bar(0, 12)
            bar(4, 12)
            bar(10, 12)
            assert (bar.bar.n, bar.bar.total) == (10, 12)
            assert list(bar.iterate(["a", "b"])) == ["a", "b"]
            assert bar.bar.n == 12

    err = with_stderr(work)
    assert "work" in err and "things" in err and last_count(err) == "12/12"
