"""Decoding uploaded images into the one pixel format the engine takes: uint8 (H, W, 3) RGB.

The format is decided from the file's content (magic bytes), never its name. Limits are checked
before pixels are decoded, so a small file claiming a huge size (a decompression bomb) costs
nothing. Every failure is an ``ImageError`` (a ``ValueError``) whose message says what was wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import (
    BmpImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

SUPPORTED = "JPEG, PNG, BMP, WebP, TIFF"

# Header parsers per sniffed format. Calling them directly (rather than Image.open) reads the
# header without Pillow's own decompression-bomb check, so our limit, with its clearer message,
# is the one that applies.
_OPENERS: dict[str, Callable[[BinaryIO], Image.Image]] = {
    "JPEG": JpegImagePlugin.jpeg_factory,
    "PNG": PngImagePlugin.PngImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}
# Formats a browser displays as they are; anything else is stored re-encoded as PNG.
_BROWSER_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
# BMP info-header sizes (BITMAPCOREHEADER .. BITMAPV5HEADER), to tell a BMP from text starting "BM".
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
# Modes whose RGB conversion shows the same pixels a browser shows for the original file.
_DISPLAY_SAME_MODES = {"RGB", "L", "P", "1", "I;16", "I;16L", "I;16B", "I;16N"}


class ImageError(ValueError):
    """The input is not an image the engine can use; the message says why."""


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    Attributes:
        array: uint8 (H, W, 3), RGB, C-contiguous; rows top to bottom after EXIF orientation.
        format: the file's format from its content: "JPEG", "PNG", "BMP", "WEBP" or "TIFF".
        width: W in pixels (of ``array``, i.e. after orientation and any downscale).
        height: H in pixels.
        sha256: hex digest of the original file bytes (not of the pixels).
        transformed: True when ``array`` differs from what a browser shows for the original
            file: EXIF orientation applied, alpha composited over white where some pixel is not
            opaque, CMYK or float/32-bit data converted, or the image downscaled.
    """

    array: np.ndarray
    format: str
    width: int
    height: int
    sha256: str
    transformed: bool


