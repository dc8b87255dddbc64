"""The dashboard's routes: ``/`` serves the page, ``/ui/`` its static files.

The files are public (they hold no data); everything the page shows comes from the API
with the user's bearer token. Caching: the page itself is ``no-cache`` (revalidated on
every load), and it names its scripts and styles under ``/ui/<build>/``, where
``<build>`` is a hash of the static files' contents, so those may be cached for good: a
new release has a new hash. Plain ``/ui/<file>`` serves the same files, revalidated.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from os import PathLike, stat_result
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cnai.core.server.extensions import RouteContext

STATIC = Path(__file__).parent / "static"
ASSETS_MARK = "%ASSETS%"  # keep in sync with static/index.html
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

# Module scripts must be served as JavaScript whatever the host's mime.types says.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")


def build_id(root: Path = STATIC) -> str:
    """A short hash of every static file's path and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class CachedStaticFiles(StaticFiles):
    """Starlette's static files with one ``Cache-Control`` for all of them."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self.cache_control
        return response


def index_page(build: str, root: Path = STATIC) -> bytes:
    """``index.html`` with its asset URLs pointing at this build's folder."""
    page = (root / "index.html").read_text(encoding="utf-8")
    return page.replace(ASSETS_MARK, f"/ui/{build}").encode()


def dashboard_routes(root: Path = STATIC) -> list[BaseRoute]:
    """``/`` and ``/ui/``, for the files under ``root``."""
    build = build_id(root)
    page = index_page(build, root)

    async def index(request: Request) -> Response:
        return Response(
            page,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": NO_CACHE, "X-Content-Type-Options": "nosniff"},
        )

    return [
        Route("/", index, methods=["GET"]),
        Mount(f"/ui/{build}", app=CachedStaticFiles(root, IMMUTABLE)),
        Mount("/ui", app=CachedStaticFiles(root, NO_CACHE)),
    ]


def route_factory(ctx: RouteContext) -> Sequence[BaseRoute]:
    """The platform's hook (cnai.core.server.extensions): the dashboard needs no state."""
    return dashboard_routes()
