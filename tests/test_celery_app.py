"""The Celery app as a fresh process sees it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_filesystem_broker_folders_are_created_when_the_app_is_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(SADE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="deploy.settings")
    code = "from deploy.celery import app; print(app.conf.broker_url)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "filesystem://"
    assert (tmp_path / "broker" / "queue").is_dir()
    assert (tmp_path / "broker" / "control").is_dir()
