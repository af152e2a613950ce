"""Sending a stored file (an image, an export's shard) after the view has checked permissions.

By default Django streams the file itself. Behind the reverse proxy of deploy/docker-compose.yml
(SADE_MEDIA_ACCEL_REDIRECT=1) the answer is an empty response with ``X-Accel-Redirect`` naming
the file under MEDIA_ROOT, and the proxy sends it from the shared volume (deploy/Caddyfile): a
multi-gigabyte shard then does not hold a web worker for the whole download, and media stays
private, since the proxy serves it only on such an answer and has no public media location."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpResponse
from django.utils.http import content_disposition_header


def file_response(
    path: Path,
    *,
    content_type: str,
    as_attachment: bool = False,
    filename: str | None = None,
) -> HttpResponse:
    media_root = Path(settings.MEDIA_ROOT).resolve()
    resolved = Path(path).resolve()
    if settings.MEDIA_ACCEL_REDIRECT and resolved.is_relative_to(media_root):
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = "/" + quote(resolved.relative_to(media_root).as_posix())
        disposition = content_disposition_header(as_attachment, filename or resolved.name)
        if as_attachment and disposition:
            response["Content-Disposition"] = disposition
        return response
    return FileResponse(
        open(path, "rb"),
        as_attachment=as_attachment,
        filename=filename or "",
        content_type=content_type,
    )
