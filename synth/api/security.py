"""What every response and every request body goes through before any handler runs.

A pure ASGI middleware, so that it acts on the byte stream itself:
- security headers on every response (a handler's own Content-Security-Policy wins over the default);
- the body limit is enforced while the body streams in: a declared Content-Length over the limit is refused at
  once, and a chunked body is cut off at the limit, so memory never holds more than the limit;
- a request to /v1 that carries a body is authenticated before one byte of it is read: a caller without a
  valid key costs one indexed lookup, not the upload.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from synth.api.problems import PROBLEM

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# No script anywhere: the pages are server-rendered forms and links.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc (synth.api.docs): scripts from this origin only; both set inline styles, and ReDoc
# starts a web worker from a blob.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
    b"cross-origin-opener-policy": b"same-origin",
}
UPLOAD_PATHS = re.compile(r"^/(v1/projects/[^/]+/contributions|web/projects/[^/]+/upload)$")
WEB_UPLOAD = re.compile(r"^/web/projects/([^/]+)/upload$")
log = logging.getLogger("synth.api")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def _problem(status: int, title: str, detail: str, path: str) -> tuple[Message, Message]:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail, "instance": path})
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body.encode()}


def _csp_for(path: str) -> str:
    if path.startswith("/web"):
        return PAGE_CSP
    if path in ("/docs", "/redoc") or path.startswith("/docs/assets/"):
        return DOCS_CSP
    return DEFAULT_CSP


def api_token(headers: dict[bytes, bytes]) -> str | None:
    """The key sent in X-API-Key or Authorization: Bearer, if any."""
    if headers.get(b"x-api-key"):
        return headers[b"x-api-key"].decode("latin-1")
    auth = headers.get(b"authorization", b"").decode("latin-1")
    return auth[7:] if auth.lower().startswith("bearer ") else None


class SecurityMiddleware:
    """Headers, streaming body limits and authentication before the body; see the module docstring."""

    def __init__(self, app: Any, limits: Callable[[], dict[str, int]], authenticate: Callable[[str], Any]):
        self.app, self.limits, self.authenticate = app, limits, authenticate

    def _limit(self, path: str) -> int:
        lim = self.limits()
        return lim["body_bytes"] if UPLOAD_PATHS.match(path) else lim["small_body_bytes"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if root and scope["path"].startswith(root) else scope["path"]
        headers = {k.lower(): v for k, v in scope["headers"]}
        csp = _csp_for(path).encode()

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS.items() if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        async def refuse(status: int, title: str, detail: str) -> None:
            start, body = _problem(status, title, detail, path)
            await send_with_headers(start)
            await send(body)

        limit = self._limit(path)
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            if m := WEB_UPLOAD.match(path):  # a browser: back to its page, which says why
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", f"{root}/web/projects/{m.group(1)}?error=too-large".encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            await refuse(413, "Content too large", f"the body is {declared} bytes; the limit is {limit}")
            return
        # any Transfer-Encoding means a body (servers differ in how they spell 'chunked')
        has_body = declared not in ("", "0") or b"transfer-encoding" in headers
        if has_body and path.startswith("/v1/"):
            token = api_token(headers)
            try:
                caller = await to_thread.run_sync(self.authenticate, token) if token else None
            except OperationalError:
                log.warning("database unavailable while authenticating %s", path)
                await refuse(503, "Service unavailable", "the database is not reachable; retry")
                return
            if caller is None:
                detail = "the API key is not valid" if token else "send an API key in X-API-Key or Authorization"
                await refuse(401, "Unauthorized", detail)
                return
            scope.setdefault("state", {})["caller"] = caller

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception:
            # Starlette's last-resort handler sits outside this middleware: answer here, headers included
            log.exception("unhandled error on %s", path)
            if not started:
                await refuse(500, "Internal server error", "an unexpected error; it has been logged")
