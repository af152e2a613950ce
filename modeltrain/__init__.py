"""Retraining: model versions now; the training loop and evaluation arrive with issue 6."""
