"""The synthetic dataset of benchmarks/bench_scale.py, written into PostgreSQL with COPY.

Every image is ``WIDTH`` x ``HEIGHT`` in the database (SA-1B's images are resized to about
1500 x 2250; SAM works at 1024 on the long side, the size stored here) with a small placeholder
JPEG on disk (the export copies it byte for byte and never decodes it). The mix follows the
SA paper's engine: most images are in stage 3 with about 100 automatic masks each, a few in
stage 2 (pre-filled masks, some kept or edited, plus masks people added) and stage 1 (masks
people made with the model, in a session with its time). Masks come from a pool of real RLEs
(ellipses and polygons of sizes from tiny to most of the image) so that their stored size and
their decoding cost are those of real masks; each carries its true area and box.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

WIDTH, HEIGHT = 1024, 768
POOL = 512
# Share of images per stage, and per stage the mean masks per image (the paper: ~100 in stage 3,
# 72 at the end of stage 2, 44 at the end of stage 1).
STAGE_MIX = ((3, 0.90, 100), (2, 0.06, 72), (1, 0.04, 44))
ANNOTATORS = 8


@dataclass
class PoolMask:
    rle_json: str
    bbox_json: str
    area: int
    point_json: str


def mask_pool(seed: int = 0) -> list[PoolMask]:
    """``POOL`` masks of varied shapes and sizes as COCO RLE at WIDTH x HEIGHT."""
    from pycocotools import mask as mask_utils

    rng = random.Random(seed)
    pool = []
    while len(pool) < POOL:
        canvas = PILImage.new("1", (WIDTH, HEIGHT), 0)
        draw = ImageDraw.Draw(canvas)
        # Log-uniform sizes: many small objects, a few large ones, as in SA-1B.
        size = int(np.exp(rng.uniform(np.log(6), np.log(700))))
        cx, cy = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        if rng.random() < 0.5:
            draw.ellipse([cx - size, cy - size * rng.uniform(0.4, 1), cx + size, cy + size], 1)
        else:
            angles = sorted(rng.uniform(0, 2 * np.pi) for _ in range(rng.randint(5, 12)))
            radii = [size * rng.uniform(0.4, 1.0) for _ in angles]
            points = [
                (cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
            ]
            draw.polygon(points, 1)
        array = np.asfortranarray(np.asarray(canvas, dtype=np.uint8))
        area = int(array.sum())
        if area == 0:
            continue
        rle = mask_utils.encode(array)
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        ys, xs = np.nonzero(array)
        k = len(xs) // 2
        pool.append(
            PoolMask(
                rle_json=json.dumps({"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode()}),
                bbox_json=json.dumps([x, y, w, h]),
                area=area,
                point_json=json.dumps([[float(xs[k]), float(ys[k])]]),
            )
        )
    return pool


def placeholder_jpeg(seed: int = 0, kib: int = 10) -> bytes:
    """A noisy JPEG of about ``kib`` KiB (at least 10): noise compresses to about 2.7 bytes a
    pixel at quality 90, so the pixel count follows from the size asked for."""
    rng = np.random.default_rng(seed)
    scale = max(1.0, (max(kib, 10) / 10) ** 0.5)
    height, width = round(96 * scale), round(128 * scale)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _copy_text(cursor, table: str, columns: tuple[str, ...], lines) -> None:
    """COPY rows given as tab-separated text lines (NULL as \\N)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        block: list[str] = []
        for line in lines:
            block.append(line)
            if len(block) >= 5000:
                copy.write("".join(block))
                block.clear()
        if block:
            copy.write("".join(block))


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def _escape_json(text: str) -> str:
    # COPY's text format reads backslashes as escapes; RLE strings contain them.
    return text.replace("\\", "\\\\")


IMAGE_COLUMNS = (
    "dataset_id", "file", "original_name", "sha256", "content_sha256", "format", "width",
    "height", "file_size", "stage", "status", "embedding_status", "embedding_error",
    "encoder_key", "created_at", "updated_at",
)  # fmt: skip
SESSION_COLUMNS = (
    "annotator_id", "image_id", "stage", "started_at", "last_heartbeat_at", "ended_at",
    "active_seconds", "masks_made",
)  # fmt: skip
MASK_COLUMNS = (
    "image_id", "rle", "bbox", "area", "source", "stage", "predicted_iou", "stability_score",
    "point_coords", "crop_box", "author_id", "model_version_id", "session_id", "seconds_spent",
    "version", "review", "reviewed_by_id", "created_at", "updated_at", "iscrowd",
)  # fmt: skip


@dataclass
class FillContext:
    dataset_id: int
    media_root: Path
    annotator_ids: list[int]
    version_ids: list[int]
    pool: list[PoolMask]
    jpeg: bytes
    # The first ``export_images`` images get ``export_jpeg`` instead (when given): the files an
    # export is measured on, at the size of real ones, while the rest stay small to fill fast.
    export_jpeg: bytes = b""
    export_images: int = 0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def _pick_stage(rng: random.Random) -> tuple[int, int]:
    roll, acc = rng.random(), 0.0
    for stage, share, mean in STAGE_MIX:
        acc += share
        if roll < acc:
            return stage, mean
    return STAGE_MIX[0][0], STAGE_MIX[0][2]


