"""gunicorn settings for the web server (deploy/docker-compose.yml, benchmarks/bench_load.py):
``gunicorn -c deploy/gunicorn.conf.py deploy.wsgi:application``. Sizes come from the environment.

Predict is CPU-bound in PyTorch (the mask decoder) and holds the GIL only in short stretches,
so a few processes of a few threads each, with one torch thread per process, use the cores
best: SADE_WEB_WORKERS about the number of cores given to the web server, SADE_WEB_THREADS 4
to 8 to overlap database and network waits, SADE_WEB_TORCH_THREADS 1 (more threads per
decode only make concurrent decodes fight over the same cores).
"""

import os

bind = os.environ.get("SADE_WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("SADE_WEB_WORKERS", "2"))
threads = int(os.environ.get("SADE_WEB_THREADS", "4"))
torch_threads = int(os.environ.get("SADE_WEB_TORCH_THREADS", "1"))
# Long enough for an upload of SADE_MAX_UPLOAD_BYTES or a first click that computes an
# embedding on the CPU; requests are otherwise tens of milliseconds.
timeout = int(os.environ.get("SADE_WEB_TIMEOUT", "300"))
graceful_timeout = 30
# The worker heartbeat files in memory, not on a container's overlay filesystem (which can stall).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("SADE_WEB_LOG_LEVEL", "info")
# Workers start lean and load the model on their first predict (never at import).
preload_app = False


def post_fork(server, worker):
    # OMP_NUM_THREADS must be set before torch is imported to cover its OpenMP pool too.
    os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(torch_threads))
    import torch

    torch.set_num_threads(torch_threads)
