"""`make run`'s model step: real SAM from the first click when the machine is online.

    python -m deploy.official_model [--progress]

Downloads Meta's ``vit_b`` checkpoint into CHECKPOINT_DIR (``engine.checkpoints``: size, md5
and sha256 checked; a download that broke off resumes), registers it as a model version and
activates it when the untrained cold start is what answers (a version promoted here stays
active). Prints at most one line; always exits 0, so `make run` starts either way: offline, it
says so and the cold start stays. Nothing happens with SADE_AUTO_DOWNLOAD=0, with SAM_CHECKPOINT
set (the operator chose the model) or once the file is registered.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from engine.checkpoints import (
    DEFAULT_BASE_URL,
    OFFICIAL_FILES,
    CheckpointFile,
    HostUnreachableError,
    download_checkpoint,
)
from engine.registry import CheckpointError

MODEL_TYPE = "vit_b"
COLD_START_STAYS = "the cold-start model answers until then"


def install_official_model(
    model_type: str = MODEL_TYPE,
    *,
    base_url: str | None = None,
    files: Mapping[str, CheckpointFile] = OFFICIAL_FILES,
    progress: bool = False,
) -> str | None:
    """Download, register and (over the cold start) activate one official checkpoint; returns
    the line to show the user, None when it was installed before (nothing to say)."""
    from django.conf import settings

    from registry.active import activate_version, describe_file, register_checkpoint
    from registry.models import ModelVersion, relative_checkpoint

    spec = files[model_type]
    directory = Path(settings.CHECKPOINT_DIR)
    if ModelVersion.objects.filter(
        checkpoint=relative_checkpoint(directory / spec.filename)
    ).exists():
        return None
    base_url = base_url or settings.CHECKPOINT_URL or DEFAULT_BASE_URL
    try:
        path = download_checkpoint(
            model_type, directory, base_url=base_url, files=files, progress=progress
        )
        version = register_checkpoint(path, model_type=model_type, **describe_file(path))
    except HostUnreachableError:
        host = urllib.parse.urlsplit(base_url).netloc or base_url
        return (
            f"offline: {host} could not be reached, so Meta's {model_type} checkpoint was not "
            f"downloaded; {COLD_START_STAYS} (the next make run tries again)"
        )
    except (CheckpointError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        return f"Meta's {model_type} checkpoint was not installed ({reason}); {COLD_START_STAYS}"
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        activate_version(version)
    elif _untrained(active):
        from modeltrain.versions import promote_version

        promote_version(version)  # re-embeds the images waiting under the cold start
    else:
        return (
            f"Meta's {model_type} checkpoint is registered as {version.name}; {active.name} "
            "stays active (promote it from Admin > Model versions)"
        )
    return f"Meta's {model_type} checkpoint installed and active ({version.name}, {path})"


def _untrained(version) -> bool:
    """The cold start (or any version that learnt nothing): replacing it loses nothing."""
    return not version.is_official and version.round == 0 and version.parent_id is None


def run(progress: bool = False) -> str | None:
    """The command's work once Django is set up: the line to print, if any."""
    from django.conf import settings

    if not settings.AUTO_DOWNLOAD or settings.SAM_CHECKPOINT:
        return None
    return install_official_model(progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show the download's progress bar even when stderr is not a terminal",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    import django

    django.setup()
    line = run(progress=args.progress or sys.stderr.isatty())
    if line:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
