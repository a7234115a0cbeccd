"""FastAPI dependencies: the database session of a request, the caller and what it may do, the server's
limits, and a page of a list. Routes take these as parameters and call synth.service; they hold no logic."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session

from synth.api.problems import Problem
from synth.service import CAN, Caller, Limits, authenticate_caller
from synth.store import Database


def database(request: Request) -> Database:
    return request.app.state.db


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed when the route returns and before the response is sent
    (scope="function"), so a failed commit still becomes a problem response."""
    with database(request).session() as s:
        yield s


DB = Annotated[Session, Depends(_session, scope="function")]


def limits(request: Request) -> Limits:
    return request.app.state.limits


def caller(
    request: Request,
    x_api_key: str | None = Header(None, description="Your API key."),
    authorization: str | None = Header(None, description="Or: Bearer <API key>."),
) -> Caller:
    known = getattr(request.state, "caller", None)  # the security middleware checked it before the body
    if known is not None:
        return known
    token = x_api_key or (authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None)
    if not token:
        raise Problem(401, "Unauthorized", "send an API key in X-API-Key or Authorization: Bearer")
    with database(request).session() as s:
        who = authenticate_caller(s, token)
    if who is None:
        raise Problem(401, "Unauthorized", "the API key is not valid")
    return who


def allowed(action: str):  # noqa: ANN201 - a FastAPI dependency
    """The caller, if its key is for this project (else 404: other tenants' ids are not confirmed) and its
    role may do `action` (else 403)."""

    def check(project_id: str, who: Caller = Depends(caller)) -> Caller:
        if not who.sees(project_id):
            raise Problem(404, "Not found", f"no project {project_id}")
        if action not in CAN or not who.may(action):
            raise Problem(403, "Forbidden", f"a {who.role} key may not {action}")
        return who

    return check


def admin(who: Caller = Depends(caller)) -> Caller:
    if who.role != "admin":
        raise Problem(403, "Forbidden", "only an admin key may do this")
    return who


def global_admin(who: Caller = Depends(admin)) -> Caller:
    """Creating projects or reading deletion records is for an admin key bound to no project: a project-bound
    admin key could create projects it then could not see."""
    if who.project_id is not None:
        raise Problem(403, "Forbidden", "only an admin key bound to no project may do this")
    return who


CAN_READ, CAN_UPLOAD, CAN_RUN, CAN_EDIT, CAN_ERASE, CAN_ADMIN = (
    Depends(allowed(a)) for a in ("read", "upload", "run", "edit", "erase", "admin")
)

# --- pages ------------------------------------------------------------------------------------------


class Cursor:
    """Where the next page of one list starts. Opaque to clients (base64url JSON of the list's name and the
    last key of the page before); a cursor of another list, or a made-up one, is a 422."""

    def __init__(self, list_name: str, limit: int, after: Any = None):
        self.list_name, self.limit, self.after = list_name, limit, after

    def next(self, items: list, key: Any) -> str | None:
        """The cursor after `items` (fetched with limit + 1, so a full page knows whether more follow)."""
        if len(items) <= self.limit:
            return None
        body = json.dumps({"l": self.list_name, "a": key(items[self.limit - 1])}, separators=(",", ":"))
        return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    def page(self, items: list, key: Any) -> dict:
        """{"items", "next_cursor"} for a list fetched with `limit + 1` rows."""
        return {"items": items[: self.limit], "next_cursor": self.next(items, key)}

    def window(self, items: list) -> dict:
        """A page of a list held in memory (a result's themes, members, ...): the key is the position."""
        start = self.after + 1 if self.after is not None else 0
        chunk = items[start : start + self.limit + 1]
        return {"items": chunk[: self.limit], "next_cursor": self.next(chunk, key=lambda _: start + self.limit - 1)}


def pages(list_name: str, key_type: type):  # noqa: ANN201 - a FastAPI dependency
    """A dependency reading `limit` and `cursor` for one list, whose keys are of `key_type`."""

    def read(
        limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
        cursor: Annotated[
            str | None, Query(max_length=400, description="`next_cursor` of the page before; omit for the first.")
        ] = None,
    ) -> Cursor:
        if cursor is None:
            return Cursor(list_name, limit)
        try:
            body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if body.get("l") != list_name or not isinstance(body.get("a"), key_type):
                raise ValueError
        except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
            raise Problem(422, "Invalid request", f"cursor is not a next_cursor of this list ({list_name})") from None
        return Cursor(list_name, limit, body["a"])

    return Depends(read)
