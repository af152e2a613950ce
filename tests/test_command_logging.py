"""What a management command prints is what the user needs: no line from kombu about the
filesystem broker's missing host name, and no Celery line per task when tasks run inline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factories

ROOT = Path(__file__).resolve().parent.parent


def manage(data_dir: Path, *args: str, eager: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(SADE_DATA_DIR=str(data_dir), CELERY_TASK_ALWAYS_EAGER="1" if eager else "0")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("eager", [False, True], ids=["queued", "eager"])
def test_import_images_prints_only_its_report(tmp_path, eager):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(3):
        (folder / f"{seed}.png").write_bytes(factories.image_bytes(64, 48, seed=seed))
    data_dir = tmp_path / "data" / "not-yet-made"  # migrate makes it

    assert manage(data_dir, "migrate", "-v", "0").returncode == 0
    result = manage(data_dir, "import_images", "demo", str(folder), "--create", eager=eager)

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "No hostname was supplied" not in output
    assert "succeeded" not in output
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines[0].startswith("created dataset 'demo'")
    assert [line.split()[1] for line in lines[1:4]] == ["0.png", "1.png", "2.png"]
    assert lines[4] == "demo: 3 imported, 0 duplicates skipped, 0 rejected"
    assert len(lines) == 5
