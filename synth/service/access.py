"""Who may do what: API keys (created, checked, listed, revoked, rotated), browser sessions, and the
caller a request acts as. A key for project A sees project B as absent, so other tenants' ids cannot be probed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.errors import Conflict
from synth.store.models import ApiKey, WebSession, now

ROLES = ("admin", "facilitator", "reader", "platform")
SESSION_DAYS = 14
CAN = {
    "read": {"admin", "facilitator", "reader", "platform"},
    "upload": {"admin", "facilitator", "platform"},
    "run": {"admin", "facilitator", "platform"},
    "edit": {"admin", "facilitator"},
    "erase": {"admin", "platform"},  # erasure requests come from the platform that collected the words
    "admin": {"admin"},
}


@dataclass(frozen=True)
class Caller:
    """The key a request acts as (from X-API-Key, a bearer token or a browser session)."""

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
    def of(cls, key: ApiKey) -> Caller:
        return cls(key.id, key.prefix, key.role, key.project_id, key.name)

    def sees(self, project_id: str) -> bool:
        return self.project_id is None or self.project_id == project_id

    def may(self, action: str) -> bool:
        return self.role in CAN[action]


# --- keys -------------------------------------------------------------------------------------------


def hash_key(plaintext: str) -> str:
    """Keys are 256 random bits, so an unsalted SHA-256 is enough: there is no dictionary to try, and the
    lookup by hash needs the hash to be deterministic."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(
    s: Session, role: str, project_id: str | None, name: str = "", expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role != "admin" and project_id is None:
        raise ValueError("only an admin key may be unbound to a project")
    plaintext = "sk_" + secrets.token_urlsafe(32)
    key = ApiKey(
        id=repo.new_id(),
        prefix=plaintext[:10],
        key_hash=hash_key(plaintext),
        project_id=project_id,
        role=role,
        name=name,
        expires_at=now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    s.add(key)
    s.flush()
    return key, plaintext


def key_is_live(key: ApiKey | None) -> bool:
    return key is not None and key.revoked_at is None and (key.expires_at is None or key.expires_at > now())


def authenticate(s: Session, plaintext: str) -> ApiKey | None:
    """The live key with this plaintext, or None (unknown, revoked or expired)."""
    digest = hash_key(plaintext)
    key = repo.key_by_hash(s, digest)
    if key is None or not secrets.compare_digest(key.key_hash, digest) or not key_is_live(key):
        return None
    return key


def authenticate_caller(s: Session, plaintext: str) -> Caller | None:
    key = authenticate(s, plaintext)
    return Caller.of(key) if key else None


def revoke_key(s: Session, project_id: str, key_id: str, actor: str) -> ApiKey:
    """Revoked at once: the API refuses it and every browser session signed in with it ends."""
    key = repo.key(s, project_id, key_id)
    if key.revoked_at is None:
        key.revoked_at = now()
        audit(s, project_id, actor, "key.revoke", key.prefix, None, {"name": key.name, "role": key.role})
    return key


def rotate_key(s: Session, project_id: str, key_id: str, actor: str) -> tuple[ApiKey, str]:
    """A new key with the old one's role, name and remaining lifetime; the old one is revoked."""
    old = repo.key(s, project_id, key_id)
    if not key_is_live(old):
        raise Conflict("the key is revoked or expired; create a new one instead")
    days = None
    if old.expires_at is not None:
        days = max(1, (old.expires_at - now()).days)
    new, plaintext = create_key(s, old.role, project_id, old.name, days)
    old.revoked_at = now()
    audit(s, project_id, actor, "key.rotate", old.prefix, None, {"new": new.prefix, "name": old.name})
    return new, plaintext


# --- browser sessions -------------------------------------------------------------------------------


def start_session(s: Session, key: ApiKey) -> str:
    """A new browser session for a live key; returns the id the cookie carries (only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    s.add(WebSession(id_hash=hash_key(sid), key_id=key.id, expires_at=now() + timedelta(days=SESSION_DAYS)))
    return sid


def session_key(s: Session, sid: str) -> ApiKey | None:
    """The key behind a live session, checked on every request: None once signed out, expired or revoked."""
    row = repo.web_session(s, hash_key(sid))
    if row is None or row.ended_at is not None or row.expires_at <= now():
        return None
    key = s.get(ApiKey, row.key_id)
    return key if key_is_live(key) else None


def end_session(s: Session, sid: str) -> None:
    row = repo.web_session(s, hash_key(sid))
    if row is not None and row.ended_at is None:
        row.ended_at = now()
