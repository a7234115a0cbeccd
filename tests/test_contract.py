"""The API contract as a platform team meets it: the OpenAPI document (every reference defined, every
operation described, paged lists), a Python client generated from it by openapi-python-client and used
against a live server, the offline documentation pages, and erasure (a contribution or a participant)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from synth.pipeline.verify import check
from synth.schema import Synthesis
from synth.store.models import Result
from tests.conftest import h, make_project, serving, upload_polis, work

pytestmark = pytest.mark.enable_socket  # the generated client talks to a server on the loopback interface


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_is_complete(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    missing = {r for r in _refs(doc) if r.split("/")[-1] not in schemas}
    assert not missing
    assert doc["components"]["securitySchemes"]["APIKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(ops) >= 30
    ids = [op["operationId"] for _, _, op in ops]
    assert len(set(ids)) == len(ids) and all(i.isidentifier() and "__" not in i for i in ids)
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("summary") and len(op.get("description", "")) > 20, where
        for status in ("401", "403", "404", "422"):
            assert "application/problem+json" in op["responses"][status]["content"], where
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("$ref", "").split("/")[-1].startswith("Page_"):  # every list is paged by cursor
            assert {"cursor", "limit"} <= {p["name"] for p in op["parameters"]}, where
    lists = [p for p, m, op in ops if m == "get" and "Page_" in json.dumps(op["responses"])]
    assert len(lists) >= 12
    assert "HTTPValidationError" not in schemas  # errors are problem details, not FastAPI's default


def test_docs_work_offline(api: TestClient) -> None:
    """Swagger UI and ReDoc come from installed packages; the page's CSP allows scripts from this origin only."""
    page = api.get("/docs")
    assert page.status_code == 200 and '<script src="/docs/assets/swagger-ui-bundle.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "http" not in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "redoc.standalone.js"):
        asset = api.get(f"/docs/assets/{name}")
        assert asset.status_code == 200 and len(asset.content) > 50, name
    assert "SwaggerUIBundle" in api.get("/docs/assets/docs.js").text
    assert "/docs/assets/redoc.standalone.js" in api.get("/redoc").text
    assert api.get("/docs/assets/../../etc/passwd").status_code == 404


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client generated from the live document by openapi-python-client (ruff formats what it writes)."""
    from synth.app import create_app

    out = tmp_path_factory.mktemp("generated")
    app = create_app(f"sqlite:///{out / 'doc.db'}", run_worker=False)
    (out / "openapi.json").write_text(json.dumps(app.openapi()))
    (out / "config.yaml").write_text("content_type_overrides:\n  application/zip: application/octet-stream\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [Path(sys.executable).parent / "openapi-python-client", "generate", "--path", out / "openapi.json",
         "--meta", "none", "--output-path", out / "synth_client", "--config", out / "config.yaml"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every operation and schema was understood
    return out


def test_generated_client_against_a_live_server(client_package: Path, api: TestClient) -> None:
    sys.path.insert(0, str(client_package))
    try:
        client_mod = importlib.import_module("synth_client")
        models = importlib.import_module("synth_client.models")
        ops = {
            name: importlib.import_module(f"synth_client.api.{tag}.{name}")
            for tag, names in {
                "projects": ["create_project"],
                "keys": ["create_key"],
                "contributions": ["upload", "list_contributions"],
                "runs": ["start_run", "get_run"],
                "results": ["themes", "theme"],
                "review": ["edit"],
            }.items()
            for name in names
        }
    finally:
        sys.path.remove(str(client_package))
    projects = keys_api = contributions = runs = results = review = type("Ops", (), ops)
    with serving(api.app) as port:
        base = f"http://127.0.0.1:{port}"
        admin = client_mod.AuthenticatedClient(
            base_url=base, token=api.app.state.admin_key, prefix="", auth_header_name="X-API-Key"
        )
        project = projects.create_project.sync(client=admin, body=models.ProjectIn(name="Generated client"))
        assert project.name == "Generated client"
        made = keys_api.create_key.sync(
            project.id, client=admin, body=models.KeyIn(role=models.KeyInRole.FACILITATOR, name="Fran")
        )
        fac = client_mod.AuthenticatedClient(base_url=base, token=made.key, prefix="", auth_header_name="X-API-Key")
        body = {"contributions": [{"id": f"c{i}", "text": t} for i, t in enumerate(TEXTS)]}
        report = contributions.upload.sync_detailed(project.id, client=fac, body=models.ContributionsIn.from_dict(body))
        assert report.status_code == 200 and report.parsed.created == len(TEXTS)
        first = contributions.list_contributions.sync(project.id, client=fac, limit=5)
        second = contributions.list_contributions.sync(project.id, client=fac, limit=5, cursor=first.next_cursor)
        assert [c.id for c in first.items + second.items] == [f"c{i}" for i in range(10)]
        run = runs.start_run.sync(project.id, client=fac, body=models.RunIn())
        assert run.status == "queued"
        work(api)
        assert runs.get_run.sync(project.id, run.id, client=fac).status == "succeeded"
        themes = results.themes.sync(project.id, run.id, client=fac).items
        assert themes and themes[0].n_contributions >= 2
        page = results.theme.sync(project.id, run.id, themes[0].id, client=fac, limit=2)
        assert page.theme.id == themes[0].id and len(page.members.items) == 2
        edit = models.RenameTheme.from_dict({"action": "rename_theme", "theme_id": themes[0].id, "label": "Buses"})
        done = review.edit.sync(project.id, run.id, client=fac, body=edit)
        assert done.revision == 1 and "Buses" in done.message
        missing = runs.get_run.sync_detailed(project.id, "no-such-run", client=fac)
        assert missing.status_code == 404 and json.loads(missing.content)["title"] == "Not found"


TEXTS = [
    "The night buses stop too early for shift workers.",
    "Night buses should run until the last shift ends.",
    "Shift workers need buses after midnight.",
    "Bus fares are too high for families.",
    "Cheaper bus fares would help families most.",
    "Families cannot afford the fares on the bus.",
    "Build more cycle lanes on the main roads.",
    "Safe cycle lanes would get children cycling to school.",
    "Cycle lanes on main roads keep cyclists safe.",
    "The town needs protected cycle lanes.",
    "Night buses matter for nurses finishing late.",
    "Lower fares for children and students.",
]


# --- erasure ----------------------------------------------------------------------------------------


def _cited(s: Synthesis) -> str:
    """A contribution a summary quotes (a title's source when one is also quoted): erasing it touches quotes,
    sentences and, where it gave one, a title."""
    quoted = [
        y.citations[0].contribution_id
        for sec in s.sections
        for x in sec.summaries
        for y in x.sentences
        if y.kind == "quote"
    ]
    titled = {t.title_citation.contribution_id for sec in s.sections for t in sec.themes if t.title_citation}
    return next((c for c in quoted if c in titled), quoted[0])


def test_erasing_a_contribution_removes_its_words_everywhere(api: TestClient) -> None:
    pid, keys = make_project(api, "Erasure")
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    base = f"/v1/projects/{pid}/runs/{rid}"
    before = Synthesis.model_validate(api.get(f"{base}/result", headers=h(keys["reader"])).json())
    assert before.metadata.stages["clusterer"] == "graph" and before.metadata.stages["drafter"].startswith("extractive")
    used = before.sections[0].parameters  # what the clustering actually used, not only what was configured
    assert used["n_segments"] == len(before.segments) and used["resolution"] >= 1.0 and used["min_cluster_size"] >= 3
    victim = _cited(before)
    text = next(c.text for c in before.contributions if c.id == victim)
    # a reviewer's decision whose audit details quote the victim's words
    summary = next(x for sec in before.sections for x in sec.summaries for y in x.sentences if y.kind == "quote"
                   and y.citations[0].contribution_id == victim)  # fmt: skip
    sentence = next(y for y in summary.sentences if y.kind == "quote" and y.citations[0].contribution_id == victim)
    decided = {"action": "review_sentence", "scope": summary.scope, "sentence_id": sentence.id, "status": "accepted"}
    assert api.post(f"{base}/edits", json=decided, headers=h(keys["facilitator"])).status_code == 201
    words = max((x.text for x in before.segments if x.contribution_id == victim), key=len)
    assert words in json.dumps(api.get(f"/v1/projects/{pid}/audit?limit=500", headers=h(keys["reader"])).json(),
                               ensure_ascii=False)  # fmt: skip

    assert api.delete(f"/v1/projects/{pid}/contributions/{victim}", headers=h(keys["facilitator"])).status_code == 403
    r = api.delete(f"/v1/projects/{pid}/contributions/{victim}?reason=author%20asked", headers=h(keys["platform"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"contributions": 1, "runs": 1, "results": 2, "audit_events": 1}
    assert api.get(f"/v1/projects/{pid}/contributions/{victim}", headers=h(keys["reader"])).status_code == 404

    for revision in (0, 1):
        raw = api.get(f"{base}/result?revision={revision}", headers=h(keys["reader"])).text
        after = Synthesis.model_validate_json(raw)
        assert words not in json.loads(raw).__repr__() and text not in raw
        assert check(after) == []  # every citation still resolves, every count holds
        assert after.metadata.redactions[0].contribution_ids == [victim]
        assert after.coverage == before.coverage
        others = [c for c in after.contributions if c.id != victim]
        assert others == [c for c in before.contributions if c.id != victim]  # nobody else's words changed
    for fmt in ("report.html", "report.md"):
        assert words not in api.get(f"{base}/{fmt}", headers=h(keys["reader"])).text
    with api.app.state.db.session() as s:
        assert all(text not in row.synthesis for row in s.query(Result).filter(Result.run_id == rid))

    audit = api.get(f"/v1/projects/{pid}/audit?limit=500", headers=h(keys["reader"])).json()["items"]
    assert words not in json.dumps(audit, ensure_ascii=False)
    erase_event = audit[-1]
    assert erase_event["action"] == "contributions.erase" and erase_event["after"]["reason"] == "author asked"
    assert api.get(f"/v1/projects/{pid}/audit/verify", headers=h(keys["reader"])).json()["intact"] is True

    # future runs never see it
    again = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    fresh = api.get(f"/v1/projects/{pid}/runs/{again}/result", headers=h(keys["reader"])).json()
    assert victim not in {c["id"] for c in fresh["contributions"]} and len(fresh["contributions"]) == 49


def test_erasing_a_participant_and_tampering_still_shows(api: TestClient) -> None:
    pid, keys = make_project(api, "Participant erasure")
    rows = [{"id": f"p{i}", "text": t, "participant_id": "ann" if i < 3 else f"x{i}"} for i, t in enumerate(TEXTS)]
    api.post(f"/v1/projects/{pid}/contributions", json={"contributions": rows}, headers=h(keys["platform"]))
    r = api.delete(f"/v1/projects/{pid}/participants/ann", headers=h(keys["platform"]))
    assert r.status_code == 200 and r.json()["contributions"] == 3
    left = api.get(f"/v1/projects/{pid}/contributions", headers=h(keys["reader"])).json()["items"]
    assert [c["id"] for c in left] == [f"p{i}" for i in range(3, len(TEXTS))]
    assert api.delete(f"/v1/projects/{pid}/participants/ann", headers=h(keys["platform"])).status_code == 404
    # an event's details changed without an erasure listing it: the chain says so
    from synth.store.models import AuditEvent

    with api.app.state.db.session() as s:
        event = s.query(AuditEvent).filter(AuditEvent.project_id == pid).order_by(AuditEvent.seq).first()
        event.after = {**(event.after or {}), "name": "rewritten"}
    verdict = api.get(f"/v1/projects/{pid}/audit/verify", headers=h(keys["reader"])).json()
    assert verdict["intact"] is False and verdict["first_broken_seq"] == 1


def test_no_response_names_a_server_path(api: TestClient) -> None:
    pid, keys = make_project(api, "Paths")
    report = upload_polis(api, pid, keys["platform"])
    assert tempfile.gettempdir() not in json.dumps(report) and "/tmp" not in json.dumps(report)


def test_default_database_lives_in_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pip install synth` then `synth serve` anywhere: the database is in one known folder, not the cwd."""
    from synth.store import database_url

    monkeypatch.delenv("SYNTH_DATABASE_URL", raising=False)
    monkeypatch.setenv("SYNTH_DATA_DIR", str(tmp_path / "data"))
    assert database_url() == f"sqlite:///{tmp_path / 'data' / 'synth.db'}" and (tmp_path / "data").is_dir()
    monkeypatch.delenv("SYNTH_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert database_url() == f"sqlite:///{tmp_path / 'xdg' / 'synth' / 'synth.db'}"
    monkeypatch.setenv("SYNTH_DATABASE_URL", "postgresql://db.example/synth")
    assert database_url() == "postgresql://db.example/synth"
