"""engine.images: sniffing, limits, corrupt input, EXIF orientation, mode conversion, storage."""

import hashlib
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.images import ImageError, LoadedImage, load_image, sniff_format, storable_bytes

FORMATS = ["JPEG", "PNG", "BMP", "WEBP", "TIFF"]


def encode(image: Image.Image | np.ndarray, fmt: str, **kwargs) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A smooth RGB gradient (compresses well, survives JPEG), uint8 (48, 64, 3)."""
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_is_sniffed_from_content_not_extension(tmp_path, photo, fmt):
    data = encode(photo, fmt)
    path = tmp_path / "upload.gif"  # a misleading extension
    path.write_bytes(data)
    assert sniff_format(data) == fmt
    loaded = load_image(path)
    assert loaded.format == fmt
    assert loaded.array.shape == (48, 64, 3)
    assert loaded.array.dtype == np.uint8 and loaded.array.flags.c_contiguous
    assert (loaded.width, loaded.height) == (64, 48)
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert loaded.transformed is False


def test_lossless_formats_keep_exact_rgb_pixels(photo):
    for fmt in ("PNG", "BMP", "TIFF"):
        np.testing.assert_array_equal(load_image(encode(photo, fmt)).array, photo)


def test_file_object_and_path_give_the_same_image(tmp_path, photo):
    data = encode(photo, "PNG")
    (tmp_path / "a.png").write_bytes(data)
    from_file = load_image(io.BytesIO(data))
    from_path = load_image(str(tmp_path / "a.png"))
    np.testing.assert_array_equal(from_file.array, from_path.array)


def test_sniff_rejects_text_that_starts_like_a_bitmap():
    assert sniff_format(b"BM is not a bitmap, just some text") is None
    assert sniff_format(b"") is None


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_rejects_truncated_file(photo, fmt):
    data = encode(photo, fmt)
    with pytest.raises(ImageError, match=f"truncated or corrupt {fmt}"):
        load_image(data[: len(data) // 2])


def test_rejects_random_bytes_naming_supported_formats():
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ImageError, match="not an image: .*supported: JPEG, PNG, BMP, WebP, TIFF"):
        load_image(noise)


def test_rejects_gif_by_name():
    gif = encode(Image.new("P", (4, 4)), "GIF")
    with pytest.raises(ImageError, match="GIF is not supported"):
        load_image(gif)


def test_rejects_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match="empty file"):
        load_image(b"")


def test_rejects_file_over_max_bytes(tmp_path, photo):
    data = encode(photo, "PNG")
    (tmp_path / "a.png").write_bytes(data)
    for source in (data, tmp_path / "a.png", io.BytesIO(data)):
        with pytest.raises(ImageError, match=f"over the limit of {len(data) - 1} bytes"):
            load_image(source, max_bytes=len(data) - 1)
    assert load_image(data, max_bytes=len(data)).width == 64


def test_rejects_decompression_bomb_from_header_without_decoding(recwarn):
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + png_chunk(b"IEND", b"")
    )
    start = time.perf_counter()
    with pytest.raises(ImageError, match="100000x100000 .* over the limit of 64000000 pixels"):
        load_image(bomb)
    assert time.perf_counter() - start < 0.5
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_is_the_limit_that_applies(photo):
    data = encode(photo, "PNG")
    with pytest.raises(ImageError, match="48 = 3072 pixels, over the limit of 3071"):
        load_image(data, max_pixels=3071)
    assert load_image(data, max_pixels=3072).height == 48


def test_image_above_pillows_warning_limit_loads_without_warning(monkeypatch, recwarn, photo):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # photo is 3072 px: Pillow would warn
    loaded = load_image(encode(photo, "TIFF"))
    assert loaded.array.shape == (48, 64, 3)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillows_hard_limit_surfaces_as_image_error(monkeypatch, photo):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses TIFFs over 2x this
    with pytest.raises(ImageError, match="64x48 = 3072 pixels, over Pillow's own"):
        load_image(encode(photo, "TIFF"))


def test_rejects_zero_width_png():
    data = bytearray(encode(Image.new("RGB", (3, 2)), "PNG"))
    data[16:20] = b"\0\0\0\0"  # IHDR width
    with pytest.raises(ImageError, match=r"zero width or height \(0x2\)"):
        load_image(bytes(data))


def test_exif_orientation_6_rotates_clockwise():
    pixels = np.zeros((20, 30, 3), np.uint8)
    pixels[:4, :4] = 255  # a white block in the top-left corner
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loaded = load_image(encode(image, "PNG", exif=exif))
    assert loaded.array.shape == (30, 20, 3)
    assert loaded.transformed is True
    # after a clockwise turn the top-left corner is at the top-right
    assert loaded.array[:4, -4:].min() == 255 and loaded.array[-4:, :4].max() == 0


@pytest.mark.parametrize(
    ("mode", "fmt", "save_kwargs"),
    [
        ("L", "PNG", {}),
        ("P", "PNG", {}),
        ("P", "PNG", {"transparency": 0}),
        ("1", "PNG", {}),
        ("RGBA", "PNG", {}),
        ("LA", "PNG", {}),
        ("CMYK", "JPEG", {}),
        ("CMYK", "TIFF", {}),
        ("I", "TIFF", {}),
        ("F", "TIFF", {}),
        ("RGB", "WEBP", {"lossless": True}),
    ],
)
def test_every_mode_becomes_rgb_uint8(mode, fmt, save_kwargs):
    grey = Image.fromarray(np.arange(200, dtype=np.uint8).reshape(10, 20))
    loaded = load_image(encode(grey.convert(mode), fmt, **save_kwargs))
    assert loaded.array.shape == (10, 20, 3) and loaded.array.dtype == np.uint8
    assert loaded.array.flags.c_contiguous


def test_transparent_palette_entry_becomes_white():
    values = np.array([[0, 1, 2]], np.uint8)
    image = Image.fromarray(values).convert("P")
    loaded = load_image(encode(image, "PNG", transparency=0))
    assert loaded.array[0, :, 0].tolist() == [255, 1, 2]
    assert loaded.transformed is True


def test_float_tiff_maps_zero_to_one_onto_full_range():
    values = np.array([[0.0, 0.5, 1.0]], np.float32)
    loaded = load_image(encode(Image.fromarray(values), "TIFF"))
    assert loaded.array[0, :, 0].tolist() == [0, 128, 255]
    assert loaded.transformed is True


def test_greyscale_and_palette_keep_their_values():
    values = np.arange(200, dtype=np.uint8).reshape(10, 20)
    for mode in ("L", "P"):
        loaded = load_image(encode(Image.fromarray(values).convert(mode), "PNG"))
        np.testing.assert_array_equal(loaded.array, np.repeat(values[:, :, None], 3, axis=2))
        assert loaded.transformed is False


def test_bilevel_is_black_and_white():
    bits = np.zeros((3, 5), bool)
    bits[1] = True
    loaded = load_image(encode(Image.fromarray(bits), "PNG"))
    np.testing.assert_array_equal(loaded.array[:, :, 1], bits.astype(np.uint8) * 255)


def test_sixteen_bit_png_scales_the_full_range():
    values = np.array([[0, 256, 32768, 65535]], np.uint16)
    loaded = load_image(encode(Image.fromarray(values), "PNG"))
    assert loaded.array.shape == (1, 4, 3)
    assert loaded.array[0, :, 0].tolist() == [0, 1, 128, 255]
    assert loaded.transformed is False


def test_alpha_is_composited_over_white():
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, :, 3] = [255, 0, 128]
    loaded = load_image(encode(rgba, "PNG"))
    assert loaded.array[0].tolist() == [[200, 0, 0], [255, 255, 255], [227, 127, 127]]
    assert loaded.transformed is True


def test_opaque_rgba_is_not_transformed():
    rgba = np.full((2, 2, 4), 255, np.uint8)
    assert load_image(encode(rgba, "PNG")).transformed is False


def test_one_pixel_image_is_valid():
    loaded = load_image(encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG"))
    assert loaded.array.tolist() == [[[1, 2, 3]]]


def test_short_side_downscales_keeping_aspect_ratio(photo):
    tall = np.ascontiguousarray(np.concatenate([photo, photo, photo], axis=0))  # (144, 64)
    loaded = load_image(encode(tall, "PNG"), short_side=32)
    assert loaded.array.shape == (72, 32, 3) and (loaded.width, loaded.height) == (32, 72)
    assert loaded.transformed is True
    untouched = load_image(encode(tall, "PNG"), short_side=64)
    assert untouched.array.shape == (144, 64, 3) and untouched.transformed is False


def test_storable_bytes_keeps_an_untouched_jpeg(photo):
    data = encode(photo, "JPEG")
    assert storable_bytes(load_image(data), data) == (data, ".jpg")


def test_storable_bytes_reencodes_tiff_and_transformed_images_as_png(photo):
    for data, kwargs in ((encode(photo, "TIFF"), {}), (encode(photo, "JPEG"), {"short_side": 24})):
        loaded = load_image(data, **kwargs)
        stored, ext = storable_bytes(loaded, data)
        assert ext == ".png" and sniff_format(stored) == "PNG"
        np.testing.assert_array_equal(load_image(stored).array, loaded.array)


def test_storable_bytes_refuses_bytes_of_another_file(photo):
    loaded = load_image(encode(photo, "PNG"))
    with pytest.raises(ImageError, match="sha256"):
        storable_bytes(loaded, encode(photo, "BMP"))


def test_loaded_image_is_frozen(photo):
    loaded = load_image(encode(photo, "PNG"))
    assert isinstance(loaded, LoadedImage)
    with pytest.raises(AttributeError):
        loaded.width = 3  # type: ignore[misc]
