"""API keys: who is calling, for which project, with which role. A key for project A sees project B as
absent (404), so ids of other tenants cannot be probed."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Header, Request

from synth.api.problems import Problem
from synth.projects import authenticate

CAN = {
    "read": {"admin", "facilitator", "reader", "platform"},
    "upload": {"admin", "facilitator", "platform"},
    "run": {"admin", "facilitator", "platform"},
    "edit": {"admin", "facilitator"},
    "admin": {"admin"},
}


@dataclass(frozen=True)
class Caller:
    key_id: str
    prefix: str
    role: str
    project_id: str | None  # None: an admin key over every project
    name: str = ""

    @property
    def actor(self) -> str:
        """How the audit log names the caller: the key's given name when it has one."""
        if self.name:  # shortened: the audit log's actor column holds 200 characters
            name = self.name if len(self.name) <= 120 else self.name[:119] + "…"
            return f"{name} ({self.role} key {self.prefix}…)"
        return f"key {self.prefix}… ({self.role})"

    @classmethod
    def of(cls, key) -> Caller:  # noqa: ANN001 - synth.store.models.ApiKey
        return cls(key.id, key.prefix, key.role, key.project_id, key.name)

    def sees(self, project_id: str) -> bool:
        return self.project_id is None or self.project_id == project_id


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
    with request.app.state.db.session() as s:
        key = authenticate(s, token)
        if key is None:
            raise Problem(401, "Unauthorized", "the API key is not valid")
        return Caller.of(key)


def allowed(action: str):  # noqa: ANN201 - a FastAPI dependency
    def check(project_id: str, who: Caller = Depends(caller)) -> Caller:
        if not who.sees(project_id):
            raise Problem(404, "Not found", f"no project {project_id}")
        if who.role not in CAN[action]:
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
