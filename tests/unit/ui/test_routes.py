"""The dashboard's routes: the page names this build's asset folder, which is cached for
good, while the page and unversioned files are revalidated. (tests/e2e/test_ui.py checks
the same through a real platform and browser.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from cnai.ui.routes import IMMUTABLE, NO_CACHE, STATIC, build_id, dashboard_routes


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    shutil.copytree(STATIC, root)
    return root


def test_build_id_changes_with_any_files_contents(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = build_id(root)
    assert build_id(root) == before
    (root / "pages" / "jobs.js").write_text("// changed\n", encoding="utf-8")
    assert build_id(root) != before


@pytest.mark.anyio
async def test_page_points_at_its_build_and_files_are_cached_by_version(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    build = build_id(root)
    transport = httpx.ASGITransport(app=Starlette(routes=dashboard_routes(root)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cnai.test") as http:
        page = await http.get("/")
        versioned = await http.get(f"/ui/{build}/app.js")
        plain = await http.get("/ui/app.js")
        stale = await http.get("/ui/000000000000/app.js")

    assert page.headers["cache-control"] == NO_CACHE
    assert f'src="/ui/{build}/app.js"' in page.text
    assert "%ASSETS%" not in page.text
    assert versioned.headers["cache-control"] == IMMUTABLE
    assert versioned.headers["content-type"].startswith("text/javascript")
    assert (plain.headers["cache-control"], plain.content) == (NO_CACHE, versioned.content)
    assert stale.status_code == 404  # an old build's folder is not served as this one
