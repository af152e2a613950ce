"""Progress bars of the management commands' long work (imports, exports, mask checks).

A bar goes to stderr, so stdout keeps only the report a script may read; by default it is
shown only when stderr is a terminal (``--progress`` forces it, ``--no-progress`` hides it),
and it is removed when the work ends, leaving the report alone on the screen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )


def wanted(options: dict[str, Any]) -> bool:
    chosen = options.get("progress")
    return sys.stderr.isatty() if chosen is None else bool(chosen)


class ProgressBar:
    """A tqdm bar fed either by a service's ``progress(done, total)`` callback or by wrapping
    the stream of items it works through (``iterate``). A context manager: closed on exit."""

    def __init__(self, options: dict[str, Any], desc: str, unit: str) -> None:
        self.bar = tqdm(
            desc=desc,
            unit=unit,
            total=None,
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            disable=not wanted(options),
        )

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.refresh()  # the last count, which tqdm's rate limit may not have drawn yet
        self.bar.close()

    def __call__(self, done: int, total: int | None) -> None:
        """The ``progress(done, total)`` callback of the export and check services."""
        if total is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """``items`` unchanged, each one counted as it is taken."""
        for item in items:
            yield item
            self.bar.update(1)
