"""The HTTP API: an app factory over the service layer, with the run worker in a background thread."""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from synth import web
from synth.api import openapi, problems
from synth.api.auth import Caller
from synth.api.idempotency import IdempotencyMiddleware
from synth.api.openapi import operation_id
from synth.api.routes import router
from synth.api.security import SecurityMiddleware
from synth.jobs import Worker
from synth.projects import authenticate
from synth.store import Database, upgrade

# body_bytes applies to uploads; every other request body is held to small_body_bytes.
DEFAULT_LIMITS = {
    "body_bytes": 20_000_000,
    "small_body_bytes": 1_000_000,
    "contributions": 50_000,
    "text_chars": 20_000,
    "runs_per_project": 100,
    "queued_runs_per_project": 3,
}


def _limits() -> dict[str, int]:
    return {k: int(os.environ.get(f"SYNTH_MAX_{k.upper()}", v)) for k, v in DEFAULT_LIMITS.items()}


def create_app(
    database_url: str | None = None, run_worker: bool = True, limits: dict[str, int] | None = None
) -> FastAPI:
    """The app; `run_worker` starts the run worker in this process (tests drive a Worker themselves)."""
    db = Database(database_url)
    upgrade(db.engine)
    stop, wake = threading.Event(), threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        thread = None
        if run_worker:
            worker = Worker(db)
            thread = threading.Thread(target=worker.serve, args=(stop, wake), name="synth-worker", daemon=True)
            thread.start()
        app.state.worker_thread = thread
        yield
        stop.set()
        wake.set()
        if thread:
            thread.join(timeout=5)

    app = FastAPI(
        title="synth API",
        version="1.0.0",
        description="Upload contributions, run a traceable synthesis, read and review the results. "
        "Authenticate with an API key (X-API-Key). Errors are RFC 9457 problem details.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.db = db
    app.state.limits = {**_limits(), **(limits or {})}
    app.state.results = OrderedDict()
    app.state.wake = wake.set
    problems.install(app)
    openapi.install(app)
    app.include_router(router)
    web.install(app)
    app.include_router(web.router)
    app.add_middleware(
        SessionMiddleware,
        secret_key=os.environ.get("SYNTH_SECRET_KEY") or secrets.token_urlsafe(32),
        same_site="strict",
        https_only=os.environ.get("SYNTH_HTTPS_ONLY") == "1",
    )

    def authenticate_token(token: str) -> Caller | None:
        with db.session() as s:
            key = authenticate(s, token)
            return Caller.of(key) if key else None

    app.add_middleware(IdempotencyMiddleware, database=lambda: app.state.db)
    # Outermost, so the limits and headers hold for every route, error and redirect.
    app.add_middleware(SecurityMiddleware, limits=lambda: app.state.limits, authenticate=authenticate_token)
    return app
