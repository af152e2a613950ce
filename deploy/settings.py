"""The one settings module. Everything comes from environment variables through the typed
helpers in deploy.env; with none set, the platform runs on SQLite, a filesystem Celery broker
(a local worker with no server to install) and the CPU.

Read top to bottom: paths and production safety, Django's parts, the database, the REST API,
Celery, the engine, images, retraining, the cache, logging, and last the periodic tasks (they
name settings from the sections above). Each setting is defined once, in its section."""

import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from deploy.env import env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the platform writes: database (SQLite), media, embeddings, checkpoints, exports.
DATA_DIR = env_path("SADE_DATA_DIR", BASE_DIR / "var")

# Development is the default (make run, the tests); SADE_PRODUCTION=1 is secure by default and
# refuses to start without what production needs (deploy/env.example sets it).
PRODUCTION = env_bool("SADE_PRODUCTION", False)
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "" if PRODUCTION else "dev-only-insecure-secret-key")
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"],
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
if PRODUCTION:
    _required = {"DJANGO_SECRET_KEY": SECRET_KEY, "DJANGO_ALLOWED_HOSTS": ALLOWED_HOSTS}
    for _name, _value in _required.items():
        if not _value:
            raise ImproperlyConfigured(
                f"SADE_PRODUCTION=1 needs {_name} in the environment (see deploy/env.example); "
                "a secret key can be made with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))'"
            )
    # TLS ends at the reverse proxy (deploy/Caddyfile), which sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SADE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_HSTS_SECONDS = env_int("SADE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SADE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SADE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading puts the domain in browsers' built-in lists, hard to undo: the site's
        # owner opts in; the deploy check's reminder is silenced until then.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Apps, middleware, URLs, templates ------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # offline Swagger UI assets
    "registry",
    "modeltrain",
    "annotation",
    "frontend",
]

MIDDLEWARE = [
    # Before everything else: the health check answers without host validation or the HTTPS
    # redirect (Docker probes it over plain HTTP on the container's own address), and an
    # oversized body is refused before anything reads it.
    "deploy.health.HealthCheckMiddleware",
    # Outside the rest: any error answer under /api/ is JSON, whoever made it.
    "deploy.api_errors.ApiJsonErrorsMiddleware",
    "deploy.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "deploy.signin.SignInThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "deploy.urls"
WSGI_APPLICATION = "deploy.wsgi.application"
ASGI_APPLICATION = "deploy.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database (SQLite by default, DATABASE_URL for PostgreSQL) ------------------------------------
_sqlite_path = DATA_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{_sqlite_path}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not :memory:) test database, so Celery worker processes started by the
    # integration tests see what the test wrote; a timeout so the web process and the
    # local worker can share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite creates the file but not its folder: without this the first `manage.py migrate`
    # on a fresh SADE_DATA_DIR fails with "unable to open database file".
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts, language and time ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files, media and request sizes --------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
# Behind deploy/Caddyfile: permission-checked downloads are sent by the proxy
# (annotation.api.files); media is never served publicly.
MEDIA_ACCEL_REDIRECT = env_bool("SADE_MEDIA_ACCEL_REDIRECT", False)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# Bodies that are not file uploads (JSON, forms); uploads may be up to MAX_UPLOAD_BYTES in all
# (each file still within SADE_IMPORT_MAX_FILE_BYTES). Larger requests get a 413 naming the limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("SADE_MAX_REQUEST_BYTES", 64 * 1024 * 1024)
MAX_UPLOAD_BYTES = env_int("SADE_MAX_UPLOAD_BYTES", 1024**3)
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("SADE_MAX_UPLOAD_FILES", 1000)

