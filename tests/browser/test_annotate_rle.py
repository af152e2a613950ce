"""The page's COCO RLE codec (frontend/static/frontend/annotate/rle.js) against the engine's
(engine/rle.py, pycocotools): masks encoded in Python are decoded in the page pixel for pixel,
masks encoded in the page decode in Python to the same pixels, with the very same string."""

from __future__ import annotations

import numpy as np
import pytest

from engine import rle as rle_codec

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MODULE = "/static/frontend/annotate/rle.js"


def masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:37, 0:53]
    blob = (yy - 18) ** 2 / 100 + (xx - 25) ** 2 / 300 < 1
    ring = blob & ~((yy - 18) ** 2 / 30 + (xx - 25) ** 2 / 90 < 1)
    return {
        "speckle": rng.random((41, 67)) < 0.5,  # many short runs, as untrained models make
        "blob": blob,
        "ring": ring,
        "empty": np.zeros((9, 13), bool),
        "full": np.ones((9, 13), bool),
        "corner pixel": np.pad(np.ones((1, 1), bool), ((0, 8), (12, 0))),
        "one row": rng.random((1, 70)) < 0.3,
        "one column": rng.random((70, 1)) < 0.3,
        # Run lengths of several thousand need multi-character values and negative deltas.
        "long runs": np.pad(np.ones((300, 40), bool), ((0, 0), (200, 7))),
    }


@pytest.fixture
def rle_page(live_server, page):
    page.goto(f"{live_server.url}/login/")
    return page


def decode_in_page(page, rle: dict) -> np.ndarray:
    flat = page.evaluate(f"async (rle) => Array.from((await import('{MODULE}')).decode(rle))", rle)
    return np.array(flat, dtype=bool).reshape(rle["size"])


def test_python_encoded_masks_decode_in_the_page_pixel_for_pixel(rle_page, screenshot):
    for name, mask in masks().items():
        rle = rle_codec.encode(mask)

        decoded = decode_in_page(rle_page, rle)

        assert decoded.shape == mask.shape, name
        assert np.array_equal(decoded, mask), name
    screenshot(rle_page)


def test_page_encoded_masks_decode_in_python_to_the_same_pixels(rle_page):
    for name, mask in masks().items():
        h, w = mask.shape
        rle = rle_page.evaluate(
            f"async ([bits, h, w]) => (await import('{MODULE}')).encode(bits, h, w)",
            [mask.astype(int).ravel().tolist(), h, w],
        )

        assert rle["size"] == [h, w], name
        assert np.array_equal(rle_codec.decode(rle), mask), name
        assert rle["counts"] == rle_codec.encode(mask)["counts"], name


def test_cropped_decode_matches_the_masks_bounding_box(rle_page):
    for name, mask in masks().items():
        crop = rle_page.evaluate(
            f"""async (rle) => {{
                const c = (await import('{MODULE}')).decodeCrop(rle);
                return c && {{...c, data: Array.from(c.data)}};
            }}""",
            rle_codec.encode(mask),
        )
        if not mask.any():
            assert crop is None, name
            continue
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert [crop["x0"], crop["y0"], crop["x1"], crop["y1"]] == [x0, y0, x1, y1], name
        data = np.array(crop["data"], dtype=bool).reshape(y1 - y0, x1 - x0)
        assert np.array_equal(data, mask[y0:y1, x0:x1]), name


@pytest.mark.parametrize(
    "counts", ["0" * 3 + "\x7f", "1", "k", "@"], ids=["bad char", "wrong sum", "cut", "negative"]
)
def test_malformed_counts_are_refused_not_drawn(rle_page, counts):
    message = rle_page.evaluate(
        f"""async (counts) => {{
            try {{ (await import('{MODULE}')).decode({{size: [3, 4], counts}}); return null; }}
            catch (error) {{ return error.message; }}
        }}""",
        counts,
    )

    assert message
