"""Reading an evaluation set from two folders (no Django): images, and PNG masks paired with them
by file name stem (``images/cat.jpg`` with ``masks/cat.png``).

Mask values: 0 background, 128 ignored (the unlabelled boundary band of GrabCut's masks), any
other value one object. A mask of 0/128/255 is the usual single object; a PNG whose objects
carry distinct values (1, 2, ... or a palette) holds several, each evaluated on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from engine.images import load_image, sniff_format
from modeltrain.evaluation import EvalImage, GroundTruth

IGNORE_VALUE = 128


@dataclass
class EvalFolder:
    images: list[EvalImage]
    warnings: list[str] = field(default_factory=list)


def _image_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        with path.open("rb") as fh:
            if sniff_format(fh.read(64)) is None:
                continue
        files.setdefault(path.stem, path)
    return files


def read_mask_objects(path: Path, size: tuple[int, int]) -> list[GroundTruth]:
    """The objects of one mask PNG; ``size`` is the image's (height, width). Raises ValueError
    for a file that is not a single-channel image of that size."""
    with PILImage.open(path) as im:
        if im.mode not in ("L", "P", "1", "I", "I;16"):
            raise ValueError(f"{path.name}: mask mode {im.mode}, expected a single-channel PNG")
        values = np.asarray(im)
    if values.shape != size:
        raise ValueError(
            f"{path.name}: mask is {values.shape[1]}x{values.shape[0]}, its image is "
            f"{size[1]}x{size[0]}"
        )
    ignore = values == IGNORE_VALUE
    labels = [v for v in np.unique(values) if v not in (0, IGNORE_VALUE)]
    return [GroundTruth(mask=values == v, ignore=ignore if ignore.any() else None) for v in labels]


def read_folder(images: str | Path, masks: str | Path, limit: int | None = None) -> EvalFolder:
    """Pair images and masks by stem. Images without a mask and masks without an image are
    reported in ``warnings`` and left out. Raises ValueError for a missing folder, no pair at
    all, or an unreadable mask (its name in the message)."""
    images, masks = Path(images), Path(masks)
    for folder, what in ((images, "images"), (masks, "masks")):
        if not folder.is_dir():
            raise ValueError(f"{what} folder {folder} does not exist")
    pictures = _image_files(images)
    mask_files = {p.stem: p for p in sorted(masks.glob("*.png")) if p.is_file()}
    result = EvalFolder(images=[])
    for stem in sorted(set(pictures) - set(mask_files)):
        result.warnings.append(f"image {pictures[stem].name} has no mask {stem}.png: left out")
    for stem in sorted(set(mask_files) - set(pictures)):
        result.warnings.append(f"mask {mask_files[stem].name} has no image: left out")
    for stem in sorted(set(pictures) & set(mask_files)):
        if limit is not None and len(result.images) >= limit:
            break
        loaded = load_image(pictures[stem])
        objects = read_mask_objects(mask_files[stem], (loaded.height, loaded.width))
        if not objects:
            result.warnings.append(f"mask {mask_files[stem].name} has no object: left out")
            continue
        result.images.append(
            EvalImage(name=stem, objects=objects, load=partial(_pixels, pictures[stem]))
        )
    if not result.images:
        raise ValueError(f"no image in {images} has a mask in {masks} (paired by file name)")
    return result


def _pixels(path: Path) -> np.ndarray:
    return load_image(path).array
