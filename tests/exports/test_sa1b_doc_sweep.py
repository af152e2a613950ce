"""The sweep of SA-1B document files (``sa1b_docs.sweep_doc_files``, ``manage.py
sweep_sa1b_docs``, celery beat): it removes the files a killed process left and no row records
(temporary files, documents written but not recorded, older revisions, deleted images'), and
never the documents in use, files too recent to judge, or files not named as documents."""

from __future__ import annotations

import json
import os
import time
import uuid
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from annotation.models import ImageDoc
from annotation.services.export_format import ExportFilters
from annotation.services.sa1b_docs import doc_path, sweep_doc_files
from tests.exports.sa1b_docs_helpers import (
    assert_export_is_the_reference,
    make_images,
    valid_docs,
)

pytestmark = pytest.mark.django_db(transaction=True)
HOUR = 3600


def aged(path, seconds: float = 2 * HOUR, data: bytes = b"{}"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_the_sweep_removes_what_killed_processes_left_and_only_that(dataset, tmp_path):
    images = make_images(dataset)
    assert_export_is_the_reference(dataset, tmp_path / "cold", ExportFilters())
    in_use = valid_docs()
    assert in_use
    kept_files = {doc_path(i, ImageDoc.objects.get(image_id=i).revision) for i in in_use}
    for path in kept_files:  # old, but recorded: in use
        os.utime(path, (time.time() - 5 * HOUR,) * 2)

    a = images["A"].pk
    revision = ImageDoc.objects.get(image_id=a).revision
    doomed = [
        aged(doc_path(a, revision + 1)),  # written, never recorded (killed before the record)
        aged(doc_path(a, revision - 1) if revision > 1 else doc_path(a, 0)),  # an older one
        aged(doc_path(10**9 + 7, 1)),  # an image deleted since (or never there)
        aged(
            doc_path(a, revision).with_name(f".{a}-{revision + 1}.json.{uuid.uuid4().hex}.partial")
        ),
    ]
    recent = [
        aged(doc_path(a, revision + 2), seconds=60),
        aged(doc_path(a, 5).with_name(f".{a}-5.json.{uuid.uuid4().hex}.partial"), seconds=60),
    ]
    strangers = [
        aged(doc_path(a, 1).with_name("notes.txt")),
        aged(doc_path(a, 1).with_name(f"{a}-1.json.bak")),
        aged(doc_path(a, 1).parent.parent / "elsewhere" / "x.json"),
    ]
    sizes = sum(p.stat().st_size for p in doomed)

    dry = sweep_doc_files(dry_run=True)
    assert dry["removed"] == len(doomed) and dry["bytes"] == sizes
    assert all(p.exists() for p in doomed)

    report = sweep_doc_files()
    assert report["removed"] == len(doomed) and report["bytes"] == sizes
    assert report["recent"] == len(recent) and report["unknown"] == len(strangers)
    assert not any(p.exists() for p in doomed)
    assert all(p.exists() for p in [*recent, *strangers, *kept_files])
    assert valid_docs() == in_use
    assert_export_is_the_reference(dataset, tmp_path / "warm", ExportFilters())

    assert sweep_doc_files(min_age_s=0)["removed"] == len(recent)  # now judged: not recorded


def test_the_command_reports_and_refuses_a_bad_age(dataset, tmp_path):
    make_images(dataset)
    aged(doc_path(1, 99))
    out = StringIO()
    call_command("sweep_sa1b_docs", "--dry-run", stdout=out)
    assert "1 would be removed" in out.getvalue()
    assert doc_path(1, 99).exists()
    out = StringIO()
    call_command("sweep_sa1b_docs", "--json", stdout=out)
    assert json.loads(out.getvalue())["removed"] == 1 and not doc_path(1, 99).exists()
    with pytest.raises(Exception, match="min-age"):
        call_command("sweep_sa1b_docs", "--min-age", "-1")


def test_no_document_folder_is_nothing_to_sweep(db):
    assert not os.path.exists(settings.SA1B_DOC_DIR)
    assert sweep_doc_files() == {"files": 0, "removed": 0, "bytes": 0, "recent": 0, "unknown": 0}


def test_celery_beat_sweeps_once_a_day():
    from deploy.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["sweep-sa1b-docs"]
    assert entry["task"] in app.tasks
    assert len(entry["schedule"].hour) == 1 and len(entry["schedule"].minute) == 1