def fill(conn, ctx: FillContext, first: int, count: int, seed: int) -> dict[str, int]:
    """Add images ``first`` .. ``first + count - 1`` of the synthetic dataset with their
    sessions, masks and prompts, in one transaction of COPYs; returns rows written."""
    rng = random.Random(seed)
    folder = ctx.media_root / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    plan = []
    image_lines = []
    for i in range(first, first + count):
        stage, mean = _pick_stage(rng)
        n = max(1, min(400, int(rng.lognormvariate(np.log(mean), 0.5))))
        # Stage 3 is the model's alone: "done" there would mean a person vouched for it.
        status = "pending" if stage == 3 or rng.random() < 0.5 else "done"
        created = ctx.start + timedelta(seconds=i * 20)
        sha = hashlib.sha256(f"{ctx.dataset_id}-{i}".encode()).hexdigest()
        name = f"bench/{i}.jpg"
        jpeg = ctx.export_jpeg if ctx.export_jpeg and i < ctx.export_images else ctx.jpeg
        (ctx.media_root / name).write_bytes(jpeg)
        image_lines.append(
            f"{ctx.dataset_id}\t{name}\t{i}.jpg\t{sha}\t{sha}\tJPEG\t{WIDTH}\t{HEIGHT}\t"
            f"{len(jpeg)}\t{stage}\t{status}\tnone\t\t\t{_ts(created)}\t{_ts(created)}\n"
        )
        plan.append((stage, n, created))
    with conn.cursor() as cur:
        # The mask triggers off for this transaction (a bulk load; bench_scale recounts the
        # tallies afterwards). On a connection in autocommit mode this does nothing.
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("SELECT coalesce(max(id), 0) FROM annotation_image")
        (last_id,) = cur.fetchone()
        _copy_text(cur, "annotation_image", IMAGE_COLUMNS, image_lines)
        cur.execute(
            "SELECT id FROM annotation_image WHERE dataset_id = %s AND id > %s ORDER BY id",
            (ctx.dataset_id, last_id),
        )
        ids = [row[0] for row in cur.fetchall()]
        assert len(ids) == count, (len(ids), count)
        session_lines, people = [], {}
        for image_id, (stage, n, created) in zip(ids, plan, strict=True):
            if stage == 3:
                continue
            annotator = rng.choice(ctx.annotator_ids)
            seconds = n * rng.uniform(10, 30)
            people[image_id] = annotator
            end = created + timedelta(seconds=seconds)
            session_lines.append(
                f"{annotator}\t{image_id}\t{stage}\t{_ts(created)}\t{_ts(end)}\t{_ts(end)}\t"
                f"{seconds:.1f}\t{n}\n"
            )
        _copy_text(cur, "annotation_annotatorsession", SESSION_COLUMNS, session_lines)
        cur.execute(
            "SELECT image_id, id FROM annotation_annotatorsession WHERE image_id >= %s",
            (ids[0],),
        )
        sessions = dict(cur.fetchall())
        masks = 0

        def mask_lines():
            nonlocal masks
            for image_id, (stage, n, created) in zip(ids, plan, strict=True):
                for k in range(n):
                    masks += 1
                    yield _mask_line(ctx, rng, image_id, stage, k, n, created, people, sessions)

        _copy_text(cur, "annotation_mask", MASK_COLUMNS, mask_lines())
        # The clicks behind the masks people made with the model, as the tool records them.
        cur.execute(
            "INSERT INTO annotation_maskprompt (mask_id, points, labels, box, chosen_index) "
            "SELECT id, point_coords, '[1]'::jsonb, NULL, 0 FROM annotation_mask "
            "WHERE image_id >= %s AND source = 'model_assisted'",
            (ids[0],),
        )
        prompts = cur.rowcount
    conn.commit()
    return {"images": count, "sessions": len(session_lines), "masks": masks, "prompts": prompts}


def _mask_line(ctx, rng, image_id, stage, k, n, created, people, sessions) -> str:
    m = ctx.pool[rng.randrange(len(ctx.pool))]
    at = _ts(created + timedelta(seconds=k))
    version = ctx.version_ids[(image_id // 7) % len(ctx.version_ids)]
    author = session = reviewed_by = r"\N"
    review, seconds, iou, stab, crop = "", 0.0, r"\N", r"\N", r"\N"
    if stage == 3 or (stage == 2 and k < n * 0.6):
        source = "automatic" if stage == 3 else "prefilled"
        iou, stab = f"{rng.uniform(0.88, 1.0):.4f}", f"{rng.uniform(0.95, 1.0):.4f}"
        crop = f"[0, 0, {WIDTH}, {HEIGHT}]"
        if stage == 2:
            review = rng.choice(("", "kept", "kept", "edited"))
            if review:
                reviewed_by = str(people[image_id])
    else:
        source = "model_assisted" if rng.random() < 0.85 else "manual"
        author, session = str(people[image_id]), str(sessions[image_id])
        seconds = rng.uniform(8, 40)
        version = version if source == "model_assisted" else None
    point = m.point_json
    return (
        f"{image_id}\t{_escape_json(m.rle_json)}\t{m.bbox_json}\t{m.area}\t{source}\t{stage}\t"
        f"{iou}\t{stab}\t{point}\t{crop}\t{author}\t{version if version else chr(92) + 'N'}\t"
        f"{session}\t{seconds:.2f}\t1\t{review}\t{reviewed_by}\t{at}\t{at}\tf\n"
    )
