"""Shared fixtures: real-data runs made once per session (the model loads and UMAP compiles once)."""

# ruff: noqa: E402 - the environment is set before anything is imported

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Before synth is imported: what synth writes by default under the home folder (the embedding, segment and LLM
# caches in ~/.cache/synth, the audit key in ~/.config/synth) goes to a git-ignored folder of the repository
# instead. Set, not defaulted: a developer's own SYNTH_CACHE_DIR is theirs, not the tests'. The folder outlives
# the session so the embedding cache stays warm between runs; delete it to start cold. Subprocesses that the
# tests start (synth run, synth worker) inherit both.
TEST_STATE = Path(__file__).resolve().parent.parent / ".cache" / "test"
os.environ["SYNTH_CACHE_DIR"] = str(TEST_STATE / "synth")
os.environ["SYNTH_AUDIT_KEY_FILE"] = str(TEST_STATE / "audit.key")
os.environ.pop("SYNTH_AUDIT_KEY", None)  # the key file above, not a server's key from the environment
os.environ["SYNTH_DATA_DIR"] = str(TEST_STATE / "data")  # a default SQLite database, never in ~

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text

from synth.app import create_app
from synth.config import SynthConfig, default_cache_dir
from synth.formats import load_contributions
from synth.jobs import Worker
from synth.pipeline import RunResult, run
from synth.service import create_key

FIXTURES = Path(__file__).parent / "fixtures"
POLIS = FIXTURES / "polis-brexit"
PLANTED = FIXTURES / "argkp-uniform-planted.csv"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The session's model cache: the repository's .cache/test/synth, warm from earlier runs (a test that
    needs a cold cache makes its own under tmp_path)."""
    return default_cache_dir()


@pytest.fixture(scope="session")
def polis_run(cache_dir: Path) -> RunResult:
    return run(load_contributions(POLIS), SynthConfig(), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def planted_run(cache_dir: Path) -> RunResult:
    return run(load_contributions(PLANTED), SynthConfig(), cache_dir=cache_dir)


# --- the HTTP API on SQLite and on PostgreSQL (when .ci/run starts one) ---------------------------------

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("SYNTH_TEST_POSTGRES_URL") else [])


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'synth.db'}"
    return os.environ["SYNTH_TEST_POSTGRES_URL"]


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = _url(request.param, tmp_path)
    if request.param == "postgresql":  # a clean schema per test
        from synth.store import make_engine

        with make_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    app = create_app(url, run_worker=False, limits={"body_bytes": 200_000, "contributions": 500, "text_chars": 2000})
    with app.state.db.session() as s:
        _, app.state.admin_key = create_key(s, "admin", None, "test admin")
    with TestClient(app) as client:
        yield client


def h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def make_project(api: TestClient, name: str = "Brexit") -> tuple[str, dict[str, str]]:
    admin = api.app.state.admin_key
    pid = api.post("/v1/projects", json={"name": name}, headers=h(admin)).json()["id"]
    keys = {
        role: api.post(f"/v1/projects/{pid}/keys", json={"role": role}, headers=h(admin)).json()["key"]
        for role in ("facilitator", "reader", "platform")
    }
    keys["admin"] = admin
    return pid, keys


def upload_polis(api: TestClient, pid: str, key: str) -> dict:
    files = {
        "file": ("comments.csv", (POLIS / "comments.csv").read_bytes(), "text/csv"),
        "participants_votes": ("participants-votes.csv", (POLIS / "participants-votes.csv").read_bytes(), "text/csv"),
    }
    r = api.post(f"/v1/projects/{pid}/contributions", files=files, headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()


def work(api: TestClient) -> None:
    assert Worker(api.app.state.db).run_once()


@contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """Serve the app with uvicorn on a free loopback port in a thread; yields the port. For what TestClient
    cannot show: a real browser, streamed bodies, concurrent clients."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


# --- headless Chromium (Debian's package; Playwright never downloads a browser here) -------------------

CHROMIUM = os.environ.get("SYNTH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium calls out to Google's hosts at every start.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()