# --- The REST API: authentication, errors, pagination, throttles, schema --------------------------
REST_FRAMEWORK = {
    # Token first: DRF answers a request without credentials with the first class's challenge,
    # so clients get 401 + WWW-Authenticate: Token (session authentication has none: 403).
    # The pages' fetch() calls still sign in by session, with the CSRF token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # No input gets a 500: bounded JSON nesting, bounded ?limit=/?offset=, JSON error bodies
    # with a "detail" (annotation.api.parsers, .pagination, .errors), all documented in the
    # schema (annotation.api.schema).
    "DEFAULT_PARSER_CLASSES": [
        "annotation.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "annotation.api.schema.ApiAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotation.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Client addresses for the per-address throttles (sign-in): behind deploy/Caddyfile the
    # proxy's X-Forwarded-For entry, else the peer itself (a client-sent header is not trusted).
    "NUM_PROXIES": env_int("SADE_NUM_PROXIES", 1 if PRODUCTION else 0),
}
# Predictions per user (annotation.api.throttles): generous for the fastest annotator (a click
# a second is brisk), a stop for a runaway script. "N/s", "N/min" or "N/hour"; empty: no limit.
PREDICT_RATE = env_str("SADE_PREDICT_RATE", "600/min")
# Sign-in attempts (the token endpoint and the sign-in page) per client address: enough for a
# person who mistypes, a stop for password guessing. Over it: 429 with Retry-After.
SIGNIN_RATE = env_str("SADE_SIGNIN_RATE", "10/min")
# "Everything" (the automatic generator on one image, computed in the web request) per user, and
# the largest grid annotators may ask for: with the paper's filters, and with filters below
# EVERYTHING_UNFILTERED_BELOW (every candidate mask then goes through the full post-processing).
# Dataset admins and staff may use up to 32x32 with any filters.
EVERYTHING_RATE = env_str("SADE_EVERYTHING_RATE", "10/min")
EVERYTHING_MAX_GRID = env_int("SADE_EVERYTHING_MAX_GRID", 16)
EVERYTHING_MAX_GRID_UNFILTERED = env_int("SADE_EVERYTHING_MAX_GRID_UNFILTERED", 8)
EVERYTHING_UNFILTERED_BELOW = 0.5
for _name, _rate in (
    ("SADE_PREDICT_RATE", PREDICT_RATE),
    ("SADE_SIGNIN_RATE", SIGNIN_RATE),
    ("SADE_EVERYTHING_RATE", EVERYTHING_RATE),
):
    if _rate and not re.fullmatch(r"[0-9]+/(s|sec|m|min|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(
            f"{_name}={_rate!r}: use N/s, N/min, N/hour or N/day (empty: no limit)"
        )
SPECTACULAR_SETTINGS = {
    "TITLE": "SA Data Engine API",
    "DESCRIPTION": "Datasets, images, masks (COCO RLE), annotator sessions and SAM predictions.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" field with different choices: name their enums.
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "annotation.models.ImageStatus",
        "EmbeddingStatusEnum": "annotation.models.EmbeddingStatus",
        # Imports, exports, automatic passes and training rounds share one set.
        "JobStatusEnum": "annotation.models.JobStatus",
        "StageEnum": "annotation.models.Stage",
        "MaskSourceEnum": "annotation.models.MaskSource",
        "AuditSourceEnum": "annotation.audit_models.Audit.Source",
    },
}

# --- Celery ---------------------------------------------------------------------------------------
# Default: kombu's filesystem transport, a local worker with no server. Production: Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
VISIBILITY_TIMEOUT = env_int("SADE_VISIBILITY_TIMEOUT", 6 * 3600)
_broker_dir = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task (checked below), so a task held by a live worker is not
    # handed out twice; a task whose worker died is handed out again after it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}
