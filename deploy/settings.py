"""The one settings module. Everything comes from environment variables through the typed
helpers in deploy.env; with none set, the platform runs on SQLite, a filesystem Celery broker
(a local worker with no server to install) and the CPU."""

from pathlib import Path

import dj_database_url

from deploy.env import env_bool, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the platform writes: database (SQLite), media, embeddings, checkpoints, exports.
DATA_DIR = env_path("SADE_DATA_DIR", BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", True)
PRODUCTION = env_bool("SADE_PRODUCTION", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "" if PRODUCTION else "dev-only-insecure-secret-key")
if PRODUCTION:
    if not SECRET_KEY:
        raise RuntimeError("SADE_PRODUCTION=1 needs DJANGO_SECRET_KEY in the environment")
    DEBUG = env_bool("DJANGO_DEBUG", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

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
    "modeltrain",
    "annotation",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("SADE_MAX_REQUEST_BYTES", 64 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("SADE_MAX_UPLOAD_FILES", 1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SA Data Engine API",
    "DESCRIPTION": "Datasets, images, masks (COCO RLE), annotator sessions and SAM predictions.",
    "VERSION": "0.1.0",
}

# --- Celery -------------------------------------------------------------------------------------
# Default: kombu's filesystem transport, a local worker with no server. Production: Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest task, so a task held by a live worker is not handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("SADE_VISIBILITY_TIMEOUT", 6 * 3600)
    }
# Results and progress live in the database, not the broker.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = env_int("SADE_TASK_TIME_LIMIT", 4 * 3600)

# --- The engine -----------------------------------------------------------------------------------
# Which SAM the platform starts from. With SAM_CHECKPOINT pointing at one of Meta's official files
# (python -m engine.checkpoints download vit_b), annotators get real assistance; without one the
# platform cold-starts on an untrained vit_tiny that retraining rounds teach.
SAM_MODEL_TYPE = env_str("SAM_MODEL_TYPE", "vit_b")
SAM_CHECKPOINT = env_str("SAM_CHECKPOINT", "")
SAM_DEVICE = env_str("SAM_DEVICE", "cpu")
CHECKPOINT_DIR = env_path("SADE_CHECKPOINT_DIR", DATA_DIR / "checkpoints")
EMBEDDING_DIR = env_path("SADE_EMBEDDING_DIR", DATA_DIR / "embeddings")
EMBEDDING_CACHE_MAX_BYTES = env_int("SADE_EMBEDDING_CACHE_MAX_BYTES", 20 * 1024**3)

# --- Import ---------------------------------------------------------------------------------------
IMPORT_MAX_PIXELS = env_int("SADE_IMPORT_MAX_PIXELS", 64_000_000)
IMPORT_MAX_FILE_BYTES = env_int("SADE_IMPORT_MAX_FILE_BYTES", 50 * 1024 * 1024)
IMPORT_SHORT_SIDE = env_int("SADE_IMPORT_SHORT_SIDE", 0)  # 0: keep; SA-1B's release used 1500
IMAGE_HOLD_SECONDS = env_int("SADE_IMAGE_HOLD_SECONDS", 30 * 60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("SADE_LOG_LEVEL", "INFO")},
}

# --- Cache ---------------------------------------------------------------------------------------
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

# --- Added by the annotation/API helper (issue 3) -----------------------------------------------
# Tasks declare resource="gpu" / "cpu"; this router sends them to the queue of that name.
CELERY_TASK_ROUTES = ["annotation.routing.route_by_resource"]
# Offline Swagger UI assets.
INSTALLED_APPS += ["drf_spectacular_sidecar"]
SPECTACULAR_SETTINGS |= {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three models have a "status" field with different choices: name their enums.
    "ENUM_NAME_OVERRIDES": {
        "ImageStatusEnum": "annotation.models.ImageStatus",
        "ImportJobStatusEnum": "annotation.models.ImportJob.Status",
        "EmbeddingStatusEnum": "annotation.models.EmbeddingStatus",
    },
}
