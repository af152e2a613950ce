"""Scale: the platform at growing dataset sizes, on PostgreSQL, over HTTP against gunicorn.

    python benchmarks/bench_scale.py [--sizes 1000,10000] [--samples 40]

(--sizes 1000,10000,100000 takes about an hour on 2 cores, most of it filling 10M masks.)

Starts a throwaway PostgreSQL (scripts/throwaway_pg.sh; or uses --database-url), fills one
dataset by COPY with the synthetic data of benchmarks/scale_fill.py (~100 masks per image, the
stage / source / session mix of the SA paper's engine, real RLE sizes, placeholder files) and
grows it to each size in turn. At each size it measures:

- over HTTP (gunicorn, deploy/gunicorn.conf.py, production settings, one client in turn):
  claiming the next image, saving a mask, the mask list of an image, predict on a cached
  embedding, the first and the last page of a filtered image list, the dataset's statistics
  (the dashboard's endpoint) and the two dashboard pages;
- in a child process (peak RSS from wait4): an SA-1B export of the first ``--export-images``
  images (placeholders of ``--export-image-kib``, ~430 KiB: the size of real photographs),
  cold (per-image documents stale, built on the way) then warm (copied); beside them a plain
  ``tar`` of the same files and one of the files plus their documents, each as a
  ratio to the export; and a training round's export of its masks;
- in this process: an automatic pass's bookkeeping over ``--pass-images`` stage-3 images
  (launch, the first step queueing a chunk of images, storing ~100 masks and the progress of an
  image, reading the progress, completing the pass).

Prints each figure per size and the growth factor between sizes. Numbers depend on the
machine; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from benchmarks.common import free_port, percentiles  # noqa: E402
from benchmarks.scale_http import HttpProbe, start_gunicorn, stop_gunicorn  # noqa: E402

FILL_CHUNK = 5000
PG_SETTINGS = (
    "-c shared_buffers=1GB -c maintenance_work_mem=512MB -c max_wal_size=8GB "
    "-c checkpoint_timeout=30min -c work_mem=32MB"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000", help="images, comma-separated")
    parser.add_argument("--samples", type=int, default=40, help="requests per endpoint")
    parser.add_argument("--slow-samples", type=int, default=3, help="for stats and dashboards")
    parser.add_argument("--export-images", type=int, default=10000)
    parser.add_argument("--pass-images", type=int, default=10000)
    parser.add_argument("--pass-stored", type=int, default=50, help="images whose masks are stored")
    parser.add_argument(
        "--parts", default="http,exports,pass", help="what to measure at each size, comma-separated"
    )
    parser.add_argument(
        "--image-kib",
        type=int,
        default=10,
        help="size of the placeholder JPEGs (but the exported ones, --export-image-kib)",
    )
    parser.add_argument(
        "--export-image-kib",
        type=int,
        default=400,
        help="size of the first --export-images placeholder JPEGs, the ones the exports and the "
        "tars copy: SA-1B's images (1500 x 2250) are hundreds of KiB, and against 10 KiB files "
        "the JSON an export must write is 7 times the images' bytes; 0: --image-kib",
    )
    parser.add_argument(
        "--export-rounds", type=int, default=3, help="warm export / tar rounds (medians)"
    )
    parser.add_argument(
        "--export-dir",
        help="where the exports and the peer tars are written (default: the work folder); "
        "/dev/shm takes the disk's write speed, which varies several-fold on a shared machine, "
        "out of the comparison",
    )
    parser.add_argument(
        "--no-prewarm",
        action="store_true",
        help="do not give each export and tar freshly freed pages to write into (see _prewarm)",
    )
    parser.add_argument("--model", default="vit_b", help="seeded random weights of this type")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: throwaway)")
    parser.add_argument("--out", help="also write the table here")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def base_env(data_dir: Path, model: str) -> dict[str, str]:
    return {
        "SADE_DATA_DIR": str(data_dir),
        "SAM_MODEL_TYPE": model,
        "DJANGO_SETTINGS_MODULE": "deploy.settings",
        "SADE_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SADE_SSL_REDIRECT": "0",
        "SADE_PREDICT_RATE": "100000/min",
    }


def prepare() -> dict:
    """Users, tokens, a second model version, one real image with its embedding (predict)."""
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from PIL import Image as PILImage
    from rest_framework.authtoken.models import Token

    from annotation.models import Dataset, DatasetMembership, Role
    from annotation.services.embeddings import get_or_compute_embedding
    from annotation.services.imports import Candidate, import_images
    from benchmarks.scale_fill import HEIGHT, WIDTH
    from registry.active import get_active_version
    from registry.models import ModelVersion

    users = get_user_model().objects
    admin = users.create_user("bench-admin", password=secrets.token_hex(), is_staff=True)
    dataset = Dataset.objects.create(name="scale")
    DatasetMembership.objects.create(dataset=dataset, user=admin, role=Role.ADMIN)
    annotators = []
    for i in range(8):
        user = users.create_user(f"annotator{i}", password=secrets.token_hex())
        DatasetMembership.objects.create(dataset=dataset, user=user, role=Role.ANNOTATOR)
        annotators.append(user)
    active = get_active_version()
    older = ModelVersion.objects.create(
        name="bench-round-0",
        model_type=active.model_type,
        checkpoint=active.checkpoint,
        encoder_key=active.encoder_key,
        trained_on="synthetic",
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    import_images(dataset, [Candidate("real.png", read=lambda: buf.getvalue())])
    real = dataset.images.get()
    get_or_compute_embedding(real, active)
    session = _session_cookie(admin)
    return {
        "dataset": dataset.pk,
        "real_image": real.pk,
        "admin": admin.pk,
        "annotators": [u.pk for u in annotators],
        "versions": [active.pk, older.pk],
        "admin_token": Token.objects.create(user=admin).key,
        "annotator_token": Token.objects.create(user=annotators[0]).key,
        "session": (settings.SESSION_COOKIE_NAME, session),
        "media_root": str(settings.MEDIA_ROOT),
    }


def _session_cookie(user) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


def grow(
    setup: dict, have: int, want: int, pool, jpeg: bytes, export_jpeg: bytes, export_images: int
) -> tuple[int, float]:
    """Fill the dataset from ``have`` to ``want`` images; returns (masks written, seconds)."""
    import psycopg
    from django.db import connection

    from annotation.services.tallies import recount_tallies
    from benchmarks.scale_fill import FillContext, fill

    ctx = FillContext(
        dataset_id=setup["dataset"],
        media_root=Path(setup["media_root"]),
        annotator_ids=setup["annotators"],
        version_ids=setup["versions"],
        pool=pool,
        jpeg=jpeg,
        export_jpeg=export_jpeg,
        export_images=export_images,
    )
    params = connection.get_connection_params()
    start, masks = time.perf_counter(), 0
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as conn:
        for first in range(have, want, FILL_CHUNK):
            count = min(FILL_CHUNK, want - first)
            masks += fill(conn, ctx, first, count, seed=first)["masks"]
    filled = time.perf_counter() - start
    start = time.perf_counter()
    recount_tallies()
    recount = time.perf_counter() - start
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    print(f"mask tallies recounted after the bulk load in {recount:.1f} s", flush=True)
    return masks, filled


def storage_figures() -> dict[str, float]:
    """What the masks cost PostgreSQL: bytes per mask row (table, TOAST and indexes), and the
    whole database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('annotation_mask'), (SELECT count(*) FROM "
            "annotation_mask), pg_total_relation_size('annotation_masktally'), "
            "pg_database_size(current_database())"
        )
        mask_bytes, masks, tally_bytes, database = cursor.fetchone()
    return {
        "db: bytes per mask row (with indexes)": mask_bytes / masks,
        "db: mask tallies, MiB": tally_bytes / 2**20,
        "db: whole database, MiB": database / 2**20,
    }


