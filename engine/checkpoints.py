"""Fetch and check Meta's official Segment Anything checkpoints.

    python -m engine.checkpoints list
    python -m engine.checkpoints download vit_b [--dir DIR] [--base-url URL] [--force]
    python -m engine.checkpoints verify PATH

Downloads stream to ``<name>.part``, are checked for size and md5, and only then renamed to
``<name>``, so a file under its final name is always a complete, verified checkpoint. The
engine also runs with no checkpoint at all (a cold start); this command is optional.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tqdm import tqdm

from engine.registry import CheckpointError

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CheckpointFile:
    """One released checkpoint: its model type, file name, md5 (hex) and size in bytes."""

    model_type: str
    filename: str
    md5: str
    size: int


# The md5 is what each file name's hex suffix abbreviates (sam_vit_b_01ec64 -> md5 01ec64...).
_TABLE = (
    CheckpointFile("vit_h", "sam_vit_h_4b8939.pth", "4b8939a88964f0f4ff5f5b2642c598a6", 2564550879),
    CheckpointFile("vit_l", "sam_vit_l_0b3195.pth", "0b3195507c641ddb6910d2bb5adee89c", 1249524607),
    CheckpointFile("vit_b", "sam_vit_b_01ec64.pth", "01ec64d29a2fca3f0661936605ae66f8", 375042383),
)
OFFICIAL_FILES: Mapping[str, CheckpointFile] = MappingProxyType({f.model_type: f for f in _TABLE})


class HostUnreachableError(CheckpointError):
    """The download host could not be reached (offline, DNS, refused, timed out)."""


def default_dir() -> Path:
    """$SADE_CHECKPOINT_DIR, else ./var/checkpoints (relative to the working directory)."""
    return Path(os.environ.get("SADE_CHECKPOINT_DIR") or "var/checkpoints")


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, spec: CheckpointFile) -> None:
    """Raise CheckpointError unless ``path`` has the size and md5 of ``spec``."""
    size = os.path.getsize(path)
    if size != spec.size:
        raise CheckpointError(f"{path}: {size} bytes, expected {spec.size} for {spec.filename}")
    md5 = file_md5(path)
    if md5 != spec.md5:
        raise CheckpointError(f"{path}: md5 {md5}, expected {spec.md5} for {spec.filename}")


def _unreachable(url: str, dest: Path, reason: object) -> HostUnreachableError:
    host = urllib.parse.urlsplit(url).netloc or url
    return HostUnreachableError(
        f"{host} could not be reached ({reason}).\n"
        "SA Data Engine runs without a checkpoint (cold start), so this step is optional.\n"
        "To use the official weights, copy the file in by hand: download\n"
        f"  {url}\n"
        "on a machine that can reach it and put it at\n"
        f"  {dest}\n"
        f"then check it with: python -m engine.checkpoints verify {dest}"
    )


def download_checkpoint(
    model_type: str,
    dest_dir: str | os.PathLike,
    base_url: str = DEFAULT_BASE_URL,
    force: bool = False,
    files: Mapping[str, CheckpointFile] = OFFICIAL_FILES,
    progress: bool = True,
) -> Path:
    """Download one checkpoint into ``dest_dir`` and return its verified path.

    A file already there that verifies is kept (no download) unless ``force``.
    Raises:
        CheckpointError: unknown model type, HTTP error, or size/md5 mismatch (nothing is
            left behind: neither the final file nor the ``.part`` file).
        HostUnreachableError: the host could not be reached; the message says how to copy the
            file in by hand.
    """
    spec = files.get(model_type)
    if spec is None:
        raise CheckpointError(
            f"unknown model type {model_type!r}; choose one of {', '.join(files)}"
        )
    dest = Path(dest_dir).absolute() / spec.filename
    if dest.is_file() and not force:
        try:
            verify_file(dest, spec)
            return dest
        except CheckpointError:
            pass  # a damaged or foreign file under the final name: download over it
    url = base_url.rstrip("/") + "/" + spec.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(spec.filename + ".part")
    try:
        _fetch(url, part, dest, spec, progress)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, dest: Path, spec: CheckpointFile, progress: bool) -> None:
    """Stream ``url`` into ``part``, checking the announced size, the received size and md5."""
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:  # before URLError: HTTPError is a subclass
        raise CheckpointError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, OSError) as exc:  # DNS, refused, reset, timed out
        raise _unreachable(url, dest, getattr(exc, "reason", exc)) from exc
    except http.client.HTTPException as exc:
        raise CheckpointError(f"bad HTTP response from {url}: {exc!r}") from exc
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with response, open(part, "wb") as out:
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) != spec.size:
            raise CheckpointError(
                f"{url} is {announced} bytes, expected {spec.size} for {spec.filename}"
            )
        bar = tqdm(
            total=spec.size, unit="B", unit_scale=True, desc=spec.filename, disable=not progress
        )
        with bar:
            while received <= spec.size:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise CheckpointError(
                        f"download of {url} broke off after {received} bytes: {exc!r}"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if received != spec.size:
        raise CheckpointError(
            f"download of {url} ended after {received} bytes, expected {spec.size}"
        )
    if digest.hexdigest() != spec.md5:
        raise CheckpointError(
            f"checksum mismatch for {url}: md5 {digest.hexdigest()}, expected {spec.md5}"
        )


def _find_spec(path: Path, files: Mapping[str, CheckpointFile]) -> CheckpointFile | None:
    by_name = [f for f in files.values() if f.filename == path.name]
    if by_name:
        return by_name[0]
    size = path.stat().st_size
    return next((f for f in files.values() if f.size == size), None)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 when the host is unreachable)."""
    parser = argparse.ArgumentParser(
        prog="python -m engine.checkpoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the official checkpoints")
    dl = sub.add_parser("download", help="download and verify one checkpoint")
    dl.add_argument("model_type", choices=sorted(OFFICIAL_FILES))
    dl.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="destination (default: $SADE_CHECKPOINT_DIR or ./var/checkpoints)",
    )
    dl.add_argument("--base-url", default=DEFAULT_BASE_URL)
    dl.add_argument("--force", action="store_true", help="download even if already present")
    vf = sub.add_parser("verify", help="check a checkpoint file's size and md5")
    vf.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    if args.command == "list":
        for f in OFFICIAL_FILES.values():
            print(f"{f.model_type:6} {f.filename:22} {f.size / 1e9:5.2f} GB  md5 {f.md5}")
        print(f"from {DEFAULT_BASE_URL}")
        return 0
    if args.command == "verify":
        return _verify_command(args.path)
    try:
        path = download_checkpoint(
            args.model_type, args.dir or default_dir(), base_url=args.base_url, force=args.force
        )
    except HostUnreachableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"checkpoint ready: {path}")
    print(f"SAM_MODEL_TYPE={args.model_type} SAM_CHECKPOINT={path}")
    return 0


def _verify_command(path: Path) -> int:
    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return 1
    spec = _find_spec(path, OFFICIAL_FILES)
    if spec is None:
        print(
            f"error: {path} is not an official checkpoint (unknown name and size)", file=sys.stderr
        )
        return 1
    try:
        verify_file(path, spec)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {path} is {spec.filename} ({spec.model_type})")
    print(f"SAM_MODEL_TYPE={spec.model_type} SAM_CHECKPOINT={path.absolute()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