def sniff_format(data: bytes) -> str | None:
    """The image format named by ``data``'s magic bytes: "JPEG", "PNG", "BMP", "WEBP", "TIFF",
    or None for anything else (including GIF and formats not listed)."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"BM") and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
            return "BMP"
    return None


def _describe_unknown(data: bytes) -> str:
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF is not supported"
    if data[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "HEIF/AVIF is not supported"
    return f"unrecognised content starting {data[:8]!r}"


def _read_source(source: bytes | str | os.PathLike | BinaryIO, max_bytes: int | None) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        try:
            size = os.path.getsize(source)
            if max_bytes is not None and size > max_bytes:
                raise ImageError(f"file is {size} bytes, over the limit of {max_bytes} bytes")
            with open(source, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise ImageError(f"cannot read {os.fspath(source)!r}: {exc.strerror}") from exc
    if hasattr(source, "read"):
        # Read one byte past the limit so an oversized stream is caught without reading it all.
        data = source.read() if max_bytes is None else source.read(max_bytes + 1)
        if not isinstance(data, bytes | bytearray):
            raise ImageError("the file object must be opened in binary mode")
        return bytes(data)
    raise TypeError(f"expected bytes, a path or a binary file object, got {type(source).__name__}")


def _to_rgb(im: Image.Image) -> tuple[np.ndarray, bool]:
    """Pixels as uint8 (H, W, 3) RGB, and whether they differ from what a browser shows."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _scale_to_uint8(np.asarray(im), mode), mode not in _DISPLAY_SAME_MODES
    if mode in ("PA", "LA", "La", "RGBA", "RGBa") or "transparency" in im.info:
        return _composite_over_white(np.asarray(im.convert("RGBA")))
    if mode == "CMYK":
        # Browsers apply the embedded ICC profile; Pillow's conversion is the naive formula.
        return np.asarray(im.convert("RGB")), True
    try:
        rgb = im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(f"unsupported pixel mode {mode!r}") from exc
    return np.asarray(rgb), mode not in _DISPLAY_SAME_MODES


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """One channel of 16-bit, 32-bit int or float values to uint8 (H, W, 3) grey.

    16-bit data maps 0..65535 linearly to 0..255 (as browsers show 16-bit PNGs), not clipped.
    32-bit ints in 0..65535 are treated as 16-bit; floats in 0..1 map to 0..255; any other range
    is stretched from its own minimum..maximum (a constant image becomes 0). NaN becomes 0.
    """
    v = values.astype(np.float32 if mode.startswith("I;16") else np.float64)
    v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = v * (255.0 / 65535.0)
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = v * 255.0
    elif hi > lo:
        scaled = (v - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(v)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _composite_over_white(rgba: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGBA uint8 (H, W, 4) composited over an opaque white background (255, 255, 255).

    Transparent pixels carry no colour of their own, and the model needs one: white is what a
    transparent image shows on a plain page. Returns (RGB array, whether any pixel had alpha
    below 255); fully opaque images come back unchanged and count as untransformed.
    """
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    if alpha.size == 0 or bool((alpha == 255).all()):
        return rgba[:, :, :3], False
    rgb = rgba[:, :, :3].astype(np.uint32)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8), True


def _downscale(array: np.ndarray, short_side: int) -> np.ndarray:
    h, w = array.shape[:2]
    scale = short_side / min(h, w)
    size = (
        (max(1, round(w * scale)), short_side) if h <= w else (short_side, max(1, round(h * scale)))
    )
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


def load_image(
    source: bytes | str | os.PathLike | BinaryIO,
    *,
    max_pixels: int = 64_000_000,
    max_bytes: int | None = None,
    short_side: int | None = None,
) -> LoadedImage:
    """Decode an uploaded image into RGB pixels.

    Args:
        source: the file's bytes, a path, or a binary file object (read from its position).
        max_pixels: largest width * height accepted, checked from the header before decoding.
        max_bytes: largest file size accepted, or None for no limit.
        short_side: if given and the shorter side is longer, downscale (Lanczos, aspect ratio
            kept) so the shorter side is exactly ``short_side`` (SA-1B's release uses 1500).
    Returns:
        LoadedImage with uint8 (H, W, 3) RGB pixels. EXIF orientation is applied, alpha is
        composited over white, greyscale / palette / bilevel / CMYK / 16-bit become RGB.
    Raises:
        ImageError: in this order: empty file, over ``max_bytes``, not a supported format,
            width * height over ``max_pixels``, zero width or height, truncated or corrupt data.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if short_side is not None and short_side < 1:
        raise ValueError(f"short_side must be >= 1, got {short_side}")
    data = _read_source(source, max_bytes)
    if not data:
        raise ImageError("empty file")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageError(f"file is over the limit of {max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(f"not an image: {_describe_unknown(data)}, supported: {SUPPORTED}")

    array, transformed = _decode(data, fmt, max_pixels)
    if short_side is not None and min(array.shape[:2]) > short_side:
        array, transformed = _downscale(array, short_side), True
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return LoadedImage(
        array=array,
        format=fmt,
        width=int(array.shape[1]),
        height=int(array.shape[0]),
        sha256=hashlib.sha256(data).hexdigest(),
        transformed=transformed,
    )


def _declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) read straight from a PNG, BMP or JPEG header, or None. Only used to name a
    zero-sized image, which Pillow's parsers reject with a vaguer message."""
    if fmt == "PNG" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "BMP" and len(data) >= 26 and int.from_bytes(data[14:18], "little") >= 40:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    i = 2
    while fmt == "JPEG" and i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _decode(data: bytes, fmt: str, max_pixels: int) -> tuple[np.ndarray, bool]:
    declared = _declared_size(data, fmt)
    if declared is not None and 0 in declared:
        raise ImageError(f"image has zero width or height ({declared[0]}x{declared[1]})")
    try:
        im = _OPENERS[fmt](io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large (decompression bomb?): {exc}") from exc
    except Exception as exc:  # Pillow's header parsers raise many kinds on corrupt input
        raise ImageError(f"truncated or corrupt {fmt}: {exc}") from exc
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise ImageError(
                f"image is {width}x{height} = {width * height} pixels, over the limit of "
                f"{max_pixels} pixels (decompression bomb?)"
            )
        if width == 0 or height == 0:
            raise ImageError(f"image has zero width or height ({width}x{height})")
        quiet: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
            # Our limit allows more than Pillow's: its warning would only repeat a check we made.
            # Entered only then, because catch_warnings swaps process-wide state.
            quiet = warnings.catch_warnings(
                action="ignore", category=Image.DecompressionBombWarning
            )
        try:
            with quiet:
                im.load()  # full decode: truncation surfaces here, not on first pixel access
                rotated = im.getexif().get(0x0112, 1) in (2, 3, 4, 5, 6, 7, 8)
                oriented = ImageOps.exif_transpose(im) if rotated else im
        except Image.DecompressionBombError as exc:
            raise ImageError(
                f"image is {width}x{height} = {width * height} pixels, over Pillow's own "
                f"decompression-bomb limit of {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels "
                f"for {fmt} (PIL.Image.MAX_IMAGE_PIXELS is {Image.MAX_IMAGE_PIXELS})"
            ) from exc
        except Exception as exc:  # truncation shows up as OSError, SyntaxError, struct.error...
            raise ImageError(f"truncated or corrupt {fmt}: {exc}") from exc
        array, converted = _to_rgb(oriented)
    return array, converted or rotated


def storable_bytes(loaded: LoadedImage, original: bytes) -> tuple[bytes, str]:
    """The bytes to keep for an image and their file extension.

    Returns ``(original, ".jpg" | ".png" | ".webp" | ".bmp")`` when the pixels are exactly what a
    browser shows for the original (not ``transformed``, format JPEG/PNG/WEBP/BMP); otherwise
    a PNG encoding of ``loaded.array`` and ".png" (TIFF always ends up here).
    Raises:
        ImageError: ``original`` is not the file ``loaded`` was decoded from (sha256 differs).
    """
    if hashlib.sha256(original).hexdigest() != loaded.sha256:
        raise ImageError("original bytes do not match the loaded image (sha256 differs)")
    ext = _BROWSER_EXT.get(loaded.format)
    if ext is not None and not loaded.transformed:
        return bytes(original), ext
    buf = io.BytesIO()
    Image.fromarray(loaded.array).save(buf, format="PNG")
    return buf.getvalue(), ".png"
