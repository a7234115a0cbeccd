"""Replays the security review's findings against the API, the worker and the service layer (SQLite, and
PostgreSQL where .ci/run starts one), and asserts the fixed behaviour. The review pages' XSS replay in
Chromium is tests/test_security_pages.py; hostile input files are tests/test_ingest_hostile.py."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select as sql_select
from sqlalchemy import text

from eval.security import stream_chunked
from synth.app import create_app
from synth.config import SynthConfig
from synth.jobs import Worker
from synth.service import create_key, create_project, verify_chain
from synth.store import Database
from synth.store.models import ApiKey, AuditEvent, Result, Run, now
from tests.conftest import BACKENDS, POLIS, h, make_project, serving, upload_polis, work

COMMENTS = POLIS / "comments.csv"
LOOPBACK = pytest.mark.enable_socket  # a real server on 127.0.0.1; nothing leaves the machine


def rss_mb() -> float:
    """This process's resident memory (the server runs in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# --- a real server on loopback, for what TestClient cannot show (streaming, concurrency) -----------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    limits = {"body_bytes": 5_000_000, "small_body_bytes": 100_000, "contributions": 50_000, "text_chars": 5_000}
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('live') / 'synth.db'}", run_worker=False, limits=limits)
    with app.state.db.session() as s:
        _, admin = create_key(s, "admin", None, "live admin")
        p = create_project(s, "Live", "test setup")
        _, facilitator = create_key(s, "facilitator", p.id, "live facilitator")
    with serving(app) as port:
        yield {"port": port, "url": f"http://127.0.0.1:{port}", "admin": admin, "key": facilitator, "project": p.id}


@LOOPBACK
def test_unauthenticated_huge_body_is_refused_before_it_is_read(live: dict) -> None:
    before = rss_mb()
    status, sent_mb = stream_chunked(live["port"], "/v1/projects", {"content-type": "application/json"}, 300)
    assert status == 401
    assert sent_mb < 100  # answered long before the 300 MB were sent
    assert rss_mb() - before < 60
    status, _ = stream_chunked(
        live["port"], "/v1/projects", {"content-type": "application/json", "x-api-key": "sk_wrong"}, 300
    )
    assert status == 401


@LOOPBACK
def test_authenticated_huge_body_is_cut_off_at_the_limit(live: dict) -> None:
    before = rss_mb()
    url = f"/v1/projects/{live['project']}/contributions"
    headers = {"content-type": "application/json", "x-api-key": live["key"]}
    status, sent_mb = stream_chunked(live["port"], url, headers, 400)
    assert status == 413 and sent_mb < 200
    assert rss_mb() - before < 60
    # a declared length over the limit is refused at once; a small body limit holds for non-upload routes
    with httpx.Client(base_url=live["url"], headers={"x-api-key": live["admin"]}) as client:
        r = client.post(
            "/v1/projects", content=b"{" + b" " * 200_000 + b"}", headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


@LOOPBACK
def test_a_large_upload_does_not_stall_other_requests(live: dict) -> None:
    rows = COMMENTS.read_text(encoding="utf-8").splitlines()[1:]
    import csv
    import io

    texts = [r[-1] for r in csv.reader(io.StringIO("\n".join(rows)))]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text"])
    for i in range(20_000):
        writer.writerow([f"r{i}", f"{texts[i % len(texts)]} ({i})"])
    body = out.getvalue().encode()
    assert len(body) < 5_000_000
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=live["url"], headers={"x-api-key": live["key"]}, timeout=30) as client:
            while not done.is_set():
                t0 = time.perf_counter()
                assert client.get(f"/v1/projects/{live['project']}").status_code == 200
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.perf_counter()
    with httpx.Client(base_url=live["url"], headers={"x-api-key": live["key"]}, timeout=120) as client:
        r = client.post(f"/v1/projects/{live['project']}/contributions", files={"file": ("big.csv", body, "text/csv")})
    upload_s = time.perf_counter() - t0
    done.set()
    poller.join()
    assert r.status_code == 200 and r.json()["created"] == 20_000, r.text
    assert upload_s > 1.0  # long enough that a blocked event loop would show
    # a blocked event loop would hold a request for the whole upload; the GIL-sharing worker thread may delay
    # one by a fraction of it on a busy machine, so the bound is a share of the upload, not a fixed second
    assert len(latencies) > 5 and max(latencies) < upload_s / 2, (upload_s, max(latencies))