# Results and progress live in the database, not the broker.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Tasks declare resource="gpu" / "cpu"; this router sends them to the queue of that name.
CELERY_TASK_ROUTES = ["annotation.routing.route_by_resource"]
# Processes of a Celery worker without --concurrency (None: one per CPU core).
CELERY_WORKER_CONCURRENCY = env_int("SADE_WORKER_CONCURRENCY", 0) or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task running when the broker connection drops goes on; its late ack may be lost with the
# connection, and then the message is delivered again after the visibility timeout, which the
# tasks' idempotence absorbs (tests/integration/test_redis_restart.py).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Publishing rides out a broker restart of ~15 s instead of failing the web request.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 6,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 4,
}
# Hard limits: SADE_TASK_TIME_LIMIT for whole jobs (imports, exports), SADE_IMAGE_TASK_TIME_LIMIT
# for one image's work (an embedding, one image of an automatic pass). Each task's soft limit
# comes earlier (annotation.tasks.soft_limit) so that it records its failure in the database;
# a hard kill could not.
CELERY_TASK_TIME_LIMIT = env_int("SADE_TASK_TIME_LIMIT", 4 * 3600)
IMAGE_TASK_TIME_LIMIT = env_int("SADE_IMAGE_TASK_TIME_LIMIT", 3600)
# An automatic pass queues its images this many at a time, then its own next step behind them
# (annotation.services.automatic.run_automatic_pass): the broker holds a chunk, not millions.
AUTOMATIC_PASS_QUEUE_CHUNK = max(1, env_int("SADE_PASS_QUEUE_CHUNK", 500))
if PRODUCTION and "visibility_timeout" in CELERY_BROKER_TRANSPORT_OPTIONS:
    _longest = max(CELERY_TASK_TIME_LIMIT, IMAGE_TASK_TIME_LIMIT)
    if VISIBILITY_TIMEOUT <= _longest:
        raise ImproperlyConfigured(
            f"SADE_VISIBILITY_TIMEOUT ({VISIBILITY_TIMEOUT} s) must be longer than the longest "
            f"task time limit ({_longest} s), or a running task is handed to a second worker"
        )

# --- The engine -----------------------------------------------------------------------------------
# Which SAM the platform starts from. With SAM_CHECKPOINT pointing at one of Meta's official files
# (python -m engine.checkpoints download vit_b), annotators get real assistance; without one the
# platform cold-starts on an untrained vit_tiny that retraining rounds teach.
SAM_MODEL_TYPE = env_str("SAM_MODEL_TYPE", "vit_b")
SAM_CHECKPOINT = env_str("SAM_CHECKPOINT", "")
SAM_DEVICE = env_str("SAM_DEVICE", "cpu")
# The image encoder's arithmetic (engine.precision): fp32; bf16 (CPU or CUDA: about twice the
# fp32 speed where the CPU has bf16 products, masks at IoU >= 0.99 of fp32's); fp16 (CUDA only).
SAM_PRECISION = env_str("SAM_PRECISION", "fp32")
if SAM_PRECISION not in ("fp32", "bf16", "fp16"):
    raise ImproperlyConfigured(f"SAM_PRECISION must be fp32, bf16 or fp16, got {SAM_PRECISION!r}")
if SAM_PRECISION == "fp16" and not SAM_DEVICE.startswith("cuda"):
    raise ImproperlyConfigured("SAM_PRECISION=fp16 needs SAM_DEVICE=cuda; on a CPU use bf16")
# The encoder through torch.compile (SAM_COMPILE=1): off unless benchmarks/gpu_check.sh shows it
# pays on the machine at hand (compiling costs a minute or more at each process start).
SAM_COMPILE = env_bool("SAM_COMPILE", False)
CHECKPOINT_DIR = env_path("SADE_CHECKPOINT_DIR", DATA_DIR / "checkpoints")
# `make run` downloads Meta's vit_b checkpoint into CHECKPOINT_DIR and activates it when no
# SAM_CHECKPOINT is set (deploy/official_model.py); SADE_AUTO_DOWNLOAD=0 keeps the cold start.
# SADE_CHECKPOINT_URL replaces Meta's download folder (a mirror; tests use a local server).
AUTO_DOWNLOAD = env_bool("SADE_AUTO_DOWNLOAD", True)
CHECKPOINT_URL = env_str("SADE_CHECKPOINT_URL", "")
EMBEDDING_DIR = env_path("SADE_EMBEDDING_DIR", DATA_DIR / "embeddings")
EMBEDDING_CACHE_MAX_BYTES = env_int("SADE_EMBEDDING_CACHE_MAX_BYTES", 20 * 1024**3)
# Per-image SA-1B documents the export copies (annotation.services.sa1b_docs): not under
# MEDIA_ROOT, which a web server may serve.
SA1B_DOC_DIR = env_path("SADE_SA1B_DOC_DIR", DATA_DIR / "sa1b_docs")

