"""The served application: the HTTP API and the review pages over one service layer, the middleware every
request passes, and the run worker in a background thread."""

from __future__ import annotations

import os
import secrets
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from synth import web
from synth.api import docs, openapi, problems
from synth.api.idempotency import IdempotencyMiddleware
from synth.api.routes import install_webhooks, router
from synth.api.security import SecurityMiddleware
from synth.jobs import Worker
from synth.service import Caller, Limits, authenticate_caller
from synth.store import Database, upgrade


def create_app(
    database_url: str | None = None, run_worker: bool = True, limits: dict[str, int] | None = None
) -> FastAPI:
    """The app; `run_worker` starts the run worker in this process (tests drive a Worker themselves).
    `limits` overrides SYNTH_MAX_* (see synth.service.projects.DEFAULT_LIMITS)."""
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
        "Authenticate with an API key (X-API-Key). Errors are RFC 9457 problem details. Lists are paged "
        "with cursors: pass `next_cursor` back as `cursor`.",
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,
        redoc_url=None,
    )
    app.state.db = db
    app.state.limits = Limits.from_env(limits)
    app.state.wake = wake.set
    problems.install(app)
    openapi.install(app)
    app.include_router(router)
    install_webhooks(app)
    docs.install(app)
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
            return authenticate_caller(s, token)

    app.add_middleware(IdempotencyMiddleware, database=lambda: app.state.db)
    # Outermost, so the limits and headers hold for every route, error and redirect.
    app.add_middleware(SecurityMiddleware, limits=lambda: vars(app.state.limits), authenticate=authenticate_token)
    return app
