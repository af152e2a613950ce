"""deploy/docker-compose.yml refers only to things that exist: the Docker engine cannot run here,
so this reads the file and checks each service's image or build, command, environment, volumes
and health check against the repository, and that the environment it gives the containers is a
production configuration Django accepts."""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from annotation.routing import RESOURCES
from deploy.healthcheck import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["web", "worker-gpu", "worker-cpu", "beat"]  # built from deploy/Dockerfile
# Variables the application containers set that another program reads, not our settings.
READ_BY_OTHERS = {"OMP_NUM_THREADS": "PyTorch's OpenMP thread pool"}
# Variables of the images we do not build, as their documentation names them.
IMAGE_VARIABLES = {"postgres": {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def deploy_python_source() -> str:
    return "\n".join(p.read_text() for p in DEPLOY.glob("*.py"))


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def command_words(command) -> list[list[str]]:
    """A compose command as the commands it runs: a list as it is, ``sh -c "a && b"`` split."""
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


def check_program(words: list[str], service: str) -> None:
    """Fail unless what ``words`` runs exists in the repository."""
    if words[0] == "exec":
        words = words[1:]
    program, args = words[0], words[1:]
    if program == "celery":
        assert args[0] == "-A" and importlib.util.find_spec(args[1]), words
        module = importlib.import_module(args[1])
        assert module.app.main == "sade", f"{args[1]} is not the project's Celery app"
        assert args[2] in ("worker", "beat"), words
        if "-Q" in args:
            queues = args[args.index("-Q") + 1].split(",")
            assert set(queues) <= set(RESOURCES), f"{service}: unknown queue in {queues}"
    elif program == "gunicorn":
        config = args[args.index("-c") + 1]
        assert (ROOT / config).is_file(), f"{service}: no gunicorn config {config}"
        module, _, attribute = args[-1].partition(":")
        assert hasattr(importlib.import_module(module), attribute), args[-1]
    elif program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands(), f"{service}: no management command {args[1]}"
    elif program == "python" and args[0] == "-m":
        assert importlib.util.find_spec(args[1]), f"{service}: no module {args[1]}"
        if args[1] == "deploy.healthcheck":
            build_parser().parse_args(args[2:])  # exits (fails the test) on bad arguments
    elif program == "caddy":
        config = args[args.index("--config") + 1]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[service]["volumes"]}
        assert config in mounts and (DEPLOY / mounts[config]).is_file(), config
    else:
        assert program in ("pg_isready", "redis-cli", "redis-server", "wget"), words
        assert "image" in SERVICES[service] and "build" not in SERVICES[service], (
            f"{program} comes from the service's own image"
        )


def test_the_platform_has_each_service_with_a_health_check():
    assert set(SERVICES) == {"postgres", "redis", *APP_SERVICES, "proxy"}
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_has_an_image_or_a_build_that_exists(name):
    service = SERVICES[name]
    if "build" in service:
        context = (DEPLOY / service["build"]["context"]).resolve()
        assert context == ROOT
        assert (context / service["build"]["dockerfile"]).is_file()
        variant = service["build"]["args"]["VARIANT"]
        dockerfile = (DEPLOY / "Dockerfile").read_text()
        assert f"AS torch-{variant}\n" in dockerfile, f"no stage torch-{variant}"
        assert service["image"] == f"sade:{variant}", "the image is named after its variant"
    else:
        assert re.fullmatch(r"[a-z0-9./-]+:[0-9][\w.-]*", service["image"]), (
            f"{name}: pin a version of {service['image']}"
        )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_command_and_health_check_runs_something_that_exists(name):
    service = SERVICES[name]
    for words in command_words(service["command"]) if "command" in service else []:
        check_program(words, name)
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", "exec form, no shell"
    check_program(test[1:], name)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_environment_variable_is_read_by_something(name):
    environment = SERVICES[name].get("environment", {})
    if name in APP_SERVICES:
        source = deploy_python_source()
        for key in environment:
            assert f'"{key}"' in source or key in READ_BY_OTHERS, (
                f"{name}: {key} is read by nothing in deploy/*.py"
            )
    elif name == "proxy":
        caddyfile = (DEPLOY / "Caddyfile").read_text()
        for key in environment:
            assert "{$" + key in caddyfile, f"proxy: {key} is not used by deploy/Caddyfile"
    else:
        assert set(environment) <= IMAGE_VARIABLES.get(name, set()), name


def test_every_interpolated_variable_is_in_env_example_and_every_example_is_used():
    text = (DEPLOY / "docker-compose.yml").read_text()
    interpolated = set(INTERPOLATION.findall(text))
    example = set(env_example())
    assert interpolated - example == set(), "document these in deploy/env.example"
    assert example - interpolated == set(), "deploy/env.example names what compose ignores"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_volume_is_a_repository_file_or_a_declared_volume(name):
    declared = set(COMPOSE["volumes"])
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith((".", "/")):
            assert (DEPLOY / source).exists(), f"{name}: {source} is not in deploy/"
        else:
            assert source in declared, f"{name}: volume {source} is not declared"


def test_the_gpu_worker_takes_one_task_at_a_time_on_an_nvidia_gpu():
    service = SERVICES["worker-gpu"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    words = command_words(service["command"])[0]
    assert words[words.index("--concurrency") + 1] == "1"
    assert words[words.index("-Q") + 1] == "gpu"
    assert service["environment"]["SAM_DEVICE"] == "cuda"


def test_the_dockerfile_copies_only_what_exists_and_pins_the_projects_torch():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources = [
        part
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
        if not part.startswith("--")
    ]
    assert "deploy" in sources and "manage.py" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_pin = next(dep for dep in pinned if dep.startswith("torch=="))
    assert f"ARG TORCH_VERSION={torch_pin.removeprefix('torch==')}\n" in dockerfile


def compose_environment(service: str) -> dict[str, str]:
    """The environment compose would give ``service``, with deploy/.env made from env.example
    plus the two secrets it leaves empty."""
    values = env_example() | {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": "pw",
    }

    def interpolate(match: re.Match) -> str:
        name, default = match.group(1), match.group(0).partition(":-")[2].rstrip("}")
        return values.get(name) or default

    environment = SERVICES[service]["environment"]
    return {key: INTERPOLATION.sub(interpolate, str(value)) for key, value in environment.items()}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_compose_environment_is_a_production_configuration_django_accepts(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SADE_", "DJANGO_"))}
    env.update(compose_environment(name), SADE_DATA_DIR=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "deploy.settings"
    # One process: the deploy checks (they raise on a warning), then what the settings chose.
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING', tags=['security']); "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES"
        "['default']['BACKEND'], s.MEDIA_ACCEL_REDIRECT)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-5:] == [
        "False",
        "django.db.backends.postgresql",
        "redis://redis:6379/0",
        "django.core.cache.backends.redis.RedisCache",
        "True",
    ], out.stderr[-3000:]


def test_the_caddyfile_is_valid_for_caddy(tmp_path):
    env = {**os.environ, "SADE_CADDY_ADMIN": "off", "HOME": str(tmp_path)}
    env.update(compose_environment("proxy"))
    out = subprocess.run(
        ["caddy", "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
