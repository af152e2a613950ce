"""The per-image state the decoder needs: image features plus the two sizes that map prompts and
masks between the original image and the model's 1024x1024 input frame."""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Embedding:
    """Image features from the encoder of one model version.

    Attributes:
        features: float tensor (C, Hf, Wf) on CPU; (256, 64, 64) for every registered model.
            float32 when fresh from the encoder, float16 after a round trip through bytes
            (decoding converts it back to the model's dtype).
        original_size: (height, width) of the image as given to ``embed``, in pixels.
        input_size: (height, width) after resizing the longest side to the model's input size
            (1024), before padding to a square.
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    def to_bytes(self) -> bytes:
        """fp16 serialisation (half the disk of fp32; decoding upcasts)."""
        buf = io.BytesIO()
        torch.save(
            {
                "features": self.features.detach().to("cpu", torch.float16).contiguous(),
                "original_size": list(self.original_size),
                "input_size": list(self.input_size),
            },
            buf,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Embedding:
        """Inverse of ``to_bytes``. Raises ValueError for bytes that are not an embedding."""
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            features = obj["features"]
            original_size = tuple(int(v) for v in obj["original_size"])
            input_size = tuple(int(v) for v in obj["input_size"])
        except Exception as exc:  # torch raises many kinds for corrupt files
            raise ValueError(f"not a valid embedding file: {exc.__class__.__name__}") from exc
        if not isinstance(features, torch.Tensor) or features.dim() != 3:
            raise ValueError("not a valid embedding file: features must be a (C, H, W) tensor")
        if len(original_size) != 2 or len(input_size) != 2:
            raise ValueError("not a valid embedding file: sizes must be (height, width)")
        return cls(features=features, original_size=original_size, input_size=input_size)  # type: ignore[arg-type]
