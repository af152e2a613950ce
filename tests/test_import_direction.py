"""Dependencies run one way: engine ← registry ← annotation ← modeltrain ← {frontend, deploy}.

Every .py file of each layer is parsed (never imported): its imports at module level and inside
functions, ``import x`` and ``from x import y``, relative ones resolved, ``import_module("x")``,
and, outside migrations, models named by string (``ForeignKey("app.Model")``,
``apps.get_model("app", ...)``). A migration may name another app in its dependencies and in the
historical state it records; what it imports is checked like any other file. tests/ and
benchmarks/ are not layered.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "engine": set(),
    "registry": {"engine"},
    "annotation": {"engine", "registry"},
    "modeltrain": {"engine", "registry", "annotation"},
    "frontend": {"engine", "registry", "annotation", "modeltrain"},
    "deploy": {"engine", "registry", "annotation", "modeltrain", "frontend"},
}
FIELD_CALLS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def _name(func: ast.expr) -> str | None:
    return getattr(func, "attr", getattr(func, "id", None))


def _string(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def imported_modules(
    source: str, module: str, *, is_package: bool = False, strings: bool = True
) -> set[str]:
    """Dotted names of what the source of ``module`` uses: its imports (relative ones resolved
    from ``module``; ``is_package`` for an __init__.py), ``import_module`` calls and, with
    ``strings``, the app labels of models named by string."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found |= {f"{base}.{alias.name}" if base else alias.name for alias in node.names}
        elif isinstance(node, ast.Call) and node.args:
            name, first = _name(node.func), _string(node.args[0])
            if first is None or not (strings or name in ("import_module", "__import__")):
                continue
            if name in ("import_module", "__import__"):
                found.add(first)
            elif name in FIELD_CALLS and "." in first:
                found.add(first.split(".")[0])
            elif name == "get_model":
                found.add(first.split(".")[0])
    return found


def imported_layers(source: str, module: str, **options: bool) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(source, module, **options)} & set(
        LAYERS
    )


def back_arrows(layer: str, source: str, module: str, **options: bool) -> set[str]:
    """The layers ``source`` (a module of ``layer``) uses although it may not."""
    return imported_layers(source, module, **options) - LAYERS[layer] - {layer}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _offenders(layer: str) -> dict[str, list[str]]:
    offenders = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad = back_arrows(
            layer,
            path.read_text(),
            _module_name(path),
            is_package=path.name == "__init__.py",
            # Migrations record history by string (dependencies, ``to=``); their imports count.
            strings="migrations" not in path.parts,
        )
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    return offenders


def test_checker_sees_imports_everywhere_and_resolves_relative_ones():
    source = (
        "import registry.models\n"
        "from engine import build_sam\n"
        "def later():\n"
        "    from modeltrain.models import TrainingRound\n"
        "    import frontend.views as views\n"
        "class Kind:\n"
        "    def method(self):\n"
        "        from ..deploy import settings\n"
        "        from . import jobs\n"
        "importlib.import_module('deploy.urls')\n"
        "parent = models.ForeignKey('modeltrain.TrainingRound', on_delete=models.CASCADE)\n"
        "apps.get_model('frontend', 'Thing')\n"
    )
    used = imported_modules(source, "annotation.services.next_images")
    assert "annotation.services.jobs" in used  # ``from . import jobs`` in annotation/services/
    assert "annotation.deploy.settings" in used  # two dots: from annotation/, not the root
    assert imported_layers(source, "annotation.services.next_images") == {
        "registry",
        "engine",
        "modeltrain",
        "frontend",
        "deploy",
        "annotation",
    }


def test_checker_catches_a_planted_back_arrow():
    planted = "def get_round():\n    from modeltrain.models import TrainingRound\n"
    assert back_arrows("annotation", planted, "annotation.services.jobs") == {"modeltrain"}
    assert back_arrows("registry", planted, "registry.visibility") == {"modeltrain"}
    assert back_arrows("modeltrain", planted, "modeltrain.rounds") == set()
    assert back_arrows("engine", "import annotation.models\n", "engine.sam") == {"annotation"}
    by_string = "dataset = models.ForeignKey('annotation.Dataset', on_delete=models.CASCADE)\n"
    assert back_arrows("registry", by_string, "registry.models") == {"annotation"}
    assert back_arrows("registry", by_string, "registry.migrations.0003_x", strings=False) == set()


@pytest.mark.parametrize("layer", list(LAYERS))
def test_layer_imports_only_the_layers_below_it(layer):
    files = list((ROOT / layer).rglob("*.py"))
    assert len(files) > 2, f"{layer}/ has no modules: the layer list is out of date"
    assert _offenders(layer) == {}
