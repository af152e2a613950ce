import pytest


@pytest.fixture(autouse=True)
def _isolated(isolated_storage):
    """Files under tmp_path, Celery inline (see tests/conftest.py)."""
