"""python manage.py import_images DATASET PATH [--short-side N] [--create]"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Dataset, Image
from tests import factories

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_images", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.png").write_bytes(factories.image_bytes(seed=1))
    (root / "sub" / "b.jpg").write_bytes(factories.image_bytes(seed=2, fmt="JPEG"))
    (root / "sub" / "deeper" / "c.webp").write_bytes(factories.image_bytes(300, 200, 3, "WEBP"))
    (root / "sub" / "broken.png").write_bytes(factories.image_bytes(seed=4)[:100])
    return root


def test_imports_a_folder_recursively_and_prints_the_report(dataset, folder):
    out = run(dataset.name, str(folder))

    names = set(Image.objects.values_list("original_name", flat=True))
    assert names == {"a.png", "sub/b.jpg", "sub/deeper/c.webp"}
    assert "rejected  sub/broken.png: truncated" in out
    assert "cats: 3 imported, 0 duplicates skipped, 1 rejected" in out


def test_second_run_reports_duplicates(dataset, folder):
    run(dataset.name, str(folder))
    (folder / "sub" / "broken.png").unlink()
    out = run(str(dataset.pk), str(folder))  # the dataset by id; only duplicates: exit 0

    assert "0 imported, 3 duplicates skipped, 0 rejected" in out
    assert Image.objects.count() == 3


def test_imports_a_zip_with_downscale(dataset, tmp_path):
    archive = tmp_path / "batch.zip"
    archive.write_bytes(
        factories.zip_bytes(
            {"x/big.png": factories.image_bytes(400, 100), "../evil.png": factories.image_bytes()}
        )
    )

    out = run(dataset.name, str(archive), "--short-side", "50")

    image = Image.objects.get()
    assert (image.width, image.height) == (200, 50)
    assert "rejected  batch.zip/../evil.png: unsafe path" in out


def test_create_makes_the_dataset(tmp_path, folder):
    out = run("new-set", str(folder), "--create")

    assert "created dataset 'new-set'" in out
    assert Dataset.objects.get(name="new-set").images.count() == 3


def test_unknown_dataset_without_create_fails(folder):
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        run("nope", str(folder))


def test_nothing_imported_and_errors_exits_nonzero(dataset, tmp_path):
    (tmp_path / "junk.txt").write_text("not an image")

    with pytest.raises(CommandError, match="nothing was imported"):
        run(dataset.name, str(tmp_path))


def test_a_missing_path_fails_with_its_name(dataset, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run(dataset.name, str(tmp_path / "missing"))


def test_exit_status_is_nonzero_from_the_command_line(dataset, tmp_path):
    (tmp_path / "junk.txt").write_text("not an image")
    with pytest.raises(SystemExit) as exited:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", "import_images", dataset.name, str(tmp_path)])
    assert exited.value.code != 0
