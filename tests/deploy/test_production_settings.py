"""Production mode (SADE_PRODUCTION=1) is secure by default and refuses to start without what
it needs; development (no variable) stays the default. Each case is a fresh process, since
settings are read once."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(repr((s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.ALLOWED_HOSTS)))"
)


def run_settings(tmp_path: Path, code: str = SHOW, **variables: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SADE_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="deploy.settings", SADE_DATA_DIR=str(tmp_path))
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def production(**extra: str) -> dict[str, str]:
    return {
        "SADE_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "annotate.example.org",
        **extra,
    }


def test_development_is_the_default(tmp_path):
    out = run_settings(tmp_path)
    assert out.returncode == 0, out.stderr
    debug, session_secure, csrf_secure, redirect, hsts, proxy, hosts = eval(out.stdout)
    assert debug is True and not session_secure and not redirect and hsts == 0
    assert "localhost" in hosts


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_a_secret_key_or_allowed_hosts(tmp_path, missing):
    variables = production()
    del variables[missing]
    out = run_settings(tmp_path, **variables)
    assert out.returncode != 0
    assert f"SADE_PRODUCTION=1 needs {missing} in the environment" in out.stderr


def test_production_is_secure_by_default(tmp_path):
    out = run_settings(tmp_path, **production())
    assert out.returncode == 0, out.stderr
    debug, session_secure, csrf_secure, redirect, hsts, proxy, hosts = eval(out.stdout)
    assert debug is False
    assert session_secure and csrf_secure and redirect
    assert hsts >= 180 * 24 * 3600
    assert proxy == ("HTTP_X_FORWARDED_PROTO", "https")
    assert hosts == ["annotate.example.org"]


def test_production_debug_only_when_asked_for_explicitly(tmp_path):
    out = run_settings(tmp_path, **production(DJANGO_DEBUG="1"))
    assert eval(out.stdout)[0] is True


def test_production_passes_djangos_deployment_checks(tmp_path):
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING', tags=['security'])"
    )
    out = run_settings(tmp_path, code, **production())
    assert out.returncode == 0, out.stderr[-3000:]


def test_production_refuses_a_visibility_timeout_shorter_than_a_task(tmp_path):
    out = run_settings(
        tmp_path,
        **production(
            CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
            SADE_VISIBILITY_TIMEOUT="3600",
            SADE_TASK_TIME_LIMIT="7200",
        ),
    )
    assert out.returncode != 0
    assert "SADE_VISIBILITY_TIMEOUT (3600 s) must be longer" in out.stderr


def test_a_malformed_predict_rate_is_refused_at_start(tmp_path):
    out = run_settings(tmp_path, SADE_PREDICT_RATE="lots")
    assert out.returncode != 0
    assert "SADE_PREDICT_RATE='lots': use N/s, N/min, N/hour or N/day" in out.stderr


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SAM_PRECISION": "int8"}, "SAM_PRECISION must be fp32, bf16 or fp16, got 'int8'"),
        ({"SAM_PRECISION": "fp16"}, "SAM_PRECISION=fp16 needs SAM_DEVICE=cuda"),
    ],
)
def test_an_unusable_precision_is_refused_at_start(tmp_path, variables, message):
    out = run_settings(tmp_path, **{"SAM_DEVICE": "cpu", **variables})
    assert out.returncode != 0
    assert message in out.stderr


def test_bf16_on_a_cpu_is_accepted(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.SAM_PRECISION)"
    out = run_settings(tmp_path, code, SAM_PRECISION="bf16", SAM_DEVICE="cpu")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bf16"