# --- Images: import limits and annotators' holds --------------------------------------------------
IMPORT_MAX_PIXELS = env_int("SADE_IMPORT_MAX_PIXELS", 64_000_000)
IMPORT_MAX_FILE_BYTES = env_int("SADE_IMPORT_MAX_FILE_BYTES", 50 * 1024 * 1024)
IMPORT_SHORT_SIDE = env_int("SADE_IMPORT_SHORT_SIDE", 0)  # 0: keep; SA-1B's release used 1500
IMAGE_HOLD_SECONDS = env_int("SADE_IMAGE_HOLD_SECONDS", 30 * 60)

# --- Retraining rounds (modeltrain) ---------------------------------------------------------------
TRAINING_DIR = env_path("SADE_TRAINING_DIR", DATA_DIR / "training")  # exported round folders
# "auto": full fine-tuning (encoder included) on a GPU (SAM_DEVICE=cuda), decoder-only on
# cached embeddings on a CPU; or "full" / "decoder".
TRAINING_MODE = env_str("SADE_TRAINING_MODE", "auto")
TRAINING_STEPS = env_int("SADE_TRAINING_STEPS", 300)
# After a round: "auto" promotes when held-out metrics beat the active version's, "always",
# or "never" (an admin promotes from the admin pages or the API).
TRAINING_PROMOTION = env_str("SADE_TRAINING_PROMOTION", "auto")
# Share of each dataset's images held out for evaluation (never trained on), up to a maximum.
TRAINING_HELDOUT_FRACTION = env_int("SADE_TRAINING_HELDOUT_PERCENT", 10) / 100
TRAINING_HELDOUT_MAX_IMAGES = env_int("SADE_TRAINING_HELDOUT_MAX_IMAGES", 200)
# The nightly round runs on a dataset with at least this many new or changed training masks
# since its last round, at this hour (TIME_ZONE, UTC).
TRAINING_NIGHTLY_MIN_NEW_MASKS = env_int("SADE_TRAINING_NIGHTLY_MIN_NEW_MASKS", 200)
TRAINING_NIGHTLY_HOUR = env_int("SADE_TRAINING_NIGHTLY_HOUR", 2)
TRAINING_PROGRESS_SECONDS = 2.0  # how often a running round writes its progress
# Clicks per held-out mask in a round's evaluation (NoC's usual limit).
TRAINING_EVAL_MAX_CLICKS = env_int("SADE_TRAINING_EVAL_MAX_CLICKS", 20)
# A round is a whole job: SADE_TASK_TIME_LIMIT, which the visibility timeout check covers.
TRAINING_TASK_TIME_LIMIT = CELERY_TASK_TIME_LIMIT

# --- Cache ----------------------------------------------------------------------------------------
# Holds the previous click's low-res logits between predict calls, so it must be shared by every
# web process: a file cache by default, Redis in production.
CACHE_URL = env_str("SADE_CACHE_URL", "")
if CACHE_URL.startswith("redis://"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "deploy.cache.UncompressedFileCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }

# --- Logging --------------------------------------------------------------------------------------
# Kept out of a command's output: kombu's "No hostname was supplied" (the filesystem broker has no
# host, by design) and, when tasks run inline (eager), Celery's line per finished task. Workers log
# their tasks through Celery's own logging setup, unchanged.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "not_no_hostname": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: not record.getMessage().startswith("No hostname was"),
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SADE_LOG_LEVEL", "INFO")},
    "loggers": {
        "kombu.connection": {"filters": ["not_no_hostname"]},
        **({"celery.app.trace": {"level": "WARNING"}} if CELERY_TASK_ALWAYS_EAGER else {}),
    },
}

# --- Periodic tasks (celery beat) -----------------------------------------------------------------
# Run by `celery -A deploy.celery beat` (one per installation).
CELERY_BEAT_SCHEDULE = {
    "expire-holds": {"task": "annotation.expire_holds", "schedule": 300.0},
    "fail-lost-jobs": {"task": "annotation.fail_lost_jobs", "schedule": 900.0},
    "sweep-sa1b-docs": {
        "task": "annotation.sweep_sa1b_docs",
        "schedule": crontab(minute=30, hour=(TRAINING_NIGHTLY_HOUR + 12) % 24),
    },
    "nightly-training-rounds": {
        "task": "modeltrain.nightly_training_rounds",
        "schedule": crontab(minute=0, hour=TRAINING_NIGHTLY_HOUR),
    },
}
