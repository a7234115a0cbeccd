"""Webhooks: a platform is told when its run ends instead of polling.

A project's admin allow-lists the hosts callbacks may reach (`host` or `host:port`) and gets a signing
secret; a run may then carry a `callback_url` on an allowed host. When the run ends (succeeded, failed or
cancelled) a delivery is queued in the same transaction; the worker POSTs it with
`X-Synth-Signature: sha256=<HMAC-SHA256 of the body with the secret>`, retries a failure or a non-2xx answer
with back-off (30 s, 2 min, 8 min, 32 min, then gives up), and records every attempt, which the API shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.errors import Invalid
from synth.store.models import Run, WebhookDelivery, now

log = logging.getLogger("synth.webhooks")
BACKOFF = (30, 120, 480, 1920)  # seconds before attempts 2..5
EVENT = "run.finished"


def host_of(url: str) -> str:
    """`host` or `host:port` (a default port left out), lower case; '' when the URL is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    port = parts.port if parts.port not in (None, default) else None
    return parts.hostname.lower() + (f":{port}" if port else "")


def set_hosts(s: Session, project_id: str, hosts: list[str], rotate: bool, actor: str) -> tuple[list[str], str | None]:
    """Set the allow-list; a secret is made on first use (or when `rotate`) and returned that once."""
    project = repo.project(s, project_id)
    clean = sorted({h.strip().lower() for h in hosts if h.strip()})
    project.webhook_hosts = clean
    shown = None
    if project.webhook_secret is None or rotate:
        project.webhook_secret = shown = "whsec_" + secrets.token_urlsafe(32)
    audit(s, project_id, actor, "webhooks.set", project_id, None, {"hosts": clean, "secret_rotated": bool(shown)})
    return clean, shown


def check_callback(s: Session, project_id: str, url: str) -> None:
    """A callback must be http(s) on a host the project allow-listed: the server never calls elsewhere."""
    host = host_of(url)
    allowed = repo.project(s, project_id).webhook_hosts or []
    if not host:
        raise Invalid("callback_url must be an http or https URL", ["callback_url"])
    if host not in allowed:
        raise Invalid(
            f"callback_url host {host!r} is not on this project's webhook allow-list "
            "(PUT /v1/projects/{id}/webhooks)",
            ["callback_url"],
        )


def on_run_end(s: Session, run: Run) -> None:
    """Queue the run.finished event for a run with a callback (called where a run reaches its final status)."""
    if not run.callback_url:
        return
    body = {
        "event": EVENT,
        "run": {
            "id": run.id,
            "project_id": run.project_id,
            "status": run.status,
            "error": run.error,
            "finished_at": (run.finished_at or now()).isoformat(),
        },
    }
    s.add(
        WebhookDelivery(
            id=repo.new_id(),
            run_id=run.id,
            event=EVENT,
            url=run.callback_url,
            body=json.dumps(body, sort_keys=True, separators=(",", ":")),
            status="pending",
            attempts=[],
            next_at=now(),
        )
    )


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver_due(db, client: httpx.Client | None = None, limit: int = 20) -> int:  # noqa: ANN001 - Database
    """Send the deliveries that are due; returns how many were attempted. Each is sent outside any
    transaction (a slow receiver holds no lock) and its outcome stored after."""
    with db.session() as s:
        due = [(d.id, d.url, d.body, repo.secret_of_run(s, d.run_id)) for d in repo.due_deliveries(s, now(), limit)]
    if not due:
        return 0
    own = client is None
    client = client or httpx.Client(timeout=10.0, follow_redirects=False)
    try:
        for delivery_id, url, body, secret in due:
            attempt: dict = {"at": now().isoformat()}
            try:
                answer = client.post(
                    url,
                    content=body.encode(),
                    headers={
                        "content-type": "application/json",
                        "x-synth-event": EVENT,
                        "x-synth-delivery": delivery_id,
                        "x-synth-signature": signature(secret or "", body.encode()),
                    },
                )
                attempt["status_code"] = answer.status_code
                ok = 200 <= answer.status_code < 300
            except httpx.HTTPError as exc:
                attempt["error"] = type(exc).__name__
                ok = False
            with db.session() as s:
                d = s.get_one(WebhookDelivery, delivery_id)
                d.attempts = [*d.attempts, attempt]
                if ok:
                    d.status, d.next_at = "delivered", None
                elif len(d.attempts) > len(BACKOFF):
                    d.status, d.next_at = "failed", None
                else:
                    d.next_at = now() + timedelta(seconds=BACKOFF[len(d.attempts) - 1])
    finally:
        if own:
            client.close()
    return len(due)
