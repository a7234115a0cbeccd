"""Schemathesis against the app's own OpenAPI document: generated requests, bounded in number, and no
request may produce a 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from synth.app import create_app
from synth.service import create_key

_tmp = Path(tempfile.mkdtemp(prefix="synth-schemathesis-"))
app = create_app(f"sqlite:///{_tmp / 'synth.db'}", run_worker=False)
with app.state.db.session() as s:
    _, ADMIN = create_key(s, "admin", None, "schemathesis")
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"X-API-Key": ADMIN}, checks=[not_a_server_error])


class StatefulAPI(schema.as_state_machine()):
    """Chains of calls that use what earlier calls returned (a project made, then its keys, uploads, runs):
    links are inferred from response schemas and path parameters."""

    def get_call_kwargs(self, case: schemathesis.Case) -> dict:
        return {"headers": {"X-API-Key": ADMIN}}

    def validate_response(self, response, case: schemathesis.Case, additional_checks=None, **kwargs) -> None:  # noqa: ANN001
        case.validate_response(response, checks=[not_a_server_error])


def test_stateful_no_server_errors() -> None:
    transitions = [name for name in dir(StatefulAPI) if name.startswith(("GET_", "POST_", "DELETE_"))]
    assert len(transitions) >= 20  # links were found: sequences, not just single calls
    StatefulAPI.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )


def test_openapi_document_is_complete_for_client_generators() -> None:
    """Every referenced schema exists; operation ids are the route names and unique; every operation documents
    its problem-details errors; the API key scheme is declared."""
    import json
    import re

    from synth.app import create_app

    doc = create_app("sqlite://", run_worker=False).openapi()
    text = json.dumps(doc)
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.\-]+)", text))
    assert refs and refs <= set(doc["components"]["schemas"]), sorted(refs - set(doc["components"]["schemas"]))
    ops = [op for item in doc["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids)) and {"start_run", "upload", "preview_upload", "run_diff"} <= set(ids)
    for op in ops:
        assert "application/problem+json" in op["responses"]["422"]["content"], op["operationId"]
        assert op["summary"]
    assert doc["components"]["securitySchemes"]["APIKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert "HTTPValidationError" not in text
    start = doc["paths"]["/v1/projects/{project_id}/runs"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in start["parameters"]) and "409" in start["responses"]