def run_child(kind: str, args: dict) -> tuple[dict, float]:
    """Run ``kind`` in a fresh process; returns its JSON answer and its peak RSS in MiB (the
    child's own VmHWM: wait4's ru_maxrss would carry this process's peak across the exec)."""
    command = [sys.executable, __file__, "--child", kind, "--child-args", json.dumps(args)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, cwd=ROOT, check=True)
    answer = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return answer, answer.pop("peak_rss_kib") / 1024


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child_main(kind: str, args: dict) -> None:
    import django

    django.setup()
    if kind == "export":
        answer = _child_export(args)
    elif kind == "round":
        answer = _child_round(args)
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps({**answer, "peak_rss_kib": _peak_rss_kib()}))


class _Enough(Exception):
    pass


PREWARM_CHUNK = 1 << 20


def _prewarm(folder: Path, size: int) -> None:
    """Write ``size`` bytes into a file in ``folder`` and delete it, so the writer that starts
    next finds that many pages freshly freed.

    On a virtual machine whose memory the host backs lazily (the Firecracker VMs this was
    measured on), the first touch of a page the host has not backed, or took back, costs
    ~5 times one it has: in one process, touching 10 GiB ran at ~1 GB/s for the first 1-2
    GiB and ~0.2 GB/s after. Every writer's output goes into new page-cache or tmpfs pages,
    so whichever of the export and the tar happened to get the backed pages (the one run
    right after the other's output was deleted) looked up to 5x faster. Each writer gets the
    same start instead: the export in its own process right before its clock starts, each
    tar right before it is spawned."""
    if size <= 0:
        return
    ballast = folder / ".prewarm"
    chunk = bytes(PREWARM_CHUNK)
    with open(ballast, "wb") as fh:
        for _ in range(-(-size // PREWARM_CHUNK)):
            fh.write(chunk)
    ballast.unlink()


def _child_export(args: dict) -> dict:
    from annotation.models import Dataset
    from annotation.services.sa1b import export_sa1b

    limit, reached, counted = args["limit"], [0], []

    def progress(done: int, total: int) -> None:
        if not counted:  # the first call comes once the selected images are counted
            counted.append(time.perf_counter())
        reached[0] = done
        if limit <= done < total:  # else the export runs to its end (the manifest, the rename)
            raise _Enough

    dataset = Dataset.objects.get(pk=args["dataset"])
    _prewarm(Path(args["out"]).parent, args.get("prewarm", 0))
    start = time.perf_counter()
    try:
        export_sa1b(dataset, args["out"], progress=progress)
    except _Enough:
        pass
    seconds = time.perf_counter() - start
    return {"images": reached[0], "seconds": seconds, "counting": counted[0] - start}


def _child_round(args: dict) -> dict:
    from annotation.models import Dataset
    from modeltrain.round_export import export_round
    from registry.models import ModelVersion

    start = time.perf_counter()
    data, _ = export_round(
        Dataset.objects.get(pk=args["dataset"]),
        Path(args["out"]),
        ModelVersion.objects.get(pk=args["version"]),
        with_embeddings=False,
    )
    masks = data.train_masks + data.heldout_masks
    return {"masks": masks, "seconds": time.perf_counter() - start}


def measure_exports(setup: dict, size: int, args, work: Path) -> dict[str, float]:
    """The SA-1B export cold (every per-image document stale after the bulk load's recount,
    built and written on the way), then ``--export-rounds`` rounds of: the export warm (copied,
    as after a pass), a plain tar of the same image files, and a tar of the image files plus
    their documents (the bytes the export writes, give or take the tar headers). Each figure is
    the median of its rounds: the three take turns, so each sees the machine as the others do
    (right after the bulk load, writeback and the page cache slow whatever runs first)."""
    limit = min(size, args.export_images)
    media = Path(setup["media_root"])
    files = [f"bench/{i}.jpg" for i in range(limit)]
    image_sizes = [(media / f).stat().st_size for f in files]

    def ballast(output: int) -> int:
        """_prewarm's size for a writer of ``output`` bytes (none with --no-prewarm)."""
        return 0 if args.no_prewarm else output

    def export(name: str, output: int) -> tuple[dict, float]:
        out = work / f"export-{size}-{name}"
        os.sync()  # each run starts with no one else's writes to flush (the last one's docs)
        answer = run_child(
            "export",
            {
                "dataset": setup["dataset"],
                "limit": limit,
                "out": str(out),
                "prewarm": ballast(output),
            },
        )
        shutil.rmtree(out, ignore_errors=True)
        return answer

    # What an export writes: the images, their documents (~70 KB per 100 masks before the
    # cold export has measured them) and two tar headers each.
    cold_run = export("cold", sum(image_sizes) + limit * (100_000 + 1024))
    images = cold_run[0]["images"]
    files = files[:images]
    docs, doc_bytes, doc_masks = _doc_files(images)
    output = sum(image_sizes[:images]) + doc_bytes + images * 1024
    data_dir = media.parent
    both = [f"media/{f}" for f in files] + [str(p.relative_to(data_dir)) for p in docs]
    warm_runs, tars, tars_docs = [], [], []
    for _ in range(max(1, args.export_rounds)):
        warm_runs.append(export("warm", output))
        tars.append(images / _tar_seconds(work, media, files, ballast(output)))
        tars_docs.append(images / _tar_seconds(work, data_dir, both, ballast(output)))
    warm_runs.sort(key=lambda run: run[0]["seconds"])
    warm_run = warm_runs[len(warm_runs) // 2]
    cold = images / cold_run[0]["seconds"]
    warm = warm_run[0]["images"] / warm_run[0]["seconds"]
    tar_rate, tar_docs_rate = statistics.median(tars), statistics.median(tars_docs)
    round_out = work / f"round-{size}"
    round_answer, round_rss = run_child(
        "round",
        {"dataset": setup["dataset"], "version": setup["versions"][0], "out": str(round_out)},
    )
    shutil.rmtree(round_out, ignore_errors=True)
    return {
        "SA-1B export, cold (docs built), images/s": cold,
        "SA-1B export, warm (docs copied), images/s": warm,
        "plain tar of the same files, images/s": tar_rate,
        "plain tar of the files + their docs, images/s": tar_docs_rate,
        "x tar / cold export": tar_rate / cold,
        "x tar / warm export": tar_rate / warm,
        "x tar with docs / warm export": tar_docs_rate / warm,
        "SA-1B export warm, images/s after its count": images
        / (warm_run[0]["seconds"] - warm_run[0]["counting"]),
        "SA-1B export, counting the selected images, s": warm_run[0]["counting"],
        "SA-1B export cold, peak RSS MiB": cold_run[1],
        "SA-1B export warm, peak RSS MiB": max(run[1] for run in warm_runs),
        "doc bytes per 100 masks": 100 * doc_bytes / max(doc_masks, 1),
        "round export, masks": round_answer["masks"],
        "round export, s": round_answer["seconds"],
        "round export, peak RSS MiB": round_rss,
    }


def _tar_seconds(work: Path, root: Path, files: list[str], prewarm: int) -> float:
    listing = work / "files.txt"
    listing.write_text("".join(f"{name}\n" for name in files))
    os.sync()
    _prewarm(work, prewarm)
    start = time.perf_counter()
    subprocess.run(["tar", "cf", str(work / "plain.tar"), "-C", str(root), "-T", str(listing)])
    seconds = time.perf_counter() - start
    (work / "plain.tar").unlink()
    return seconds


def _doc_files(images: int) -> tuple[list[Path], int, int]:
    """The current documents of the first ``images`` images with one (the warm export's), their
    bytes and their masks (exported and failed)."""
    from django.db.models import F, Sum

    from annotation.models import ImageDoc, MaskTally
    from annotation.services.sa1b_docs import doc_path

    rows = list(
        ImageDoc.objects.filter(doc_revision=F("revision"))
        .order_by("image_id")
        .values_list("image_id", "revision", "doc_bytes")[:images]
    )
    ids = [image_id for image_id, _, _ in rows]
    masks = sum(
        MaskTally.objects.filter(image_id__in=ids[i : i + 5000]).aggregate(n=Sum("masks"))["n"] or 0
        for i in range(0, len(ids), 5000)
    )
    return [doc_path(i, r) for i, r, _ in rows], sum(b for _, _, b in rows), masks


def measure_pass(setup: dict, size: int, args) -> dict[str, float]:
    """An automatic pass's bookkeeping without the model: launch, queueing, per image the
    masks' replacement and progress, reading the progress, completion."""
    from django.contrib.auth import get_user_model

    from annotation.models import AutomaticPass, AutomaticPassImage, Dataset, Image
    from annotation.services import automatic
    from annotation.services.sa1b_docs import refresh_docs
    from benchmarks.scale_fill import mask_pool
    from engine.automatic import AutomaticMask

    dataset = Dataset.objects.get(pk=setup["dataset"])
    admin = get_user_model().objects.get(pk=setup["admin"])
    ids = list(
        Image.objects.filter(dataset=dataset, stage=3)
        .order_by("pk")
        .values_list("pk", flat=True)[: args.pass_images]
    )
    start = time.perf_counter()
    run = automatic.launch_automatic_pass(dataset, admin, "automatic", image_ids=ids)
    launch = time.perf_counter() - start
    # The first step, as the worker given the launch's message runs it: it queues one chunk
    # (AUTOMATIC_PASS_QUEUE_CHUNK) and itself behind it, not one message per image.
    start = time.perf_counter()
    queued = automatic.run_automatic_pass(run.pk)
    first_step = time.perf_counter() - start
    queueing = first_step / max(queued, 1)
    pool = mask_pool(seed=1)[:100]
    masks = [
        AutomaticMask(
            segmentation=json.loads(m.rle_json),
            bbox=json.loads(m.bbox_json),
            area=m.area,
            predicted_iou=0.9,
            stability_score=0.97,
            point_coords=json.loads(m.point_json),
            crop_box=[0, 0, 1024, 768],
        )
        for m in pool
    ]
    items = AutomaticPassImage.objects.select_related("automatic_pass__model_version")
    per_image, docs = [], []
    for image_id in random.Random(size).sample(ids, min(args.pass_stored, len(ids))):
        item = items.get(automatic_pass=run, image_id=image_id)
        start = time.perf_counter()
        automatic.store_pass_masks(item, masks)
        automatic.finish_if_complete(run.pk)
        per_image.append(time.perf_counter() - start)
        start = time.perf_counter()  # what run_pass_image does next: the image's document
        refresh_docs([image_id])
        docs.append(time.perf_counter() - start)
    progress = []
    for _ in range(10):
        start = time.perf_counter()
        automatic.with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()
        progress.append(time.perf_counter() - start)
    run.items.filter(status="pending").update(status="done")
    start = time.perf_counter()
    automatic.finish_if_complete(run.pk)
    finish = time.perf_counter() - start
    return {
        "pass: launch over N images, s": launch,
        "pass: queueing, ms/image": queueing * 1000,
        "pass: messages queued up front": queued + (queued < len(ids)),
        "pass: first step, ms": first_step * 1000,
        "pass: store 100 masks + progress, p50 ms": percentiles(per_image)[0],
        "pass: then write the image's SA-1B doc, p50 ms": percentiles(docs)[0],
        "pass: read progress, p50 ms": percentiles(progress)[0],
        "pass: completion, ms": finish * 1000,
    }


def print_table(sizes: list[int], results: dict[int, dict[str, float]], out: str | None) -> None:
    names = list(results[sizes[0]])
    header = f"{'figure':<44}" + "".join(f"{f'{s:,} img':>13}" for s in sizes)
    growth = [(a, b) for a, b in zip(sizes, sizes[1:], strict=False)]
    if len(sizes) > 2:
        growth.append((sizes[0], sizes[-1]))
    header += "".join(f"{f'x {_short(b)}/{_short(a)}':>12}" for a, b in growth)
    lines = [header, "-" * len(header)]
    for name in names:
        row = f"{name:<44}"
        for size in sizes:
            value = results[size].get(name)
            row += f"{_cell(value):>13}"
        for a, b in growth:
            va, vb = results[a].get(name), results[b].get(name)
            finite = va and vb is not None and max(va, vb) < float("inf")
            row += f"{vb / va:>12.2f}" if finite else f"{'':>12}"
        lines.append(row)
    text = "\n".join(lines)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return "timeout" if value == float("inf") else f"{value:.1f}"


def _short(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, json.loads(args.child_args))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sade-bench-scale-"))
    work.chmod(0o755)  # the cluster's folder inside belongs to the postgres user when run as root
    data_dir = work / "data"
    data_dir.mkdir()
    pg_dir = work / "postgres"
    env = base_env(data_dir, args.model)
    server = None
    try:
        url = args.database_url
        if not url:
            url = subprocess.run(
                ["bash", "scripts/throwaway_pg.sh", "start", str(pg_dir), *PG_SETTINGS.split()],
                cwd=ROOT,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout.strip()
        env["DATABASE_URL"] = url
        os.environ.update(env)
        from benchmarks.common import setup_django_with_seeded_model
        from benchmarks.scale_fill import mask_pool, placeholder_jpeg

        checkpoint = setup_django_with_seeded_model(data_dir, args.model)
        env["SAM_CHECKPOINT"] = os.environ["SAM_CHECKPOINT"] = str(checkpoint)
        setup = prepare()
        pool, jpeg = mask_pool(), placeholder_jpeg(kib=args.image_kib)
        avg_rle = sum(len(m.rle_json) for m in pool) / len(pool)
        print(f"mask pool: {len(pool)} RLEs, mean {avg_rle:.0f} bytes of JSON", flush=True)
        export_jpeg = placeholder_jpeg(kib=args.export_image_kib) if args.export_image_kib else jpeg
        print(
            f"placeholder images: {len(export_jpeg) / 1024:.0f} KiB the first "
            f"{args.export_images:,} (exported), {len(jpeg) / 1024:.0f} KiB the others",
            flush=True,
        )
        port = free_port()
        server = start_gunicorn(env, port, data_dir / "gunicorn.log")
        probe = HttpProbe(port, setup)
        results: dict[int, dict[str, float]] = {}
        have = 0
        for size in sizes:
            masks, seconds = grow(setup, have, size, pool, jpeg, export_jpeg, args.export_images)
            print(
                f"filled {have:,} -> {size:,} images: {masks:,} masks in {seconds:.0f} s "
                f"({masks / seconds:,.0f} masks/s)",
                flush=True,
            )
            have = size
            parts = args.parts.split(",")
            figures = probe.measure(args.samples, args.slow_samples) if "http" in parts else {}
            figures.update(storage_figures())
            if "exports" in parts:
                sink = Path(tempfile.mkdtemp(dir=args.export_dir)) if args.export_dir else work
                try:
                    figures.update(measure_exports(setup, size, args, sink))
                finally:
                    if sink != work:
                        shutil.rmtree(sink, ignore_errors=True)
            if "pass" in parts:
                figures.update(measure_pass(setup, size, args))
            results[size] = figures
            print_table(sizes[: len(results)], results, args.out)
            print(flush=True)
    finally:
        if server is not None:
            stop_gunicorn(server)
        if not args.database_url:
            subprocess.run(["bash", "scripts/throwaway_pg.sh", "stop", str(pg_dir)], cwd=ROOT)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
