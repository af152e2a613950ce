import numpy as np
import pytest

from engine import rle as rle_codec


@pytest.fixture(autouse=True)
def _isolated(request):
    """Files under tmp_path, Celery inline (see tests/conftest.py), for database tests."""
    if "django_db" in request.keywords:
        request.getfixturevalue("isolated_storage")


def rect(x0: int, y0: int, x1: int, y1: int, size: tuple[int, int] = (48, 64)) -> dict:
    """RLE of the rectangle [x0, x1) x [y0, y1) on an image of ``size`` (h, w)."""
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return rle_codec.encode(mask)
