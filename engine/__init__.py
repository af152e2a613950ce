"""SA Data Engine's model package: our own SAM in PyTorch (checkpoint-compatible with Meta's
releases), the predictor (embed once, decode many), the automatic mask generator and the
embedding cache. No Django here.

The paper's model is ``engine.sam.Sam`` and its plain modules (image_encoder, prompt_encoder,
transformer, mask_decoder), which training runs; ``engine.fast`` computes the same function
for inference with less work, from the same parameters."""

from engine.automatic import AutomaticConfig, AutomaticMask, AutomaticMaskGenerator
from engine.embedding import Embedding
from engine.predictor import BatchPrediction, Prediction, SamPredictor
from engine.registry import MODEL_TYPES, CheckpointError, build_sam, encoder_key, save_checkpoint

__all__ = [
    "MODEL_TYPES",
    "AutomaticConfig",
    "AutomaticMask",
    "AutomaticMaskGenerator",
    "BatchPrediction",
    "CheckpointError",
    "Embedding",
    "Prediction",
    "SamPredictor",
    "build_sam",
    "encoder_key",
    "save_checkpoint",
]
