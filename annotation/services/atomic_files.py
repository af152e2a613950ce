"""Writing export files under a temporary name and renaming them when complete, so a failed or
killed export never leaves anything under the final name: readers see all or nothing."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from annotation.services.errors import InvalidInput

PARTIAL_SUFFIX = ".partial"


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a hidden sibling folder to write into; on success it is renamed to ``final`` (which
    must not exist or be an empty folder), on any error or interruption it is removed."""
    final = Path(final)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise InvalidInput(f"{final} already exists and is not an empty folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    staging.mkdir()
    try:
        yield staging
        if final.exists():
            final.rmdir()
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def staged_file(final: Path) -> Iterator[Path]:
    """Yield a hidden sibling path to write; on success it replaces ``final``."""
    final = Path(final)
    if final.is_dir():
        raise InvalidInput(f"{final} is a folder; give a file name")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def remove_partials(folder: Path, name: str) -> None:
    """Remove what a killed run left while staging ``folder / name``."""
    if folder.is_dir():
        for leftover in folder.glob(f".{name}.*{PARTIAL_SUFFIX}"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
