"""The API's documentation pages, served from installed packages so they work offline: Swagger UI at /docs
and ReDoc at /redoc, with their assets from the `fastapi-offline` package and our start-up script as a file
(so the pages' Content-Security-Policy allows scripts from this origin only)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)
ASSETS = {
    "swagger-ui-bundle.js": ("fastapi_offline", "static/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": ("fastapi_offline", "static/swagger-ui.css", "text/css"),
    "redoc.standalone.js": ("fastapi_offline", "static/redoc.standalone.js", "text/javascript"),
    "docs.js": ("synth", "api/static/docs.js", "text/javascript"),
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{head}</head>
<body>{body}</body></html>"""


def _asset(name: str) -> Path:
    package, path, _ = ASSETS[name]
    return Path(str(files(package).joinpath(path)))


@router.get("/docs")
def swagger() -> HTMLResponse:
    head = '<link rel="stylesheet" href="/docs/assets/swagger-ui.css">'
    body = (
        '<div id="swagger-ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>'
        '<script src="/docs/assets/docs.js"></script>'
    )
    return HTMLResponse(PAGE.format(title="synth API", head=head, body=body))


@router.get("/redoc")
def redoc() -> HTMLResponse:
    body = '<redoc spec-url="/openapi.json"></redoc><script src="/docs/assets/redoc.standalone.js"></script>'
    return HTMLResponse(PAGE.format(title="synth API", head="", body=body))


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    return FileResponse(_asset(name), media_type=ASSETS[name][2], headers={"Cache-Control": "public, max-age=86400"})


def install(app: FastAPI) -> None:
    app.include_router(router)
