"""The demo that `make run` loads: a dozen synthetic photographs-in-spirit and two users.

    python -m deploy.demo images var/demo     # writes the images (no Django needed)
    python -m deploy.demo users var/demo-credentials.json --dataset demo
    python -m deploy.demo model                # which model answers clicks

The images are drawn with NumPy and Pillow from fixed seeds, so they are the same bytes on every
run and a re-import finds them already there. Each scene has what segmentation is about: objects
with soft shading, textured backgrounds, overlaps, occlusion and shadows.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = (960, 720)  # width, height
SUPERSAMPLE = 2  # drawn at twice the size and downsampled, for anti-aliased edges

Rgb = tuple[int, int, int]


def _noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    """Smooth value noise in [0, 1], shape (h, w): random values on a coarse grid, upsampled."""
    coarse = rng.random((max(2, h // scale + 2), max(2, w // scale + 2))).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _vertical_gradient(h: int, w: int, top: Rgb, bottom: Rgb) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32) * np.ones(
        (1, w, 1)
    )


def _textured(
    base: np.ndarray, rng: np.random.Generator, strength: float, scale: int
) -> np.ndarray:
    h, w = base.shape[:2]
    fine = _noise(rng, h, w, max(2, scale // 6)) - 0.5
    coarse = _noise(rng, h, w, scale) - 0.5
    return base * (1 + strength * (coarse + 0.5 * fine))[:, :, None]


def _shaded_ellipse(
    canvas: Image.Image,
    box: tuple[float, float, float, float],
    colour: Rgb,
    rng: np.random.Generator,
    shadow: bool = True,
) -> None:
    """A ball-like object: radial shading with a highlight up-left and a soft shadow."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = max(2, x1 - x0), max(2, y1 - y0)
    if shadow:
        pad = w // 2
        sh = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
        ImageDraw.Draw(sh).ellipse((pad, pad + h // 6, pad + w, pad + h + h // 6), fill=110)
        sh = sh.filter(ImageFilter.GaussianBlur(w / 10))
        canvas.paste((0, 0, 0), (x0 + w // 8 - pad, y0 - pad), sh)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx - 0.35 * w) / w, (yy - 0.3 * h) / h
    light = np.clip(1.15 - 1.6 * np.sqrt(dx**2 + dy**2), 0.25, 1.15)
    speckle = 1 + 0.06 * (_noise(rng, h, w, 8) - 0.5)
    rgb = np.clip(np.array(colour, np.float32) * (light * speckle)[:, :, None], 0, 255)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, w - 1, h - 1), fill=255)
    canvas.paste(Image.fromarray(rgb.astype(np.uint8)), (x0, y0), mask)


def _polygon_with_gradient(
    canvas: Image.Image,
    points: list[tuple[float, float]],
    top: Rgb,
    bottom: Rgb,
    rng: np.random.Generator,
) -> None:
    w, h = canvas.size
    fill = _textured(_vertical_gradient(h, w, top, bottom), rng, 0.25, 40)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(points, fill=255)
    canvas.paste(Image.fromarray(np.clip(fill, 0, 255).astype(np.uint8)), (0, 0), mask)


def landscape(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Sky, sun, overlapping mountain ridges, a lake and trees in front of it."""
    horizon = int(h * rng.uniform(0.55, 0.65))
    sky = _vertical_gradient(h, w, (70, 120, 200), (230, 200, 170))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    sx, sy, r = rng.uniform(0.15, 0.85) * w, rng.uniform(0.1, 0.3) * h, h * 0.06
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 236, 180))
    for layer, (top, bottom) in enumerate(
        [
            ((120, 130, 160), (90, 100, 130)),
            ((80, 105, 90), (50, 75, 60)),
            ((60, 85, 50), (35, 55, 30)),
        ]
    ):
        base = horizon - (2 - layer) * h * 0.04
        xs = np.linspace(-0.05 * w, 1.05 * w, 9)
        peaks = base - rng.uniform(0.1, 0.35, size=xs.size) * h / (layer + 1)
        _polygon_with_gradient(
            img, [(-10, h), *zip(xs, peaks, strict=True), (w + 10, h)], top, bottom, rng
        )
    lake = _textured(
        _vertical_gradient(h - horizon, w, (90, 130, 170), (40, 70, 100)), rng, 0.2, 30
    )
    lake_mask = Image.new("L", (w, h - horizon), 0)
    ImageDraw.Draw(lake_mask).ellipse((w * 0.1, -h * 0.05, w * 0.9, (h - horizon) * 0.8), fill=255)
    img.paste(Image.fromarray(np.clip(lake, 0, 255).astype(np.uint8)), (0, horizon), lake_mask)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 9))):
        tx, ty = rng.uniform(0, w), rng.uniform(horizon + 0.05 * h, h * 0.98)
        th = rng.uniform(0.12, 0.25) * h
        draw.rectangle((tx - th * 0.04, ty - th * 0.3, tx + th * 0.04, ty), fill=(80, 55, 35))
        green = tuple(int(v) for v in rng.integers(30, 90, size=3) * np.array([0.6, 1.3, 0.6]))
        for k in range(3):
            y_top = ty - th * (1.0 - 0.22 * k)
            half = th * (0.18 + 0.08 * k)
            draw.polygon(
                [
                    (tx, y_top),
                    (tx - half, ty - th * (0.45 - 0.1 * k)),
                    (tx + half, ty - th * (0.45 - 0.1 * k)),
                ],
                fill=green,
            )
    return img


def still_life(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Fruit and bowls on a wooden table in front of a wall, overlapping, with shadows."""
    edge = int(h * rng.uniform(0.35, 0.45))
    wall = _textured(_vertical_gradient(edge, w, (205, 195, 175), (175, 165, 145)), rng, 0.08, 60)
    grain = np.sin(np.linspace(0, rng.uniform(40, 70), w, dtype=np.float32))[None, :]
    grain = grain + 0.6 * (_noise(rng, h - edge, w, 12) - 0.5)
    wood = (
        _vertical_gradient(h - edge, w, (150, 95, 55), (110, 65, 35))
        * (1 + 0.12 * grain)[:, :, None]
    )
    img = Image.fromarray(np.clip(np.concatenate([wall, wood]), 0, 255).astype(np.uint8))
    bowl_x = rng.uniform(0.3, 0.7) * w
    bowl_box = (bowl_x - 0.22 * w, edge + 0.25 * h, bowl_x + 0.22 * w, edge + 0.5 * h)
    _shaded_ellipse(img, bowl_box, (200, 200, 210), rng)
    palette = [(230, 130, 30), (200, 30, 40), (120, 180, 40), (240, 210, 60), (110, 40, 90)]
    objects = []
    for _ in range(int(rng.integers(7, 12))):
        r = rng.uniform(0.05, 0.09) * h
        x = rng.uniform(0.08, 0.92) * w
        y = rng.uniform(edge + 0.05 * h, h - 0.12 * h)
        objects.append((y, x, r, palette[int(rng.integers(len(palette)))]))
    for y, x, r, colour in sorted(objects):  # far objects first: nearer ones occlude them
        _shaded_ellipse(img, (x - r, y - r, x + r, y + r * 0.95), colour, rng)
    return img


def street(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A row of buildings with window grids, a road, and cars partly hiding each other."""
    ground = int(h * 0.7)
    img = Image.fromarray(
        np.clip(_vertical_gradient(h, w, (150, 185, 225), (215, 225, 235)), 0, 255).astype(np.uint8)
    )
    x = -rng.uniform(0, 60)
    while x < w:
        bw, bh = rng.uniform(0.12, 0.25) * w, rng.uniform(0.3, 0.6) * h
        top, body = ground - bh, tuple(int(v) for v in rng.integers(90, 200, size=3))
        shade = tuple(int(v * 0.7) for v in body)
        _polygon_with_gradient(
            img, [(x, top), (x + bw, top), (x + bw, ground), (x, ground)], body, shade, rng
        )
        draw = ImageDraw.Draw(img)
        for wy in np.arange(top + 15, ground - 30, 38):
            for wx in np.arange(x + 12, x + bw - 22, 30):
                lit = rng.random() < 0.3
                draw.rectangle(
                    (wx, wy, wx + 16, wy + 22), fill=(250, 225, 140) if lit else (60, 75, 95)
                )
        x += bw + rng.uniform(0, 20)
    road = _textured(_vertical_gradient(h - ground, w, (95, 95, 100), (60, 60, 65)), rng, 0.3, 6)
    img.paste(Image.fromarray(np.clip(road, 0, 255).astype(np.uint8)), (0, ground))
    draw = ImageDraw.Draw(img)
    lane_y = ground + (h - ground) * 0.55
    for lx in range(0, w, 90):
        draw.rectangle((lx, lane_y, lx + 50, lane_y + 6), fill=(235, 235, 225))
    for _ in range(int(rng.integers(3, 6))):
        cw, cy = rng.uniform(0.16, 0.24) * w, rng.uniform(ground + 0.05 * h, h - 0.06 * h)
        cx = rng.uniform(-0.05, 0.9) * w
        colour = tuple(int(v) for v in rng.integers(20, 235, size=3))
        body = (cx, cy - cw * 0.22, cx + cw, cy)
        _polygon_with_gradient(
            img,
            [(body[0], body[1]), (body[2], body[1]), (body[2], body[3]), (body[0], body[3])],
            colour,
            tuple(int(v * 0.6) for v in colour),
            rng,
        )
        draw = ImageDraw.Draw(img)
        draw.polygon(
            [
                (cx + cw * 0.2, body[1]),
                (cx + cw * 0.3, cy - cw * 0.38),
                (cx + cw * 0.7, cy - cw * 0.38),
                (cx + cw * 0.82, body[1]),
            ],
            fill=(120, 150, 175),
        )
        for wx in (cx + cw * 0.22, cx + cw * 0.78):
            rr = cw * 0.09
            draw.ellipse((wx - rr, cy - rr, wx + rr, cy + rr), fill=(25, 25, 25))
    return img


def scattered(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Many small round objects (pebbles, cells, marbles) on a textured ground; dense overlaps."""
    ground_top = tuple(int(v) for v in rng.integers(120, 220, size=3))
    ground = _textured(
        _vertical_gradient(h, w, ground_top, tuple(int(v * 0.8) for v in ground_top)), rng, 0.35, 25
    )
    img = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8))
    hue = rng.integers(40, 200, size=3)
    for _ in range(int(rng.integers(25, 45))):
        rx, ry = rng.uniform(0.025, 0.07) * w, rng.uniform(0.025, 0.07) * h
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        colour = tuple(int(v) for v in np.clip(hue + rng.integers(-50, 50, size=3), 10, 250))
        _shaded_ellipse(img, (x - rx, y - ry, x + rx, y + ry), colour, rng)
    return img


SCENES: list[tuple[str, Callable[[np.random.Generator, int, int], Image.Image]]] = [
    ("landscape", landscape),
    ("still-life", still_life),
    ("street", street),
    ("scattered", scattered),
]
VARIANTS = 3  # 4 scenes x 3 seeds = 12 images


def render(scene: Callable[[np.random.Generator, int, int], Image.Image], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = SIZE
    big = scene(rng, w * SUPERSAMPLE, h * SUPERSAMPLE).convert("RGB")
    return big.resize(SIZE, Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.4))


def write_images(out_dir: Path) -> list[Path]:
    """Writes the demo images as JPEG (same bytes every run); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (name, scene) in enumerate(SCENES):
        for variant in range(VARIANTS):
            path = out_dir / f"{name}-{variant + 1}.jpg"
            if not path.exists():
                render(scene, seed=1000 * index + variant).save(path, quality=90)
            paths.append(path)
    return paths


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    import django

    django.setup()


def describe_model() -> str:
    """Which model version is active (registering the configured checkpoint or creating the
    cold-start model, as the first request or task would), and how to get Meta's if not."""
    _setup_django()
    from django.conf import settings

    from registry.predictors import model_status

    status = model_status()
    wrap = {"width": 100, "initial_indent": "  ", "subsequent_indent": "    "}
    text = [
        textwrap.fill(
            f"active model: {status['name']} ({status['model_type']}, round {status['round']}, "
            f"{status['precision']}); "
            f"trained on {status['trained_on']}",
            **wrap,
        )
    ]
    if not status["is_official"]:
        directory = Path(settings.CHECKPOINT_DIR).resolve()
        download = ".venv/bin/python -m engine.checkpoints download vit_b"
        if directory != Path("var/checkpoints").resolve():  # the command's default
            download += f" --dir {directory}"
        checkpoint = _shown(directory / "sam_vit_b_01ec64.pth")
        text += [
            textwrap.fill(status["hint"], **wrap),
            "  make run installs Meta's vit_b checkpoint when it can download it"
            + ("" if settings.AUTO_DOWNLOAD else " (turned off: SADE_AUTO_DOWNLOAD=0)")
            + "; by hand:",
            f"      {download}",
            f"      SAM_MODEL_TYPE=vit_b SAM_CHECKPOINT={checkpoint} make run",
        ]
    return "\n".join(text)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it (shorter to copy)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def ensure_users(credentials_file: Path, dataset_name: str | None = None) -> dict[str, str]:
    """Creates the demo admin (a superuser: admin of every dataset) and annotator if missing,
    with random passwords kept in ``credentials_file`` (mode 0600) so later runs can print them
    again. The annotator becomes an annotating member of ``dataset_name`` when given."""
    _setup_django()
    from django.contrib.auth import get_user_model

    from annotation.models import Dataset, Role
    from annotation.services.access import set_membership

    user_model = get_user_model()
    saved = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
    shown = {}
    for username, is_admin in (("admin", True), ("annotator", False)):
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(9)
            create = (
                user_model.objects.create_superuser if is_admin else user_model.objects.create_user
            )
            user = create(username, f"{username}@example.com", password)
            saved[username] = password
        shown[username] = saved.get(username, "(set before this script kept passwords)")
        if dataset_name and not is_admin:
            set_membership(Dataset.objects.get(name=dataset_name), user, Role.ANNOTATOR)
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(saved, indent=2) + "\n")
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="write the demo images")
    images.add_argument("out_dir", type=Path)
    users = sub.add_parser("users", help="create the demo users and print their credentials")
    users.add_argument("credentials_file", type=Path)
    users.add_argument("--dataset", help="make the annotator a member of this dataset")
    sub.add_parser("model", help="say which model answers clicks")
    args = parser.parse_args(argv)
    if args.command == "images":
        paths = write_images(args.out_dir)
        print(f"{len(paths)} demo images in {args.out_dir}")
    elif args.command == "model":
        print(describe_model())
    else:
        for username, password in ensure_users(args.credentials_file, args.dataset).items():
            print(f"  {username:<10} password: {password}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
