"""The dashboard's files, read into memory once from ``manager/web``.

The pages are plain HTML, CSS and JavaScript modules (no build step, so nothing can ship without
its build), with uPlot and Cytoscape vendored under ``web/vendor``. Serving from this fixed set,
never from the disk by a requested path, means no request can name a file outside it.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html"}


@dataclass(frozen=True)
class WebFile:
    body: bytes
    media_type: str
    etag: str


def load_web_files(root: Path = WEB_DIR) -> dict[str, WebFile]:
    """Every file under ``root`` by its relative POSIX path (read once: the set is fixed and small)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or "__pycache__" in path.parts:
            continue
        body = path.read_bytes()
        media_type = (
            _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        files[path.relative_to(root).as_posix()] = WebFile(
            body, media_type, f'"{hashlib.sha1(body).hexdigest()[:16]}"'
        )
    return files
