"""The inference fast path: the plain model's function (engine.image_encoder,
engine.prompt_encoder, engine.transformer, engine.mask_decoder), computed from those modules'
own parameters with less work. ``engine.predictor`` and ``engine.automatic`` use it; training
uses the plain modules.

- ``encoder``: the image encoder with cache-sized blocks of attention scores.
- ``transformer``: the two-way transformer with projections folded onto the prompt side.
- ``upscaling``: per-cell, blocked upscaling, its first convolution folded through the
  transformer.
- ``decoder``: ``FastDecoder``, the cached per-image state, mask prompts as a low-rank shift,
  and grid decoding.
- ``gemm``: the float32 matrix products of all of the above through oneDNN on CPU (with fused
  ReLU/GELU), PyTorch's own operators elsewhere.

Each module's docstring states the identities its tricks rely on;
tests/engine/test_fast_path_parity.py checks the whole path against the plain model.
"""
