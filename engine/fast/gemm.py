"""The fast paths' matrix products through oneDNN on CPU.

PyTorch sends a float32 ``matmul``/``bmm``/``addmm`` on CPU to its BLAS (MKL in the x86
wheels) and only lower precisions to oneDNN. The decoder's products are thin (56 rows of
prompt-side queries against 4096 image tokens, or 4096 rows over 56 to 117 columns), and on the
AMD CPUs we measure on oneDNN runs them about twice as fast as the BLAS
(benchmarks/bench_predict.py), in float32 all the same: each output is a sum of the same
products, accumulated in float32, so results differ from the BLAS's by rounding only.

oneDNN is reached through ``mkldnn::_linear_pointwise``, the fused linear operator PyTorch's
own compiler emits on CPU: ``x @ w.T + bias`` followed by an activation (``relu``, ``gelu``)
or plus a tensor of the output's shape. Every function here falls back to the plain PyTorch
operators when that operator is missing (a build without oneDNN), on any other device or
dtype, or when autograd would have to follow (the operator has no derivative); the fallback
is also what ``ENABLED = False`` selects, which the parity tests compare against.

Shapes: ``x`` (..., K) or (B, M, K); ``weight`` (N, K) like ``nn.Linear``'s, any strides.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import MLP, MLPBlock

ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# Set to False to take the plain PyTorch operators everywhere (tests, benchmarks).
ENABLED = True

_ACTIVATIONS = {"none": lambda x: x, "relu": torch.relu, "gelu": F.gelu}


# Below about this many multiply-adds a product is over before oneDNN's per-call overhead
# (primitive lookup, ~10 us) pays off, and PyTorch's own operators are faster: the prompt side's
# projections of a handful of tokens stay with them.
MIN_MACS = 1 << 20


def _onednn(*tensors: torch.Tensor, macs: int = MIN_MACS) -> bool:
    return (
        ENABLED
        and macs >= MIN_MACS
        and ONEDNN
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
    )


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str = "none",
) -> torch.Tensor:
    """activation(x @ weight.T + bias): x (..., K), weight (N, K), bias (N,) -> (..., N);
    ``activation`` one of none, relu, gelu (exact, erf-based)."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}")
    macs = x.numel() * weight.shape[0]
    if _onednn(x, weight, *([] if bias is None else [bias]), macs=macs):
        algorithm = "none" if activation == "gelu" else ""
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, activation, [], algorithm)
    return _ACTIVATIONS[activation](F.linear(x, weight, bias))


def linear_add(
    x: torch.Tensor, weight: torch.Tensor, other: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """x @ weight.T + bias + other, ``other`` of the output's shape (or broadcast to it), as
    one pass over ``other`` instead of a copy of it followed by the product."""
    if _onednn(x, weight, other, *([] if bias is None else [bias])):
        out_shape = (*x.shape[:-1], weight.shape[0])
        other = other.expand(out_shape)
        return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, bias, "add")
    out = torch.matmul(x, weight.T) + other
    return out if bias is None else out + bias


def bmm_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b.transpose(-1, -2) for a (B, M, K) and b (B or 1, N, K): (B, M, N). A b shared by
    the batch (first dimension 1) is one product; otherwise one per batch item."""
    if b.shape[0] == 1:
        return linear(a, b[0])
    if not _onednn(a, b):
        return torch.matmul(a, b.transpose(1, 2))
    return torch.stack([linear(a[i], b[i]) for i in range(a.shape[0])])


def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for a (B, M, K) and b (B or 1, K, N): (B, M, N)."""
    return bmm_nt(a, b.transpose(1, 2))


def baddbmm(other: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """other + a @ b for a (B, M, K), b (B or 1, K, N) and other (B or 1, M, N)."""
    if b.shape[0] == 1:
        return linear_add(a, b[0].T, other)
    if not _onednn(a, b, other):
        return torch.baddbmm(other.expand(a.shape[0], -1, -1), a, b)
    other = other.expand(a.shape[0], -1, -1)
    return torch.stack([linear_add(a[i], b[i].T, other[i]) for i in range(a.shape[0])])


def apply_linear(layer: nn.Linear, x: torch.Tensor, activation: str = "none") -> torch.Tensor:
    """activation(layer(x))."""
    return linear(x, layer.weight, layer.bias, activation)


def mlp_block(block: MLPBlock, x: torch.Tensor) -> torch.Tensor:
    """``block(x)``: lin2(act(lin1(x))), the activation fused into lin1 when it is a ReLU or an
    exact GELU."""
    act = block.act
    if isinstance(act, nn.ReLU):
        name = "relu"
    elif isinstance(act, nn.GELU) and act.approximate == "none":
        name = "gelu"
    else:
        return block(x)
    return apply_linear(block.lin2, apply_linear(block.lin1, x, name))


def mlp(module: MLP, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``: its linear layers with ReLU between them."""
    last = len(module.layers) - 1
    for i, layer in enumerate(module.layers):
        x = apply_linear(cast(nn.Linear, layer), x, "relu" if i < last else "none")
    return x
