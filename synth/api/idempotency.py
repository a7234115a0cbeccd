"""Idempotency-Key on every POST of the API: the same caller sending the same request with the same key gets the
first response again (and nothing is created twice); the same key with a different request is a 409.

A pure ASGI middleware inside the security middleware, so the body it reads is already bounded and the caller
already authenticated. Responses of 500 and above are not kept: a retry after a server error runs again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from synth.store import Database
from synth.store.models import IdempotentResponse

MAX_KEY = 200
KEPT_HEADERS = (b"content-type", b"location")


def _problem(status: int, title: str, detail: str) -> tuple[int, list, bytes]:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    return status, [(b"content-type", b"application/problem+json")], body


class IdempotencyMiddleware:
    def __init__(self, app: Any, database: Callable[[], Database]):
        self.app, self.database = app, database

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        key = headers.get(b"idempotency-key", b"").decode("latin-1").strip()
        if scope["type"] != "http" or scope["method"] != "POST" or not key or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if len(key) > MAX_KEY:
            await _send(send, *_problem(422, "Invalid request", f"Idempotency-Key is at most {MAX_KEY} characters"))
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        owner = hashlib.sha256(headers.get(b"x-api-key", b"")).hexdigest()
        digest = _request_hash(scope, headers.get(b"content-type", b""), body)
        found = await run_in_threadpool(self._find, owner, key)
        if found is not None:
            if found[0] != digest:
                detail = "this Idempotency-Key was used for a different request; use a new key for a new request"
                await _send(send, *_problem(409, "Conflict", detail))
                return
            status, kept, stored = found[1:]
            replay = [(k.encode(), v.encode()) for k, v in kept.items()] + [(b"idempotent-replayed", b"true")]
            await _send(send, status, replay, stored.encode())
            return

        sent = False

        async def replay_body() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        response: dict[str, Any] = {"status": 0, "headers": [], "body": []}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                response["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_body, capture)
        if 0 < response["status"] < 500:
            kept = {k.decode(): v.decode("latin-1") for k, v in response["headers"] if k.lower() in KEPT_HEADERS}
            text = b"".join(response["body"]).decode("utf-8", "replace")
            await run_in_threadpool(self._store, owner, key, digest, response["status"], kept, text)

    def _find(self, owner: str, key: str) -> tuple[str, int, dict, str] | None:
        with self.database().session() as s:
            row = s.scalar(
                select(IdempotentResponse).where(IdempotentResponse.owner == owner, IdempotentResponse.idem_key == key)
            )
            return None if row is None else (row.request_hash, row.status, row.headers, row.body)

    def _store(self, owner: str, key: str, digest: str, status: int, headers: dict, body: str) -> None:
        try:
            with self.database().session() as s:
                s.add(IdempotentResponse(owner=owner, idem_key=key, request_hash=digest, status=status,
                                         headers=headers, body=body))  # fmt: skip
        except IntegrityError:  # a concurrent request with the same key stored first; its response stands
            pass


def _request_hash(scope: dict, content_type: bytes, body: bytes) -> str:
    """What makes two requests the same: path, query, media type and body. A multipart boundary is chosen afresh
    by most clients on a retry, so it is taken out of the body before hashing."""
    media, _, params = content_type.partition(b";")
    boundary = params.split(b"boundary=", 1)[1].strip(b' "') if b"boundary=" in params else b""
    if boundary:
        body = body.replace(boundary, b"BOUNDARY")
    parts = [scope["path"].encode(), scope.get("query_string", b""), media.strip().lower(), body]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


async def _send(send: Callable, status: int, headers: list, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
