"""Fetch and check Meta's official Segment Anything checkpoints.

    python -m engine.checkpoints list
    python -m engine.checkpoints download vit_b [--dir DIR] [--base-url URL] [--force]
    python -m engine.checkpoints verify PATH

Downloads stream to ``<name>.part``, are checked for size, md5 and sha256, and only then renamed
to ``<name>``, so a file under its final name is always a complete, verified checkpoint. A
download that breaks off (network, Ctrl-C) keeps its ``.part`` file and the next one resumes
from there (an HTTP range request; a server that ignores it sends the whole file again); one
whose content fails its checksum is removed. The engine also runs with no checkpoint at all (a
cold start); this command is optional.
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
    """One released checkpoint: its model type, file name, md5 and sha256 (hex), size in bytes."""

    model_type: str
    filename: str
    md5: str
    sha256: str
    size: int


# The md5 is what each file name's hex suffix abbreviates (sam_vit_b_01ec64 -> md5 01ec64...);
# the sha256 is the one published beside the same files by the projects that mirror them.
_TABLE = (
    CheckpointFile(
        "vit_h",
        "sam_vit_h_4b8939.pth",
        "4b8939a88964f0f4ff5f5b2642c598a6",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        2564550879,
    ),
    CheckpointFile(
        "vit_l",
        "sam_vit_l_0b3195.pth",
        "0b3195507c641ddb6910d2bb5adee89c",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        1249524607,
    ),
    CheckpointFile(
        "vit_b",
        "sam_vit_b_01ec64.pth",
        "01ec64d29a2fca3f0661936605ae66f8",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        375042383,
    ),
)
OFFICIAL_FILES: Mapping[str, CheckpointFile] = MappingProxyType({f.model_type: f for f in _TABLE})


class HostUnreachableError(CheckpointError):
    """The download host could not be reached (offline, DNS, refused, timed out)."""


def default_dir() -> Path:
    """$SADE_CHECKPOINT_DIR, else ./var/checkpoints (relative to the working directory)."""
    return Path(os.environ.get("SADE_CHECKPOINT_DIR") or "var/checkpoints")


class _Digests:
    """md5 and sha256 of a byte stream, fed in pieces."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)

    def update_from(self, path: Path) -> None:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                self.update(chunk)

    def mismatch(self, spec: CheckpointFile) -> str | None:
        """What differs from ``spec`` (None: both match)."""
        for name, digest in (("md5", self.md5), ("sha256", self.sha256)):
            got, want = digest.hexdigest(), getattr(spec, name)
            if got != want:
                return f"{name} {got}, expected {want}"
        return None


def verify_file(path: str | os.PathLike, spec: CheckpointFile) -> None:
    """Raise CheckpointError unless ``path`` has the size, md5 and sha256 of ``spec``."""
    size = os.path.getsize(path)
    if size != spec.size:
        raise CheckpointError(f"{path}: {size} bytes, expected {spec.size} for {spec.filename}")
    digests = _Digests()
    digests.update_from(Path(path))
    mismatch = digests.mismatch(spec)
    if mismatch is not None:
        raise CheckpointError(f"{path}: {mismatch} for {spec.filename}")


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

    A file already there that verifies is kept (no download) unless ``force``. A ``.part``
    file left by a download that broke off is resumed (``force`` starts over).
    Raises:
        CheckpointError: unknown model type, HTTP error, a download that broke off (its
            ``.part`` file is kept for the next try), or content that fails the size or
            checksum check (removed: neither the final file nor the ``.part`` file is left).
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
    if force or (part.is_file() and part.stat().st_size > spec.size):
        part.unlink(missing_ok=True)
    try:
        _fetch(url, part, dest, spec, progress)
    except _BadContent:
        part.unlink(missing_ok=True)
        raise
    finally:
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
    os.replace(part, dest)
    return dest


class _BadContent(CheckpointError):
    """What was received is not the file (wrong size or checksum): not worth resuming."""


def _open(url: str, dest: Path, offset: int) -> http.client.HTTPResponse:
    """The response for ``url`` from byte ``offset`` on (a range request when it is not 0)."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S
        )
    except urllib.error.HTTPError as exc:  # before URLError: HTTPError is a subclass
        raise CheckpointError(f"HTTP {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, OSError) as exc:  # DNS, refused, reset, timed out
        raise _unreachable(url, dest, getattr(exc, "reason", exc)) from exc
    except http.client.HTTPException as exc:
        raise CheckpointError(f"bad HTTP response from {url}: {exc!r}") from exc


def _resumed_from(response: http.client.HTTPResponse, offset: int, spec: CheckpointFile) -> int:
    """Where the response's bytes start: ``offset`` when the server honoured the range, 0 when
    it sends the whole file. Checks the size the server announces."""
    url = response.geturl()
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        expected = f"bytes {offset}-{spec.size - 1}/{spec.size}"
        if content_range != expected:
            raise _BadContent(f"{url} answered range {content_range!r}, expected {expected!r}")
        return offset
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.isdigit() and int(announced) != spec.size:
        raise _BadContent(f"{url} is {announced} bytes, expected {spec.size} for {spec.filename}")
    return 0


def _fetch(url: str, part: Path, dest: Path, spec: CheckpointFile, progress: bool) -> None:
    """Stream ``url`` into ``part`` (appending to what it holds when the server resumes),
    checking the announced size, the received size, md5 and sha256."""
    offset = part.stat().st_size if part.is_file() else 0
    if offset == spec.size:  # complete, but not checked and renamed (e.g. killed just then)
        received, digests = offset, _Digests()
        digests.update_from(part)
    else:
        response = _open(url, dest, offset)
        with response:
            start = _resumed_from(response, offset, spec)
            received, digests = _receive(response, part, start, spec, progress)
    if received != spec.size:
        raise CheckpointError(
            f"download of {url} ended after {received} bytes, expected {spec.size} "
            f"(the next try resumes from {part.name})"
        )
    mismatch = digests.mismatch(spec)
    if mismatch is not None:
        raise _BadContent(f"checksum mismatch for {url}: {mismatch}")


def _receive(
    response: http.client.HTTPResponse, part: Path, start: int, spec: CheckpointFile, progress: bool
) -> tuple[int, _Digests]:
    """Write the response's bytes into ``part`` from byte ``start`` on; returns the file's size
    and the digests of all of it."""
    digests = _Digests()
    if start:
        digests.update_from(part)
    received = start
    url = response.geturl()
    with open(part, "r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        bar = tqdm(
            total=spec.size,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=spec.filename,
            disable=not progress,
        )
        with bar:
            while received <= spec.size:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise CheckpointError(
                        f"download of {url} broke off after {received} bytes: {exc!r} "
                        f"(the next try resumes from {part.name})"
                    ) from exc
                if not chunk:
                    break
                out.write(chunk)
                digests.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if received > spec.size:
        raise _BadContent(f"{url} sent more than {spec.size} bytes")
    return received, digests


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
    dl.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )
    vf = sub.add_parser("verify", help="check a checkpoint file's size and md5")
    vf.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    if args.command == "list":
        for f in OFFICIAL_FILES.values():
            print(f"{f.model_type:6} {f.filename:22} {f.size / 1e9:5.2f} GB  sha256 {f.sha256}")
        print(f"from {DEFAULT_BASE_URL}")
        return 0
    if args.command == "verify":
        return _verify_command(args.path)
    try:
        path = download_checkpoint(
            args.model_type,
            args.dir or default_dir(),
            base_url=args.base_url,
            force=args.force,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
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
