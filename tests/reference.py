"""Meta's segment-anything package as a test-only oracle, and seeded weights shared with ours."""

import sys
from pathlib import Path
from types import ModuleType

import torch

STANDIN = Path(__file__).resolve().parent / "torchvision_standin"


def segment_anything() -> ModuleType:
    """Import Meta's package with the torchvision stand-in on sys.path."""
    if str(STANDIN) not in sys.path:
        sys.path.insert(0, str(STANDIN))
    import segment_anything as sa

    return sa


def random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Every tensor of the model's state dict filled from a seeded generator.

    Zero-initialised parts (relative position tables, absolute position embedding, biases) get
    random values too, so parity tests exercise every path; LayerNorm weights stay near 1.
    """
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            state[name] = tensor.clone()
            continue
        noise = torch.randn(tensor.shape, generator=gen)
        if tensor.dim() == 1 and ("norm" in name or name.endswith((".1.weight", ".3.weight"))):
            state[name] = 1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise
        elif "rel_pos" in name or "pos_embed" in name:
            state[name] = 0.2 * noise
        elif tensor.dim() >= 2:
            fan_in = tensor[0].numel() if tensor.dim() > 1 else tensor.numel()
            state[name] = noise / fan_in**0.5
        else:
            state[name] = 0.1 * noise
    return state
