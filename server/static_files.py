"""The repository's ``static/`` folder: ``static/<folder>/<file>`` is served at ``/<folder>/<file>``.

The widget (``/widget/kokous.js``) is loaded by pages on any site as a module script, which is
fetched in CORS mode: every file answers ``Access-Control-Allow-Origin: *``. Files are kept by
browsers for five minutes, then revalidated by ETag.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
WIDGET_FOLDER = "widget"  # always routed, even before the widget is there

FILE_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "public, max-age=300",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}
# Named here rather than guessed: the system's MIME table may call .js application/javascript.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}


class PublicFiles(StaticFiles):
    async def check_config(self) -> None:
        """A folder that is not there yet answers 404 for its files (starlette raises instead)."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        media_type = MEDIA_TYPES.get(Path(full_path).suffix.lower())
        response = FileResponse(
            full_path, status_code=status_code, stat_result=stat_result, media_type=media_type, headers=FILE_HEADERS
        )
        if not self.is_not_modified(response.headers, Headers(scope=scope)):
            return response
        not_modified = NotModifiedResponse(response.headers)
        not_modified.headers["Access-Control-Allow-Origin"] = "*"
        return not_modified


def static_routes(directory: Path = STATIC_DIR) -> list[Mount]:
    """One mount per folder of ``directory``; put them after every other route."""
    folders = {WIDGET_FOLDER}
    if directory.is_dir():
        folders |= {child.name for child in directory.iterdir() if child.is_dir() and not child.name.startswith(".")}
    return [
        Mount(f"/{name}", app=PublicFiles(directory=directory / name, check_dir=False), name=f"static-{name}")
        for name in sorted(folders)
    ]
