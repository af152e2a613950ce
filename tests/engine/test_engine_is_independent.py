"""engine/ is pure torch/numpy/Pillow/pycocotools: it never imports Django or the platform."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = {
    "django",
    "rest_framework",
    "celery",
    "annotation",
    "registry",
    "modeltrain",
    "deploy",
}


def imported_roots(source: str) -> set[str]:
    """Top-level package names a module imports (absolute imports only; relative ones stay
    inside engine/ by construction)."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def test_checker_sees_every_import_form():
    source = (
        "import django.db\nfrom celery import shared_task\nimport os, annotation.models as m\n"
        "from . import rle\nimportlib.import_module('deploy.settings')\n"
    )
    assert imported_roots(source) == {"django", "celery", "os", "annotation", "deploy"}


def test_no_engine_module_imports_the_platform():
    files = sorted(ENGINE.rglob("*.py"))
    assert ENGINE / "images.py" in files and ENGINE / "rle.py" in files
    offenders = {
        str(path.relative_to(ENGINE)): sorted(imported_roots(path.read_text()) & FORBIDDEN)
        for path in files
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_importing_the_engine_does_not_load_django():
    code = (
        "import engine, engine.images, engine.rle, engine.store, engine.checkpoints; "
        "import sys; assert 'django' not in sys.modules, 'django was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ENGINE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
