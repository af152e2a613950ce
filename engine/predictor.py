"""Embed once, decode many: the predictor turns images into cached embeddings and prompts into
masks. It holds the model only; per-image state is the ``Embedding`` the caller keeps."""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.embedding import Embedding
from engine.fast.decoder import FastDecoder, ImageState
from engine.fast.encoder import encode
from engine.precision import encoder_in_precision, precision_dtype
from engine.sam import Sam
from engine.transforms import resize_image, scale_coords, upscale_logits, used_low_res


@dataclass(frozen=True)
class Prediction:
    """Masks for one prompt set.

    Attributes:
        masks: bool array (M, H, W) at the original image size; M = 3 with multimask, else 1.
        iou: float32 array (M,), the model's predicted IoU of each mask.
        low_res_logits: float32 array (M, 256, 256), mask logits in the padded 256x256 frame;
            pass one back as ``mask_logits`` (shape (1, 256, 256)) to refine with more clicks.
    """

    masks: np.ndarray
    iou: np.ndarray
    low_res_logits: np.ndarray


@dataclass(frozen=True)
class BatchPrediction:
    """Masks for B prompt sets on one embedding (torch tensors, CPU or the model's device).

    Attributes:
        logits: float32 (B, M, H, W) mask logits at the original image size (mask = logits > 0).
        iou: float32 (B, M).
        low_res_logits: float32 (B, M, 256, 256).
    """

    logits: torch.Tensor
    iou: torch.Tensor
    low_res_logits: torch.Tensor


@dataclass(frozen=True)
class GridPrediction:
    """The masks of the prompt sets that have at least one mask above an IoU threshold (the
    automatic pass's decoding; no low-res logits).

    Attributes:
        prompt_index: int64 (K,) which of the B prompt sets these are, ascending.
        logits: float32 (K, M, H, W) mask logits at the original image size.
        iou: float32 (K, M).
    """

    prompt_index: torch.Tensor
    logits: torch.Tensor
    iou: torch.Tensor


