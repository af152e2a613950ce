"""resize and to_pil_image as torchvision applies them to PIL images."""

import numpy as np
from PIL import Image


def to_pil_image(pic: np.ndarray) -> Image.Image:
    """uint8 (H, W, 3) array -> RGB PIL image."""
    return Image.fromarray(np.asarray(pic, dtype=np.uint8))


def resize(img: Image.Image, size: list[int] | tuple[int, int]) -> Image.Image:
    """Resize a PIL image to (height, width) with Pillow's bilinear filter, torchvision's
    default interpolation for PIL inputs."""
    height, width = size
    return img.resize((width, height), Image.Resampling.BILINEAR)