# --- run configuration, cancellation, the worker ------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    ['{"umap_epochs": 100000000}', '{"n_keywords": -3}', '{"seed": -1}', '{"min_support": NaN}', '{"batch_size": 0}'],
)
def test_unbounded_config_is_refused(api: TestClient, config: str) -> None:
    pid, keys = make_project(api)
    one = {"contributions": [{"id": "1", "text": "x"}]}
    api.post(f"/v1/projects/{pid}/contributions", json=one, headers=h(keys["platform"]))
    headers = {**h(keys["platform"]), "content-type": "application/json"}
    r = api.post(f"/v1/projects/{pid}/runs", content=f'{{"config": {config}}}', headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert api.get(f"/v1/projects/{pid}/runs", headers=h(keys["reader"])).json()["items"] == []


def test_openapi_shows_config_bounds(api: TestClient) -> None:
    props = api.get("/openapi.json").json()["components"]["schemas"]["SynthConfig"]["properties"]
    assert props["n_keywords"]["minimum"] == 1 and props["n_keywords"]["maximum"] == 50
    epochs = props["umap_epochs"]["anyOf"][0]
    assert epochs["maximum"] == 2000


def _unique_corpus(n: int, tag: str) -> list[dict[str, str]]:
    """Real comments made unique, so the embedding cache cannot make the run instant."""
    import csv

    with COMMENTS.open(encoding="utf-8") as f:
        texts = [r["comment-body"] for r in csv.DictReader(f)]
    return [{"id": f"{tag}{i}", "text": f"{texts[i % len(texts)]} Point {tag} {i}."} for i in range(n)]


def _serve(db: Database, **kwargs: float) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=Worker(db, **kwargs).serve, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def _wait(predicate, timeout: float) -> float:  # noqa: ANN001
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - t0


def _status(db: Database, rid: str) -> Run:
    with db.session() as s:
        return s.get(Run, rid)


def test_cancel_stops_a_running_run(api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: the embed stage takes a while
    pid, keys = make_project(api)
    from synth.formats import LoadedInput
    from synth.schema import Contribution
    from synth.service import add_contributions

    corpus = [Contribution(**c) for c in _unique_corpus(3000, "c")]  # over the fixture's upload limit: stored directly
    with api.app.state.db.session() as s:
        add_contributions(s, pid, LoadedInput(corpus, [], "corpus", "x"), "test")
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    stop, thread = _serve(db, beat=0.2)
    try:
        _wait(lambda: "embed" in (_status(db, rid).progress or {}), 120)  # embedding 3,000 new texts: ~30 s
        r = api.post(f"/v1/projects/{pid}/runs/{rid}/cancel", headers=h(keys["platform"]))
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        _wait(lambda: _status(db, rid).status == "cancelled", 10)
    finally:
        stop.set()
        thread.join(30)
    with db.session() as s:
        assert s.scalars(sql_select(Result).where(Result.run_id == rid)).first() is None


def test_a_cancel_during_the_last_stage_wins_over_success(api: TestClient, polis_run) -> None:  # noqa: ANN001
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    worker = Worker(db, worker_id="w1")
    assert worker.claim() == rid
    api.post(f"/v1/projects/{pid}/runs/{rid}/cancel", headers=h(keys["platform"]))
    worker._finish(rid, "succeeded", "run.succeeded", {}, result=polis_run)  # the pipeline had just finished
    assert _status(db, rid).status == "cancelled"
    with db.session() as s:
        assert s.scalars(sql_select(Result).where(Result.run_id == rid)).first() is None


def test_heartbeat_continues_through_every_stage(api: TestClient) -> None:
    """A worker that beats only on progress lets a long stage look dead; the heartbeat thread beats anyway, so a
    second worker with a short patience never takes the run over."""
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    stop, thread = _serve(db, stale_after=1.5, beat=0.25, worker_id="beating")
    rival = Worker(db, stale_after=1.5, worker_id="rival")
    beats: list = []
    try:
        while _status(db, rid).status in ("queued", "running"):
            rival.recover()  # would requeue the run if its heartbeat were 1.5 s old
            r = _status(db, rid)
            if r.status == "running" and (not beats or beats[-1] != r.heartbeat_at):
                beats.append(r.heartbeat_at)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    run = _status(db, rid)
    assert run.status == "succeeded" and run.attempts == 1
    actions = [e["action"] for e in api.get(f"/v1/projects/{pid}/audit", headers=h(keys["reader"])).json()["items"]]
    assert "run.requeued" not in actions
    gaps = [(b - a).total_seconds() for a, b in zip(beats, beats[1:], strict=False)]
    assert all(g < 1.5 for g in gaps), gaps


def test_worker_survives_errors_and_keeps_serving(api: TestClient) -> None:
    """A run whose result row already exists (the review's IntegrityError) must not end the worker."""
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    db = api.app.state.db
    first = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    with db.session() as s:
        s.add(Result(run_id=first, revision=0, synthesis="{}", timings={}))
    stop, thread = _serve(db, beat=0.2)
    try:
        _wait(lambda: _status(db, first).status != "queued", 60)
        second = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
        _wait(lambda: _status(db, second).status == "succeeded", 120)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(30)


def _pg_cluster() -> list[str] | None:
    if "postgresql" not in BACKENDS or not shutil.which("pg_lsclusters"):
        return None
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.split()
    return out[:2] if out else None


def test_queued_run_is_picked_up_after_a_postgresql_restart() -> None:
    """The server's own in-process worker (as `synth serve` runs it) outlives a database restart. `make test`
    starts the PostgreSQL cluster (.ci/postgres.sh); a bare pytest without it fails here, by design."""
    assert _pg_cluster() is not None, "no PostgreSQL cluster: run `make test`, which starts one"
    url = os.environ["SYNTH_TEST_POSTGRES_URL"]
    app = create_app(url, run_worker=True)
    db = app.state.db
    with db.session() as s:
        pid = create_project(s, "Restart", "test").id
        _, key = create_key(s, "facilitator", pid)
    with TestClient(app) as client:
        upload_polis(client, pid, key)
        time.sleep(1.5)  # the worker is idle, its pooled connections open
        ver, name = _pg_cluster()
        # down long enough that the idle worker polls a dead database at least twice
        subprocess.run(["pg_ctlcluster", ver, name, "stop"], check=True, capture_output=True)
        time.sleep(3)
        subprocess.run(["pg_ctlcluster", ver, name, "start"], check=True, capture_output=True)
        restarted = time.monotonic()
        rid = None
        while rid is None:  # the API answers 503 until the database is back
            r = client.post(f"/v1/projects/{pid}/runs", json={}, headers=h(key))
            assert r.status_code in (202, 503), r.text
            rid = r.json()["id"] if r.status_code == 202 else None
            assert time.monotonic() - restarted < 30
        waited = _wait(lambda: _status(db, rid).status != "queued", 10)
        assert app.state.worker_thread.is_alive() and waited < 10
        _wait(lambda: _status(db, rid).status == "succeeded", 120)


# --- medium and low findings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("deep.json", b"[" * 100_000, "auto"),
        ("big-id.jsonl", b'{"id": ' + b"9" * 5000 + b', "text": "hello"}\n', "auto"),
        (".", b"id,text\n1,hello\n", "csv"),
        ("..", b"id,text\n1,hello\n", "csv"),
        ("x" * 300 + ".csv", b"id,text\n1,hello\n", "auto"),
        ("export.csv", b"comment-id,comment-body,moderated\n1,hello,1\n", "polis"),
    ],
)
def test_hostile_files_never_give_a_server_error(api: TestClient, name: str, data: bytes, fmt: str) -> None:
    pid, keys = make_project(api)
    r = api.post(
        f"/v1/projects/{pid}/contributions",
        files={"file": (name, data, "application/octet-stream")},
        data={"format": fmt},
        headers=h(keys["platform"]),
    )
    assert r.status_code < 500, r.text
    assert r.headers["content-type"] in ("application/json", "application/problem+json")
    assert "/tmp" not in r.text