class SamPredictor:
    """Wraps a ``Sam`` model (engine.sam) for embedding images and decoding prompts, through
    the inference fast path (engine.fast) over the model's own parameters.

    Load the weights before building the predictor: it caches the (constant) positional
    encoding of the embedding grid.
    """

    # Decoder states kept for the most recently decoded embeddings (about 14 MB each): an
    # annotator's clicks on one image share a quarter of the decoder's work.
    STATE_CACHE_SIZE = 4

    def __init__(self, model: Sam, precision: str = "fp32", compile: bool = False) -> None:
        self.model = model.eval()
        param = next(model.parameters())
        self.device = param.device
        self.dtype = param.dtype
        # The encoder's products in ``precision`` (engine.precision), on weights converted
        # once, now: later changes to the model's encoder weights are not seen.
        self.precision = precision
        self.encoder = encoder_in_precision(
            model.image_encoder, precision_dtype(precision, self.device)
        )
        # SAM_COMPILE: the encoder through torch.compile (compiled at the first embedding of
        # each batch size); benchmarks/gpu_check.sh measures whether it pays.
        self._encode = torch.compile(encode, dynamic=False) if compile else encode
        self.fast = FastDecoder(model.prompt_encoder, model.mask_decoder)
        self._states: OrderedDict[int, tuple[weakref.ref, ImageState]] = OrderedDict()
        self._states_lock = threading.Lock()
        # Prompt sets that decode_grid sends through the decoder together. After its first
        # layer every prompt set has its own (4096, 256) image tokens: on a CPU a few of them
        # stay in cache, 64 of them (256 MiB per tensor) go to memory at every step, which
        # measured twice as slow per prompt; a GPU wants the whole batch at once.
        self.grid_chunk = 4 if self.device.type == "cpu" else 0

    def _image_state(self, embedding: Embedding) -> ImageState:
        """The decoder's prompt-independent state for ``embedding`` with no mask prompt, cached
        by object identity (keep the Embedding object to benefit)."""
        key = id(embedding)
        with self._states_lock:
            hit = self._states.get(key)
            if hit is not None and hit[0]() is embedding:
                self._states.move_to_end(key)
                return hit[1]
        features = embedding.features.to(self.device, self.dtype).unsqueeze(0)
        state = self.fast.image_state(features)
        with self._states_lock:
            self._states[key] = (weakref.ref(embedding), state)
            while len(self._states) > self.STATE_CACHE_SIZE:
                self._states.popitem(last=False)
        return state

    @property
    def model_type(self) -> str:
        return self.model.model_type

    def _as_rgb(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray):
            raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(
                f"image must be uint8 RGB, got dtype {image.dtype}; decode files with "
                "engine.images.load_image, which converts 16-bit and other modes"
            )
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"image must have shape (H, W, 3) RGB (or (H, W) greyscale), got {image.shape}"
            )
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image is empty: shape {image.shape}")
        return np.ascontiguousarray(image)

    def embed(self, image: np.ndarray) -> Embedding:
        """Run the image encoder once.

        Args:
            image: uint8 array (H, W, 3), RGB, any size >= 1x1. A (H, W) or (H, W, 1) greyscale
                array is replicated to three channels.
        Returns:
            Embedding with fp32 features (256, 64, 64) on CPU.
        Raises:
            ValueError: not a uint8 image array of a supported shape.
        """
        return self.embed_batch([image])[0]

    def embed_batch(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[Embedding]:
        """``embed`` for several images, running the encoder on batches of ``batch_size``."""
        rgb = [self._as_rgb(image) for image in images]
        out: list[Embedding] = []
        size = self.model.img_size
        for start in range(0, len(rgb), batch_size):
            chunk = rgb[start : start + batch_size]
            resized = [resize_image(image, size) for image in chunk]
            with torch.inference_mode():
                batch = torch.stack(
                    [
                        self.model.preprocess(
                            torch.from_numpy(r).to(self.device).permute(2, 0, 1).float()[None]
                        )[0]
                        for r in resized
                    ]
                ).to(self.dtype)
                features = self._encode(self.encoder, batch).float().cpu()
            for image, r, feat in zip(chunk, resized, features, strict=False):
                out.append(
                    Embedding(
                        features=feat.clone(),
                        original_size=(image.shape[0], image.shape[1]),
                        input_size=(r.shape[0], r.shape[1]),
                    )
                )
        return out

    def decode(
        self,
        embedding: Embedding,
        points: Sequence[Sequence[float]] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        box: Sequence[float] | np.ndarray | None = None,
        mask_logits: np.ndarray | None = None,
        multimask: bool = True,
    ) -> Prediction:
        """Masks for one prompt set.

        Args:
            points: [[x, y], ...] in original-image pixels (x right, y down), each within
                [0, width] x [0, height]; points outside raise ValueError.
            labels: one per point, 1 = foreground (+), 0 = background (-).
            box: [x0, y0, x1, y1] in original-image pixels, x0 <= x1 and y0 <= y1, inside the
                image.
            mask_logits: (1, 256, 256) or (256, 256) low-res logits from a previous Prediction.
            multimask: three candidate masks instead of one (for an ambiguous prompt; their
                order says nothing about their size or granularity).
        Raises:
            ValueError: no prompt at all, mismatched points/labels, out-of-range coordinates,
                malformed box or mask_logits.
        """
        prompt = check_prompt(embedding.original_size, points, labels, box, mask_logits)
        result = self.decode_batch(embedding, *prompt, multimask=multimask)
        threshold = self.model.mask_threshold
        return Prediction(
            masks=(result.logits[0] > threshold).cpu().numpy(),
            iou=result.iou[0].float().cpu().numpy(),
            low_res_logits=result.low_res_logits[0].float().cpu().numpy(),
        )

    def decode_batch(
        self,
        embedding: Embedding,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_logits: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> BatchPrediction:
        """B prompt sets on one embedding in one decoder pass (the automatic pass uses this).

        Args:
            points: float (B, N, 2) original-image pixels, or None.
            labels: int (B, N), 1 foreground, 0 background, -1 padding; None iff points is None.
            boxes: float (B, 4) XYXY original-image pixels, or None.
            mask_logits: float (B, 1, 256, 256), or None.
        No validation beyond shapes: callers of the batch API build prompts themselves.
        """
        if (points is None) != (labels is None):
            raise ValueError("points and labels go together")
        original, input_size = embedding.original_size, embedding.input_size
        dev, dtype = self.device, self.dtype
        with torch.inference_mode():
            point_arg = None
            if points is not None and labels is not None:
                coords = scale_coords(points.to(dev, torch.float32), original, input_size)
                point_arg = (coords.to(dtype), labels.to(dev))
            box_arg = None
            if boxes is not None:
                corners = scale_coords(
                    boxes.to(dev, torch.float32).reshape(-1, 2, 2), original, input_size
                )
                box_arg = corners.reshape(-1, 4).to(dtype)
            mask_arg = mask_logits.to(dev, dtype) if mask_logits is not None else None
            sparse, _ = self.model.prompt_encoder(point_arg, box_arg, None)
            state = self._image_state(embedding)
            if mask_arg is not None:
                # The mask prompt only shifts the image tokens: derived from the cached state.
                state = self.fast.with_mask(state, mask_arg)
            low_res, iou = self.fast.decode(state, sparse, multimask)
            logits = upscale_logits(low_res.float(), input_size, original, self.model.img_size)
        return BatchPrediction(logits=logits, iou=iou.float(), low_res_logits=low_res.float())

    def decode_grid(
        self,
        embedding: Embedding,
        points: torch.Tensor,
        labels: torch.Tensor,
        min_iou: float | None = None,
        multimask: bool = True,
    ) -> GridPrediction:
        """``decode_batch`` for the automatic pass, with the same masks for what it returns but
        less work: the IoU head needs no mask, so prompt sets whose every predicted IoU is at
        most ``min_iou`` get no mask at all; and only the grid cells that reach the original
        image are upscaled (the padding of a non-square image is skipped, as no low-res
        logits are returned).

        Args:
            points: float (B, N, 2) original-image pixels; labels: int (B, N).
        The prompt sets go through the decoder ``grid_chunk`` at a time (0: all at once);
        ``decode_grid_chunks`` hands out those parts without joining them.
        """
        parts = list(self.decode_grid_chunks(embedding, points, labels, min_iou, multimask))
        if len(parts) == 1:
            return parts[0]
        return GridPrediction(
            prompt_index=torch.cat([part.prompt_index for part in parts]),
            logits=torch.cat([part.logits for part in parts]),
            iou=torch.cat([part.iou for part in parts]),
        )

    def decode_grid_chunks(
        self,
        embedding: Embedding,
        points: torch.Tensor,
        labels: torch.Tensor,
        min_iou: float | None = None,
        multimask: bool = True,
    ) -> Iterator[GridPrediction]:
        """``decode_grid`` as it is computed: one GridPrediction per ``grid_chunk`` prompt
        sets, ``prompt_index`` counted over all of ``points``. A caller that handles each part
        on its own (the automatic pass) saves joining (B, M, H, W) logits into one tensor."""
        chunk = self.grid_chunk if self.grid_chunk > 0 else max(1, len(points))
        for start in range(0, len(points), chunk):
            part = self._decode_grid_chunk(
                embedding,
                points[start : start + chunk],
                labels[start : start + chunk],
                min_iou,
                multimask,
            )
            if start:
                part = GridPrediction(part.prompt_index + start, part.logits, part.iou)
            yield part

    def _decode_grid_chunk(
        self,
        embedding: Embedding,
        points: torch.Tensor,
        labels: torch.Tensor,
        min_iou: float | None,
        multimask: bool,
    ) -> GridPrediction:
        """``decode_grid`` of prompt sets decoded together."""
        original, input_size = embedding.original_size, embedding.input_size
        dev, dtype = self.device, self.dtype
        with torch.inference_mode():
            coords = scale_coords(points.to(dev, torch.float32), original, input_size)
            sparse, _ = self.model.prompt_encoder((coords.to(dtype), labels.to(dev)), None, None)
            state = self._image_state(embedding)
            low_size = (4 * state.size[0], 4 * state.size[1])
            used = used_low_res(low_size, input_size, original, self.model.img_size)
            cells = (math.ceil(used[0] / 4), math.ceil(used[1] / 4))
            index, low_res, iou = self.fast.decode_grid(state, sparse, multimask, min_iou, cells)
            if len(index) == 0:
                empty = torch.zeros((0, iou.shape[1], *original), dtype=torch.float32, device=dev)
                return GridPrediction(prompt_index=index.cpu(), logits=empty, iou=iou)
            logits = upscale_logits(
                low_res.float(), input_size, original, self.model.img_size, low_size=low_size
            )
        return GridPrediction(prompt_index=index.cpu(), logits=logits, iou=iou)


def check_prompt(
    original_size: tuple[int, int],
    points: Sequence[Sequence[float]] | np.ndarray | None,
    labels: Sequence[int] | np.ndarray | None,
    box: Sequence[float] | np.ndarray | None,
    mask_logits: np.ndarray | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Validate one user prompt set and return batch-of-one tensors for ``decode_batch``.

    Raises ValueError with a message that names what is wrong."""
    height, width = original_size
    if points is not None and len(points) == 0:
        points = None
    if labels is not None and len(labels) == 0:
        labels = None
    point_t = label_t = box_t = mask_t = None
    if points is not None or labels is not None:
        if points is None or labels is None:
            raise ValueError("points and labels must be given together")
        flat = _finite_array(points, "points").reshape(-1) if np.size(points) else None
        if flat is None or flat.size % 2:
            raise ValueError("points must be a list of [x, y] pairs")
        pts = flat.reshape(-1, 2)
        lab = np.asarray(labels)
        if lab.ndim != 1 or len(lab) != len(pts):
            raise ValueError(f"got {len(pts)} points but {lab.size} labels; give one label each")
        if not np.isin(lab, (0, 1)).all():
            raise ValueError("labels must be 1 (foreground) or 0 (background)")
        outside = (pts[:, 0] < 0) | (pts[:, 0] > width) | (pts[:, 1] < 0) | (pts[:, 1] > height)
        if outside.any():
            x, y = pts[int(np.argmax(outside))]
            raise ValueError(
                f"point ({x:g}, {y:g}) is outside the {width}x{height} image "
                f"(x must be in [0, {width}], y in [0, {height}])"
            )
        point_t = torch.from_numpy(pts.astype(np.float32))[None]
        label_t = torch.from_numpy(lab.astype(np.int64))[None]
    if box is not None:
        b = _finite_array(box, "box").reshape(-1)
        if b.size != 4:
            raise ValueError("box must be [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (float(v) for v in b)
        if x1 < x0 or y1 < y0:
            raise ValueError(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] needs x0 <= x1 and y0 <= y1")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(
                f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] reaches outside the {width}x{height} image"
            )
        box_t = torch.from_numpy(b.astype(np.float32))[None]
    if mask_logits is not None:
        m = _finite_array(mask_logits, "mask_logits")
        if m.shape not in ((256, 256), (1, 256, 256)):
            raise ValueError(f"mask_logits must have shape (1, 256, 256), got {m.shape}")
        mask_t = torch.from_numpy(m.astype(np.float32).reshape(1, 1, 256, 256))
    if point_t is None and box_t is None and mask_t is None:
        raise ValueError("no prompt: give at least one point, a box or previous mask logits")
    return point_t, label_t, box_t, mask_t


def _finite_array(value: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite numbers")
    return arr
