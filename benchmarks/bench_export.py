"""SA-1B export throughput and peak memory, beside the floor of writing the same image files
into a tar with nothing else, in the same run.

    python benchmarks/bench_export.py [--images 1000] [--masks 100] [--shard-size 1000]
                                      [--width 2250 --height 1500]

Synthetic data is created directly in the database in bulk: JPEG images (2250x1500 by default,
files of about SA-1B's size; ``--width 128 --height 96`` gives 5 KB thumbnails, the case where
the database read of the masks dominates) and ``--masks``
random-ish elliptic masks per image, sized to the image, with the automatic pass's fields
(scores, point, crop box), so the export does no per-mask pixel work beyond what SA-1B's fields
need. With tiny images the floor is a few kilobytes a file, so the export's time is mostly
reading 100 mask rows per image from the database; with SA-1B-sized files it is copying them. Each
step runs in a forked child; its peak memory is the growth of the resident set over its own
at the start (Linux); run with --images 1000 and 5000 to see that it stays flat. Everything
lives in a temporary data directory (SQLite, media, output), removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import resource
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

BLOB_POOL = 400
JPEG_VARIANTS = 16
# Grain, so that JPEG files have a photo's size rather than a flat gradient's.
NOISE_SIGMA = 4.0


def setup_django(data_dir: Path) -> None:
    os.environ["SADE_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def jpeg_variants(width: int, height: int, rng: np.random.Generator) -> list[bytes]:
    from PIL import Image as PILImage

    out = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(JPEG_VARIANTS):
        rgb = np.stack([(xx * (i + 1)) % 255, (yy * 3 + i * 9) % 255, (xx + yy) % 255], -1)
        rgb = np.clip(rgb + rng.normal(0, NOISE_SIGMA, rgb.shape), 0, 255)
        buf = io.BytesIO()
        PILImage.fromarray(rgb.astype(np.uint8)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def blob_pool(
    width: int, height: int, rng: np.random.Generator
) -> list[tuple[dict, list[float], int, list[float]]]:
    """(rle, bbox, area, centre) of random ellipses, 2% to 25% of the image's width across."""
    from engine import rle as rle_codec

    yy, xx = np.mgrid[0:height, 0:width]
    scale = width / 128
    pool = []
    for _ in range(BLOB_POOL):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(1.5, 16) * scale, rng.uniform(1.5, 16) * scale
        pixels = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        if not pixels.any():
            pixels[int(cy) % height, int(cx) % width] = True
        rle = rle_codec.encode(pixels)
        pool.append((rle, rle_codec.bbox_xywh(rle), rle_codec.area(rle), [cx, cy]))
    return pool


def create_data(
    n_images: int, n_masks: int, width: int = 128, height: int = 96
) -> tuple[object, list[Path]]:
    """A dataset of n_images images with n_masks masks each; returns it and the image files."""
    from django.conf import settings
    from django.db import transaction

    from annotation.models import Dataset, Image, Mask

    rng = np.random.default_rng(0)
    variants, pool = jpeg_variants(width, height, rng), blob_pool(width, height, rng)
    dataset = Dataset.objects.create(name=f"bench-{n_images}")
    media = Path(settings.MEDIA_ROOT)
    files = []
    rows = []
    for i in range(n_images):
        data = variants[i % JPEG_VARIANTS]
        relpath = f"images/{dataset.pk}/bench/{i:07d}.jpg"
        path = media / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files.append(path)
        digest = hashlib.sha256(f"{i}".encode()).hexdigest()
        rows.append(
            Image(
                dataset=dataset,
                file=relpath,
                original_name=f"{i}.jpg",
                sha256=digest,
                content_sha256=digest,
                format="JPEG",
                width=width,
                height=height,
                file_size=len(data),
                stage=3,
                status="done",
            )
        )
    with transaction.atomic():
        Image.objects.bulk_create(rows, batch_size=1000)
    whole = [0.0, 0.0, float(width), float(height)]
    image_ids = list(Image.objects.filter(dataset=dataset).values_list("pk", flat=True))
    for start in range(0, len(image_ids), 100):
        masks = []
        for image_id in image_ids[start : start + 100]:
            for k in rng.integers(0, BLOB_POOL, n_masks):
                rle, bbox, area, centre = pool[int(k)]
                masks.append(
                    Mask(
                        image_id=image_id,
                        rle=rle,
                        bbox=bbox,
                        area=area,
                        source="automatic",
                        stage=3,
                        predicted_iou=0.9,
                        stability_score=0.96,
                        point_coords=[centre],
                        crop_box=whole,
                    )
                )
        with transaction.atomic():
            Mask.objects.bulk_create(masks, batch_size=2000)
    return dataset, files


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def in_child(fn) -> tuple[float, float]:
    """(seconds, peak resident memory growth in MiB) of fn() run in a forked child: its peak
    over its resident set at the start, not the data creation's (ru_maxrss is a lifetime
    maximum)."""
    from django.db import connections

    connections.close_all()  # the child opens its own
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 1
        try:
            base = rss_mib()
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            os.write(write_end, f"{seconds} {peak - base}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    answer = os.read(read_end, 128).split()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(answer) != 2:
        raise SystemExit(f"the measured step failed (status {status})")
    return float(answer[0]), float(answer[1])


def tar_files_only(files: list[Path], out: Path) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in files:
            archive.add(path, arcname=path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--masks", type=int, default=100, help="masks per image")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per shard")
    parser.add_argument("--width", type=int, default=2250, help="image width (SA-1B's size)")
    parser.add_argument("--height", type=int, default=1500, help="image height in pixels")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="sade-bench-export-"))
    try:
        setup_django(data_dir)
        from annotation.services.sa1b import export_sa1b

        start = time.perf_counter()
        dataset, files = create_data(args.images, args.masks, args.width, args.height)
        image_mib = sum(path.stat().st_size for path in files) / 2**20
        print(
            f"created {args.images} images ({args.width}x{args.height}, {image_mib:.1f} MiB) "
            f"x {args.masks} masks in {time.perf_counter() - start:.1f} s"
        )
        floor_s, floor_mib = in_child(lambda: tar_files_only(files, data_dir / "floor.tar"))
        out = data_dir / "export"
        export_s, export_mib = in_child(
            lambda: export_sa1b(dataset, out, shard_size=args.shard_size)
        )
        masks = args.images * args.masks
        export_bytes = sum(p.stat().st_size for p in out.iterdir())
        print(f"images only into a tar: {floor_s:7.2f} s, peak +{floor_mib:6.1f} MiB resident")
        print(
            f"SA-1B export:           {export_s:7.2f} s, peak +{export_mib:6.1f} MiB resident, "
            f"{masks / export_s:,.0f} masks/s, {args.images / export_s:,.0f} images/s, "
            f"{export_bytes / 2**20:.1f} MiB written"
        )
        print(f"export / images-only time: {export_s / floor_s:.1f}x")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