def test_huge_revision_numbers_are_refused(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    for revision in ("99999999999999999999", "2147483648"):
        r = api.get(f"/v1/projects/{pid}/runs/{rid}/result?revision={revision}", headers=h(keys["reader"]))
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_concurrent_edits_of_one_revision_give_409_not_500(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    tid = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"][0]["id"]
    url = f"/v1/projects/{pid}/runs/{rid}/edits"

    def rename(i: int) -> int:
        body = {"action": "rename_theme", "theme_id": tid, "label": f"Name {i}"}
        return api.post(url, json=body, headers=h(keys["facilitator"])).status_code

    statuses = []
    for round_ in range(6):
        with ThreadPoolExecutor(2) as pool:
            statuses += list(pool.map(rename, (2 * round_, 2 * round_ + 1)))
    assert set(statuses) <= {201, 409}, statuses
    revisions = [
        r["revision"]
        for r in api.get(f"/v1/projects/{pid}/runs/{rid}/revisions", headers=h(keys["reader"])).json()["items"]
    ]
    assert revisions == list(range(len(revisions))) and len(revisions) == 1 + statuses.count(201)


def test_problem_details_for_unexpected_errors(api: TestClient) -> None:
    """Anything unforeseen is still a problem+json 500 that names no internals (never a plain-text trace), with
    every security header (Starlette's last-resort handler sits outside the security middleware)."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    api.app.include_router(router)
    r = TestClient(api.app, raise_server_exceptions=False).get("/v1/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert "secret" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in r.headers["content-security-policy"]


# --- keys and sessions ------------------------------------------------------------------------------


def test_keys_are_listed_revoked_rotated_and_expire(api: TestClient) -> None:
    pid, keys = make_project(api)
    admin = h(keys["admin"])
    made = api.post(
        f"/v1/projects/{pid}/keys", json={"role": "reader", "name": "Ana (secretariat)"}, headers=admin
    ).json()
    listed = api.get(f"/v1/projects/{pid}/keys", headers=admin).json()["items"]
    assert made["id"] in [k["id"] for k in listed] and all("key" not in k for k in listed)
    assert api.get(f"/v1/projects/{pid}", headers=h(made["key"])).status_code == 200
    # the audit log names the key by the name it was given
    api.post(
        f"/v1/projects/{pid}/contributions",
        json={"contributions": [{"id": "1", "text": "x"}]},
        headers=h(keys["platform"]),
    )
    # rotate: a new key works, the old one does not
    new = api.post(f"/v1/projects/{pid}/keys/{made['id']}/rotate", headers=admin).json()
    assert api.get(f"/v1/projects/{pid}", headers=h(made["key"])).status_code == 401
    assert api.get(f"/v1/projects/{pid}", headers=h(new["key"])).status_code == 200
    # revoke
    assert api.delete(f"/v1/projects/{pid}/keys/{new['id']}", headers=admin).json()["revoked_at"]
    assert api.get(f"/v1/projects/{pid}", headers=h(new["key"])).status_code == 401
    # expiry
    short = api.post(f"/v1/projects/{pid}/keys", json={"role": "reader", "expires_in_days": 1}, headers=admin).json()
    assert api.get(f"/v1/projects/{pid}", headers=h(short["key"])).status_code == 200
    with api.app.state.db.session() as s:
        s.get(ApiKey, short["id"]).expires_at = now() - timedelta(seconds=1)
    assert api.get(f"/v1/projects/{pid}", headers=h(short["key"])).status_code == 401
    actions = [e["action"] for e in api.get(f"/v1/projects/{pid}/audit", headers=admin).json()["items"]]
    assert {"key.create", "key.rotate", "key.revoke"} <= set(actions)
    # other roles cannot see keys
    assert api.get(f"/v1/projects/{pid}/keys", headers=h(keys["facilitator"])).status_code == 403


def test_a_project_bound_admin_key_cannot_create_projects(api: TestClient) -> None:
    pid, keys = make_project(api)
    bound = api.post(f"/v1/projects/{pid}/keys", json={"role": "admin"}, headers=h(keys["admin"])).json()["key"]
    r = api.post("/v1/projects", json={"name": "orphan"}, headers=h(bound))
    assert r.status_code == 403
    assert [p["id"] for p in api.get("/v1/projects", headers=h(keys["admin"])).json()["items"]] == [pid]


def _csrf(page: str) -> str:
    """The CSRF token a review page's forms carry."""
    import re

    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def _web_sign_in(client: TestClient, key: str) -> None:

    page = client.get("/web/").text
    csrf = _csrf(page)
    r = client.post("/web/login", data={"csrf": csrf, "key": key}, follow_redirects=False)
    assert r.status_code == 303 and "/web/projects" in r.headers["location"]


def test_web_sessions_end_on_logout_and_on_revocation(api: TestClient) -> None:

    pid, keys = make_project(api)
    made = api.post(
        f"/v1/projects/{pid}/keys", json={"role": "facilitator", "name": "F"}, headers=h(keys["admin"])
    ).json()
    _web_sign_in(api, made["key"])
    assert api.get(f"/web/projects/{pid}", follow_redirects=False).status_code == 200
    stolen = dict(api.cookies)  # a copy of the cookie, as an attacker would keep it
    csrf = _csrf(api.get(f"/web/projects/{pid}").text)
    api.post("/web/logout", data={"csrf": csrf}, follow_redirects=False)
    replay = TestClient(api.app, cookies=stolen)
    assert replay.get(f"/web/projects/{pid}", follow_redirects=False).status_code == 303  # signed out for good
    # a live session ends when its key is revoked
    _web_sign_in(api, made["key"])
    assert api.get(f"/web/projects/{pid}", follow_redirects=False).status_code == 200
    api.delete(f"/v1/projects/{pid}/keys/{made['id']}", headers=h(keys["admin"]))
    assert api.get(f"/web/projects/{pid}", follow_redirects=False).status_code == 303
    # the cookie carries no key, role or project
    import base64

    payload = api.cookies.get("session", "").split(".")[0]
    decoded = base64.b64decode(payload + "==", altchars=b"-_").decode("latin-1", "replace")
    assert made["key"] not in decoded and pid not in decoded


def test_web_edit_never_redirects_off_site(api: TestClient) -> None:

    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    tid = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"][0]["id"]
    _web_sign_in(api, keys["facilitator"])
    base = f"/web/projects/{pid}/runs/{rid}"
    csrf = _csrf(api.get(base).text)
    # a sentence decision returns to the page it was made on (a rename, merge or move lands on its result)
    form = {"csrf": csrf, "action": "review_sentence", "scope": tid, "index": "0", "status": "accepted", "section": "0"}
    for referer in ("https://evil.example/phish", f"https://evil.example{base}", "//evil.example/x", f"{base}/../../x"):
        r = api.post(f"{base}/edit", data=form, headers={"referer": referer}, follow_redirects=False)
        assert r.headers["location"] == base, referer
    r = api.post(
        f"{base}/edit", data=form, headers={"referer": f"http://testserver{base}/themes/{tid}"}, follow_redirects=False
    )
    assert r.headers["location"] == f"{base}/themes/{tid}"


def test_web_upload_applies_the_text_limit(api: TestClient) -> None:

    pid, keys = make_project(api)
    _web_sign_in(api, keys["facilitator"])
    csrf = _csrf(api.get(f"/web/projects/{pid}").text)
    body = b"id,text\n1," + b"a" * 3000 + b"\n"
    mapping = api.post(
        f"/web/projects/{pid}/upload", data={"csrf": csrf}, files={"file": ("long.csv", body, "text/csv")}
    )
    assert "Map the columns of long.csv" in mapping.text  # a table is mapped before it is imported
    page = api.post(str(mapping.url), data={"csrf": _csrf(mapping.text), "action": "import", "text_column": "text"})
    assert "the limit is 2000" in page.text  # the reason, on the mapping page the import returns to
    assert api.get(f"/v1/projects/{pid}/contributions", headers=h(keys["reader"])).json()["items"] == []


# --- the audit record survives ----------------------------------------------------------------------


def test_audit_chain_detects_deleted_newest_events_and_recomputed_hashes(api: TestClient) -> None:
    from synth.service.audit import _event_hash

    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    db = api.app.state.db
    with db.session() as s:
        n = len(list(s.scalars(sql_select(AuditEvent).where(AuditEvent.project_id == pid))))
        s.execute(text("DELETE FROM audit_events WHERE project_id = :p AND seq = :n"), {"p": pid, "n": n})
    with db.session() as s:
        assert verify_chain(s, pid) == (False, n)
    # an attacker who rewrites an event and recomputes every hash after it still lacks the server's key
    pid2, keys2 = make_project(api, "Other")
    upload_polis(api, pid2, keys2["platform"])
    with db.session() as s:
        events = list(s.scalars(sql_select(AuditEvent).where(AuditEvent.project_id == pid2).order_by(AuditEvent.seq)))
        prev = events[0].prev_hash
        for e in events:
            if e.seq == 2:
                e.actor = "someone else"
            e.prev_hash = prev
            e.hash = _event_hash(e)
            prev = e.hash
    with db.session() as s:
        assert verify_chain(s, pid2)[0] is False


def test_deleting_a_project_leaves_a_verifiable_record(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    assert api.delete(f"/v1/projects/{pid}", headers=h(keys["admin"])).status_code == 204
    record = next(
        d for d in api.get("/v1/deletions", headers=h(keys["admin"])).json()["items"] if d["project_id"] == pid
    )
    assert record["counts"]["contributions"] == 50 and "admin" in record["actor"]
    with api.app.state.db.session() as s:
        events = list(s.scalars(sql_select(AuditEvent).where(AuditEvent.project_id == pid).order_by(AuditEvent.seq)))
        assert events[-1].action == "project.delete" and events[-1].seq == record["audit_seq"]
        assert verify_chain(s, pid) == (True, None)
        s.delete(events[-1])  # removing the deletion event itself shows
    with api.app.state.db.session() as s:
        assert verify_chain(s, pid)[0] is False


# --- quotas and impossible values -------------------------------------------------------------------


def test_run_quotas(api: TestClient) -> None:
    api.app.state.limits = dataclasses.replace(api.app.state.limits, runs_per_project=3, queued_runs_per_project=2)
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    start = lambda: api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"]))  # noqa: E731
    first, second = start(), start()
    assert first.status_code == second.status_code == 202
    third = start()
    assert third.status_code == 409 and "already queued" in third.json()["detail"]
    work(api)
    assert start().status_code == 202
    over = start()
    assert over.status_code == 413 and "delete old runs" in over.json()["detail"]
    done = (
        first.json()["id"]
        if _status(api.app.state.db, first.json()["id"]).status == "succeeded"
        else second.json()["id"]
    )
    assert api.delete(f"/v1/projects/{pid}/runs/{done}", headers=h(keys["platform"])).status_code == 204


@pytest.mark.parametrize("votes", [{"agree": -1, "disagree": 0, "pass_": 0}, {"agree": 10**30, "disagree": 0}])
def test_impossible_vote_counts_are_refused(api: TestClient, votes: dict) -> None:
    pid, keys = make_project(api)
    body = {"contributions": [{"id": "1", "text": "x", "votes": votes}]}
    r = api.post(f"/v1/projects/{pid}/contributions", json=body, headers=h(keys["platform"]))
    assert r.status_code == 422, r.text


def test_security_headers_on_api_responses(api: TestClient) -> None:
    for path in ("/v1/projects", "/openapi.json", "/web/", "/web/static/synth.css"):
        r = api.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"]
    assert "script-src" not in api.get("/web/").headers["content-security-policy"]


def test_a_huge_text_is_excluded_with_its_reason_not_a_failed_run() -> None:
    """A 1.5M-character text made every later run fail (spaCy E088); it is now excluded, with the reason."""
    from synth.pipeline.prepare import prepare
    from synth.schema import Contribution

    contributions = [Contribution(id="huge", text="word " * 300_000), Contribution(id="ok", text="A fine point.")]
    prepared = prepare(contributions, [], SynthConfig(), None, None)
    assert [e.contribution_id for e in prepared.excluded] == ["huge"]
    assert "over the limit of 100,000" in prepared.excluded[0].reason
    assert [s.contribution_id for s in prepared.segments] == ["ok"]


# --- the second review's findings ---------------------------------------------------------------------


def test_verify_is_not_fooled_by_appends_while_it_reads(api: TestClient) -> None:
    """Appends that commit while the chain is read are past the head it read first: never a false alarm."""
    from synth.service import audit

    pid, _ = make_project(api)
    db = api.app.state.db
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set():
            with db.session() as s:
                audit(s, pid, "test", "noise", "x")

    writer = threading.Thread(target=append)
    writer.start()
    try:
        results = []
        for _ in range(150):
            with db.session() as s:
                results.append(verify_chain(s, pid))
    finally:
        stop.set()
        writer.join()
    assert results.count((True, None)) == len(results)


def test_processes_starting_together_share_one_audit_key(tmp_path: Path) -> None:
    """Eight processes create the key file at once: all read the same, non-empty key."""
    import sys

    path = tmp_path / "audit.key"
    code = "from synth.audit_key import audit_key; print(audit_key().decode())"
    env = {**os.environ, "SYNTH_AUDIT_KEY_FILE": str(path)}
    env.pop("SYNTH_AUDIT_KEY", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(8)
    ]
    keys = {p.communicate()[0].strip() for p in procs}
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_long_key_names_still_fit_the_audit_log(api: TestClient) -> None:
    pid, keys = make_project(api)
    made = api.post(f"/v1/projects/{pid}/keys", json={"role": "platform", "name": "n" * 200}, headers=h(keys["admin"]))
    one = {"contributions": [{"id": "1", "text": "A point."}]}
    r = api.post(f"/v1/projects/{pid}/contributions", json=one, headers=h(made.json()["key"]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("where", ["text", "id", "project"])
def test_nul_characters_are_refused_alike_on_every_database(api: TestClient, where: str) -> None:
    pid, keys = make_project(api)
    if where == "project":
        r = api.post("/v1/projects", json={"name": "a\x00b"}, headers=h(keys["admin"]))
    else:
        item = {"id": "1", "text": "A point."} | {where: "a\x00b"}
        r = api.post(f"/v1/projects/{pid}/contributions", json={"contributions": [item]}, headers=h(keys["platform"]))
    assert r.status_code == 422 and "NUL" in r.text


def test_any_transfer_encoding_means_authenticate_before_the_body() -> None:
    """Servers differ in how they pass `Transfer-Encoding: Chunked` on; the middleware must not care."""
    import asyncio

    from synth.api.security import SecurityMiddleware

    read: list[int] = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001 - an ASGI app that reads the body
        message = await receive()
        read.append(len(message.get("body", b"")))

    middleware = SecurityMiddleware(
        app, limits=lambda: {"body_bytes": 10, "small_body_bytes": 10}, authenticate=lambda _: None
    )
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"x" * 5, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/v1/projects", "headers": [(b"transfer-encoding", b"Chunked")]}
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] == 401 and read == []


def test_root_path_does_not_change_which_limits_apply() -> None:
    import asyncio

    from synth.api.security import SecurityMiddleware

    middleware = SecurityMiddleware(None, limits=lambda: {"body_bytes": 100, "small_body_bytes": 10}, authenticate=None)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope, receive, send_) -> None:  # noqa: ANN001
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b""})

    middleware.app = app
    scope = {
        "type": "http",
        "root_path": "/synth",
        "path": "/synth/web/projects/p/upload",
        "headers": [(b"content-length", b"50")],
    }
    asyncio.run(middleware(scope, None, send))
    assert sent[0]["status"] == 200  # the upload limit (100), not the small one (10)
    assert b"style-src 'self'" in dict(sent[0]["headers"])[b"content-security-policy"]


def test_a_browser_upload_over_the_limit_lands_on_its_page_with_the_reason(api: TestClient) -> None:

    pid, keys = make_project(api)
    _web_sign_in(api, keys["facilitator"])
    csrf = _csrf(api.get(f"/web/projects/{pid}").text)
    big = b"id,text\n" + b"1,aaaa\n" * 40_000  # over the fixture's 200,000-byte limit
    r = api.post(f"/web/projects/{pid}/upload", data={"csrf": csrf}, files={"file": ("big.csv", big, "text/csv")})
    assert r.status_code == 200 and "The file is too large" in r.text


def test_cancel_during_claim_and_recovery_of_a_cancelled_run(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    assert Worker(db, worker_id="w1").claim() == rid  # claimed just before the cancel arrives
    r = api.post(f"/v1/projects/{pid}/runs/{rid}/cancel", headers=h(keys["platform"]))
    assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["cancel_requested"]
    with db.session() as s:
        s.get(Run, rid).heartbeat_at = now() - timedelta(minutes=10)  # then the worker died
    Worker(db, stale_after=60).recover()
    assert _status(db, rid).status == "cancelled"  # not requeued


def test_downgrading_the_security_migration_keeps_the_data(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from synth.formats import LoadedInput
    from synth.schema import Contribution
    from synth.service import add_contributions
    from synth.store import MIGRATIONS, Database, upgrade

    db = Database(f"sqlite:///{tmp_path / 'down.db'}")
    upgrade(db.engine)
    with db.session() as s:
        pid = create_project(s, "Keep", "test").id
        add_contributions(s, pid, LoadedInput([Contribution(id="1", text="Keep me.")], [], "x", "x"), "test")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM contributions")).scalar() == 1
