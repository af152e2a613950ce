"""Services queue tasks by name (annotation.services.queueing) and never import a tasks module:
tasks import services, not the other way round."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.db import transaction

from annotation.services import image_holds
from annotation.services.queueing import queue_task

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = [
    *sorted((ROOT / "annotation" / "services").glob("*.py")),
    *sorted(p for p in (ROOT / "modeltrain").glob("*.py") if p.name != "tasks.py"),
]


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at module level or inside functions, with the names
    imported from a package (``from annotation import tasks`` gives ``annotation.tasks``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imports_tasks(source: str) -> list[str]:
    return sorted(m for m in imported_modules(source) if m.split(".")[-1] == "tasks")


def test_the_checker_sees_imports_inside_functions_and_from_packages():
    source = (
        "def f():\n    from annotation.tasks import embed_image_task\n"
        "from modeltrain import tasks\nimport os\n"
    )
    assert imports_tasks(source) == ["annotation.tasks", "modeltrain.tasks"]


def test_no_service_module_imports_a_tasks_module():
    names = {path.name for path in SERVICE_MODULES}
    assert {"exports.py", "automatic.py", "rounds.py", "versions.py"} <= names
    offenders = {
        str(path.relative_to(ROOT)): imports_tasks(path.read_text()) for path in SERVICE_MODULES
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


@pytest.mark.django_db
def test_a_queued_task_runs_after_commit_and_not_before(django_capture_on_commit_callbacks):
    with mock.patch.object(image_holds, "expire_holds", return_value=0) as service:
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                queue_task("annotation.expire_holds")
                assert service.call_count == 0  # still inside the transaction
        assert service.call_count == 1


@pytest.mark.django_db
def test_a_task_queued_in_a_rolled_back_transaction_never_runs(
    django_capture_on_commit_callbacks,
):
    with mock.patch.object(image_holds, "expire_holds", return_value=0) as service:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                queue_task("annotation.expire_holds")
                raise RuntimeError("rolled back")
        assert callbacks == [] and service.call_count == 0


@pytest.mark.django_db
def test_queueing_now_does_not_wait_for_the_commit():
    with mock.patch.object(image_holds, "expire_holds", return_value=0) as service:
        with transaction.atomic():
            queue_task("annotation.expire_holds", after_commit=False)
            assert service.call_count == 1


def test_a_web_process_finds_the_tasks_by_name_with_their_queues(tmp_path):
    """A web process has imported no tasks module: the lookup registers them, so the router
    still sends each to its resource's queue."""
    code = (
        "import sys, django; django.setup()\n"
        "from annotation.services.queueing import registered_task\n"
        "from deploy.celery import app\n"
        "assert 'annotation.tasks' not in sys.modules\n"
        "for name in ('annotation.embed_image', 'annotation.run_export',\n"
        "             'modeltrain.run_training_round', 'modeltrain.reembed_images'):\n"
        "    task = registered_task(name)\n"
        "    print(name, app.amqp.router.route({}, name, (), {}, task)['queue'].name)\n"
    )
    env = {
        **os.environ,
        "SADE_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
    }
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:4] == [
        "annotation.embed_image gpu",
        "annotation.run_export cpu",
        "modeltrain.run_training_round gpu",
        "modeltrain.reembed_images cpu",
    ]
