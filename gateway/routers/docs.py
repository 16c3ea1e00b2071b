"""The API's documentation pages: /docs (Swagger UI) and /redoc (ReDoc), with their scripts and
styles served by the gateway itself. FastAPI's own pages load them from a CDN, so without
internet they were blank. The files are the ones the fastapi-offline package ships, pinned like
any other dependency; the pages are FastAPI's, pointed at them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, Response

from gateway.errors import problem

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/assets"
_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"})

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, render: Callable[..., HTMLResponse], name: str, files: dict[str, str], **options: Any
) -> HTMLResponse:
    """FastAPI's page `render` with the URLs of the OpenAPI document and of the asset `files`
    (option → file name), behind a proxy's root path too."""
    root = request.scope.get("root_path", "")
    urls = {option: f"{root}{ASSETS_PATH}/{file}" for option, file in files.items()}
    return render(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · {name}", **urls, **options
    )


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    files = {
        "swagger_js_url": "swagger-ui-bundle.js",
        "swagger_css_url": "swagger-ui.css",
        "swagger_favicon_url": "favicon.png",
    }
    # No OAuth here: the API is called with plain requests.
    return _page(request, get_swagger_ui_html, "Swagger UI", files, oauth2_redirect_url=None)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    files = {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"}
    return _page(request, get_redoc_html, "ReDoc", files, with_google_fonts=False)


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> Response:
    if name not in _FILES:
        return problem(404, f"no documentation asset {name}")
    return FileResponse(ASSETS / name, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
