"""A minimal stand-in for the few torchvision functions Meta's segment-anything package imports.

torchvision has no CPU build for our torch; the reference package is only a test oracle, so the
tests put this folder on sys.path before importing it (see tests/reference.py)."""
