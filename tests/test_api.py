"""The HTTP API on SQLite and on a real PostgreSQL (when SYNTH_TEST_POSTGRES_URL is set, as .ci/run does):
the whole path, tenant isolation and roles, restart during a run, bad uploads, the audit chain."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from synth.jobs import Worker
from synth.store.models import Run, now
from tests.conftest import PLANTED, h, make_project, upload_polis, work


def test_whole_path_upload_run_read_edit_audit(api: TestClient) -> None:
    pid, keys = make_project(api)
    report = upload_polis(api, pid, keys["platform"])
    assert report["created"] == 50 and report["received"] == 50
    again = upload_polis(api, pid, keys["platform"])  # idempotent
    assert again["created"] == 0 and again["unchanged"] == 50
    # cursor pages: 50 contributions in pages of 20 are 20 + 20 + 10, in upload order, each once
    seen, cursor = [], None
    for _ in range(4):
        query = f"?limit=20&cursor={cursor}" if cursor else "?limit=20"
        page = api.get(f"/v1/projects/{pid}/contributions{query}", headers=h(keys["reader"])).json()
        seen.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [20, 20, 10]
    bad = api.get(
        f"/v1/projects/{pid}/runs?cursor={page['next_cursor'] or 'eyJsIjoiY29udHJpYnV0aW9ucyIsImEiOjV9'}",
        headers=h(keys["reader"]),
    )
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]  # another list's cursor

    r = api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": 7}}, headers=h(keys["platform"]))
    assert r.status_code == 202 and r.headers["location"].endswith(r.json()["id"])
    rid = r.json()["id"]
    # the run works on a snapshot: a later upload does not change it
    api.post(
        f"/v1/projects/{pid}/contributions",
        json={"contributions": [{"id": "late", "text": "Added later."}]},
        headers=h(keys["platform"]),
    )
    work(api)
    status = api.get(f"/v1/projects/{pid}/runs/{rid}", headers=h(keys["reader"])).json()
    assert status["status"] == "succeeded" and "embed" in status["progress"]
    synthesis = api.get(f"/v1/projects/{pid}/runs/{rid}/result", headers=h(keys["reader"])).json()
    assert synthesis["coverage"]["n_input"] == 50 and synthesis["metadata"]["seed"] == 7

    themes = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"]
    tid = themes[0]["id"]
    one = api.get(f"/v1/projects/{pid}/runs/{rid}/themes/{tid}?limit=3", headers=h(keys["reader"])).json()
    assert len(one["members"]["items"]) == 3 and one["members"]["next_cursor"]
    rest = api.get(
        f"/v1/projects/{pid}/runs/{rid}/themes/{tid}?limit=500&cursor={one['members']['next_cursor']}",
        headers=h(keys["reader"]),
    ).json()["members"]
    assert len(rest["items"]) + 3 == themes[0]["n_contributions"] and rest["next_cursor"] is None
    for path in ("minority-views", "summaries", "unassigned", "revisions"):
        assert api.get(f"/v1/projects/{pid}/runs/{rid}/{path}", headers=h(keys["reader"])).status_code == 200
    assert "Minority views" in api.get(f"/v1/projects/{pid}/runs/{rid}/report.html", headers=h(keys["reader"])).text

    # review: the reader may not edit; the facilitator may; each edit is a new revision
    rename = {"action": "rename_theme", "theme_id": tid, "label": "Renamed by facilitator"}
    assert api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=rename, headers=h(keys["reader"])).status_code == 403
    r = api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=rename, headers=h(keys["facilitator"]))
    assert r.status_code == 201 and r.json()["revision"] == 1
    move = {"action": "move_contributions", "contribution_ids": [one["members"]["items"][0]["id"]], "to_theme_id": None}
    moved = api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=move, headers=h(keys["facilitator"])).json()
    assert moved == {"revision": 2, "message": "Moved 1 contribution to the unassigned list."}
    latest = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"]
    original = api.get(f"/v1/projects/{pid}/runs/{rid}/themes?revision=0", headers=h(keys["reader"])).json()["items"]
    assert latest[0]["label"] == "Renamed by facilitator" and original[0]["label"] == themes[0]["label"]
    assert (
        "Renamed by facilitator" in api.get(f"/v1/projects/{pid}/runs/{rid}/report.md", headers=h(keys["reader"])).text
    )
    changes = api.get(
        f"/v1/projects/{pid}/runs/{rid}/diff?against={rid}&against_revision=0", headers=h(keys["reader"])
    ).json()
    (section,) = changes["sections"]
    assert [c["change"] for c in section["themes"] if c["before_id"] == tid] == ["renamed"]
    assert [m["contribution_id"] for m in section["moved"]] == [move["contribution_ids"][0]]
    gone = api.get(f"/v1/projects/{pid}/runs/{rid}/diff?against=nope", headers=h(keys["reader"]))
    assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
    bad = {"action": "rename_theme", "theme_id": "t999", "label": "x"}
    r = api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=bad, headers=h(keys["facilitator"]))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"

    events = api.get(f"/v1/projects/{pid}/audit", headers=h(keys["reader"])).json()["items"]
    actions = [e["action"] for e in events]
    assert actions[0] == "project.create" and "run.succeeded" in actions
    assert actions[-2:] == ["review.rename_theme", "review.move_contributions"]
    renamed = events[-2]
    assert (
        renamed["before"]["revision_labels"][tid] == themes[0]["label"]
        and renamed["after"]["label"] == rename["label"]
        and "facilitator" in renamed["actor"]
    )
    assert api.get(f"/v1/projects/{pid}/audit/verify", headers=h(keys["reader"])).json()["intact"] is True


def test_audit_chain_detects_a_changed_event(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    with api.app.state.db.session() as s:
        s.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE seq = 2 AND project_id = :p"), {"p": pid})
    chain = api.get(f"/v1/projects/{pid}/audit/verify", headers=h(keys["reader"])).json()
    assert chain == {"intact": False, "events": chain["events"], "first_broken_seq": 2}


def test_tenant_isolation_and_roles(api: TestClient) -> None:
    a, keys_a = make_project(api, "A")
    b, keys_b = make_project(api, "B")
    upload_polis(api, b, keys_b["platform"])
    rid = api.post(f"/v1/projects/{b}/runs", json={}, headers=h(keys_b["platform"])).json()["id"]
    paths = [
        f"/v1/projects/{b}",
        f"/v1/projects/{b}/contributions",
        f"/v1/projects/{b}/contributions/36",
        f"/v1/projects/{b}/runs",
        f"/v1/projects/{b}/runs/{rid}",
        f"/v1/projects/{b}/runs/{rid}/result",
        f"/v1/projects/{b}/runs/{rid}/themes",
        f"/v1/projects/{b}/audit",
        f"/v1/projects/{b}/audit/verify",
    ]
    for role in ("facilitator", "reader", "platform"):
        for path in paths:
            r = api.get(path, headers=h(keys_a[role]))
            assert r.status_code == 404, (role, path, r.status_code)
            # the same answer as for a project that does not exist: nothing tells B exists
            ghost = api.get(path.replace(b, "00000000-0000-0000-0000-000000000000"), headers=h(keys_a[role]))
            assert r.json()["detail"] == f"no project {b}" and ghost.json()["detail"].startswith("no project 0000")
        # a run id of B under A's project is also absent
        assert api.get(f"/v1/projects/{a}/runs/{rid}", headers=h(keys_a[role])).status_code == 404
    assert [p["id"] for p in api.get("/v1/projects", headers=h(keys_a["reader"])).json()["items"]] == [a]
    for path in paths:
        assert api.get(path).status_code == 401
        assert api.get(path, headers=h("sk_wrong")).status_code == 401
    # roles within one's own project
    assert api.post(f"/v1/projects/{b}/runs", json={}, headers=h(keys_b["reader"])).status_code == 403
    assert (
        api.post(
            f"/v1/projects/{b}/contributions",
            json={"contributions": [{"id": "x", "text": "y"}]},
            headers=h(keys_b["reader"]),
        ).status_code
        == 403
    )
    assert api.delete(f"/v1/projects/{b}", headers=h(keys_b["facilitator"])).status_code == 403
    assert api.post("/v1/projects", json={"name": "x"}, headers=h(keys_b["facilitator"])).status_code == 403
    assert api.delete(f"/v1/projects/{b}", headers=h(keys_b["admin"])).status_code == 204
    assert api.get(f"/v1/projects/{b}", headers=h(keys_b["admin"])).status_code == 404


def test_restart_during_a_run(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    crashed = Worker(db, worker_id="crashed")
    assert crashed.claim() == rid  # took the run, then the process died before finishing
    assert Worker(db, worker_id="other").claim() is None  # never two workers on one run
    with db.session() as s:
        s.get(Run, rid).heartbeat_at = now() - timedelta(minutes=10)
    restarted = Worker(db, worker_id="restarted", stale_after=60)
    assert restarted.run_once()
    run = api.get(f"/v1/projects/{pid}/runs/{rid}", headers=h(keys["reader"])).json()
    assert run["status"] == "succeeded" and run["attempts"] == 2
    actions = [e["action"] for e in api.get(f"/v1/projects/{pid}/audit", headers=h(keys["reader"])).json()["items"]]
    assert "run.requeued" in actions and actions[-1] == "run.succeeded"


def test_run_interrupted_too_often_fails_with_reason(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    db = api.app.state.db
    with db.session() as s:
        r = s.get(Run, rid)
        r.status, r.attempts, r.heartbeat_at = "running", 3, now() - timedelta(minutes=10)
    Worker(db, stale_after=60).recover()
    run = api.get(f"/v1/projects/{pid}/runs/{rid}", headers=h(keys["reader"])).json()
    assert run["status"] == "failed" and "interrupted 3 times" in run["error"]


def test_cancel_a_queued_run(api: TestClient) -> None:
    pid, keys = make_project(api)
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    assert (
        api.post(f"/v1/projects/{pid}/runs/{rid}/cancel", headers=h(keys["platform"])).json()["status"] == "cancelled"
    )
    assert not Worker(api.app.state.db).run_once()
    assert api.post(f"/v1/projects/{pid}/runs/{rid}/cancel", headers=h(keys["platform"])).status_code == 409


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("malformed_csv", 422, "comments.csv"),
        ("latin1", 422, "not UTF-8"),
        ("oversize", 413, "limit is 200000"),
        ("too_many", 413, "limit is 500"),
        ("long_text", 422, "limit is 2000"),
        ("unknown_field", 422, "Extra inputs are not permitted"),
        ("duplicate_ids", 422, "duplicate id"),
        ("bad_config", 422, "config"),
        ("wrong_type", 415, "multipart"),
    ],
)
def test_bad_uploads_get_clear_problems(api: TestClient, kind: str, status: int, words: str) -> None:
    pid, keys = make_project(api)
    url, key = f"/v1/projects/{pid}/contributions", h(keys["platform"])
    if kind == "malformed_csv":
        files = {"file": ("comments.csv", b'id,text\n1,ok\n2,"unclosed\n', "text/csv")}
        r = api.post(url, files=files, headers=key)
    elif kind == "latin1":
        r = api.post(
            url, files={"file": ("in.csv", "id,text\n1,caf\u00e9\n".encode("latin-1"), "text/csv")}, headers=key
        )
    elif kind == "oversize":
        r = api.post(url, json={"contributions": [{"id": str(i), "text": "x" * 1000} for i in range(300)]}, headers=key)
    elif kind == "too_many":
        r = api.post(url, json={"contributions": [{"id": str(i), "text": "x"} for i in range(600)]}, headers=key)
    elif kind == "long_text":
        r = api.post(url, json={"contributions": [{"id": "1", "text": "x" * 3000}]}, headers=key)
    elif kind == "unknown_field":
        r = api.post(url, json={"contributions": [{"id": "1", "text": "x", "colour": "red"}]}, headers=key)
    elif kind == "duplicate_ids":
        r = api.post(url, json={"contributions": [{"id": "1", "text": "x"}, {"id": "1", "text": "y"}]}, headers=key)
    elif kind == "bad_config":
        api.post(url, json={"contributions": [{"id": "1", "text": "x"}]}, headers=key)
        r = api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": "many"}}, headers=key)
    else:
        r = api.post(url, content=b"id,text\n1,x\n", headers={**key, "content-type": "text/csv"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and words in body["detail"] and body["instance"] == r.request.url.path
    assert len(api.get(url, headers=key).json()["items"]) <= 1  # nothing half-stored


def test_concurrent_uploads_keep_one_unbroken_audit_chain(api: TestClient) -> None:
    """Eight uploads at once into one project: all succeed and the audit chain stays one line."""
    from concurrent.futures import ThreadPoolExecutor

    from synth.formats import LoadedInput
    from synth.schema import Contribution
    from synth.service import add_contributions, verify_chain

    pid, _ = make_project(api)
    db = api.app.state.db

    def upload(i: int) -> int:
        loaded = LoadedInput([Contribution(id=f"c{i}-{j}", text=f"text {i} {j}") for j in range(5)], [], f"u{i}", "x")
        with db.session() as s:
            return add_contributions(s, pid, loaded, f"uploader {i}")["created"]

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(upload, range(16))) == 80
    with db.session() as s:
        assert verify_chain(s, pid) == (True, None)


def test_incremental_run_keeps_the_review_and_adds_the_new(api: TestClient) -> None:
    """Upload, run, rename a theme; upload more; a run from the reviewed one keeps the name and adds the rest."""
    pid, keys = make_project(api, "Growing consultation")
    rows = list(csv.DictReader(PLANTED.open()))
    first, later = rows[:150], rows[150:]
    post = lambda rs: api.post(  # noqa: E731
        f"/v1/projects/{pid}/contributions",
        json={"contributions": [{"id": r["id"], "text": r["text"]} for r in rs]},
        headers=h(keys["platform"]),
    )
    assert post(first).status_code == 200
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    tid = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"][0]["id"]
    rename = {"action": "rename_theme", "theme_id": tid, "label": "Named by the facilitator"}
    assert api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=rename, headers=h(keys["facilitator"])).is_success
    assert post(later).status_code == 200

    missing = api.post(f"/v1/projects/{pid}/runs", json={"from_run_id": "nope"}, headers=h(keys["platform"]))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    r = api.post(f"/v1/projects/{pid}/runs", json={"from_run_id": rid}, headers=h(keys["platform"]))
    assert r.status_code == 202, r.text
    work(api)
    new = r.json()["id"]
    result = api.get(f"/v1/projects/{pid}/runs/{new}/result", headers=h(keys["reader"])).json()
    assert result["metadata"]["extends"] | {"synthesis_sha256": None} == {
        "synthesis_sha256": None, "run_id": rid, "revision": 1, "n_contributions": 150, "n_new": len(later),
    }  # fmt: skip
    assert result["coverage"]["n_input"] == len(rows)
    themes = {
        t["id"]: t for t in api.get(f"/v1/projects/{pid}/runs/{new}/themes", headers=h(keys["reader"])).json()["items"]
    }
    assert themes[tid]["label"] == "Named by the facilitator"
    changes = api.get(f"/v1/projects/{pid}/runs/{new}/diff?against={rid}", headers=h(keys["reader"])).json()
    assert not changes["sections"][0]["moved"]
    assert changes["sections"][0]["contributions_added"] and not changes["sections"][0]["contributions_removed"]


def test_idempotency_key_replays_and_refuses_a_different_request(api: TestClient) -> None:
    """A retried POST with the same Idempotency-Key creates nothing new and gets the first answer; the same key
    with another body is a 409; another caller's key space is its own."""
    pid, keys = make_project(api, "Retries")
    upload_polis(api, pid, keys["platform"])
    once = {**h(keys["platform"]), "Idempotency-Key": "start-1"}
    first = api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": 3}}, headers=once)
    again = api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": 3}}, headers=once)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert len(api.get(f"/v1/projects/{pid}/runs", headers=h(keys["reader"])).json()["items"]) == 1
    other = api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": 4}}, headers=once)
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    # the same key from another caller is another request
    mine = {**h(keys["facilitator"]), "Idempotency-Key": "start-1"}
    assert (
        api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": 3}}, headers=mine).json()["id"]
        != first.json()["id"]
    )
    # an upload retried is not counted twice
    body = {"contributions": [{"id": "late", "text": "Added once."}]}
    up = {**h(keys["platform"]), "Idempotency-Key": "upload-1"}
    a = api.post(f"/v1/projects/{pid}/contributions", json=body, headers=up).json()
    b = api.post(f"/v1/projects/{pid}/contributions", json=body, headers=up).json()
    assert a == b and a["created"] == 1


def test_idempotent_multipart_upload_with_a_new_boundary(api: TestClient) -> None:
    pid, keys = make_project(api, "Multipart retries")
    files = {"file": ("c.csv", b"id,text\n1,Uniforms are expensive\n", "text/csv")}
    headers = {**h(keys["platform"]), "Idempotency-Key": "up-2"}
    first = api.post(f"/v1/projects/{pid}/contributions", files=files, headers=headers)
    again = api.post(f"/v1/projects/{pid}/contributions", files=files, headers=headers)  # httpx draws a new boundary
    assert first.status_code == 200 and again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
