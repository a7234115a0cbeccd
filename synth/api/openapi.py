"""The OpenAPI document as a client generator needs it: every schema it references defined, stable operation
ids (the route functions' names), problem-details responses on every operation, and the API key scheme."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from synth.api.models import ContributionsIn

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `file`, `row`, `column` or `errors` say where, when known.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "file": {"type": "string"},
        "row": {"type": "integer"},
        "column": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["title", "status"],
    "example": {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no run 1f3c"},
}
ERRORS = {
    "401": "No key, or a key that is not valid.",
    "403": "The key's role may not do this.",
    "404": "No such resource in the key's project.",
    "422": "The request is well formed but not acceptable; the body says what and where.",
}


IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "Send the same key with a retried request: the first response is replayed (header "
    "Idempotent-Replayed: true) and nothing is created twice; the same key with a different request is a 409.",
}


# Response examples by schema name; a page's example is one item of its list.
EXAMPLES: dict[str, Any] = {
    "ProjectOut": {"id": "5f0c9a8e-1b7d-4c43-9a57", "name": "Transport assembly", "created_at": "2026-11-27T14:02:00"},
    "KeyInfo": {
        "id": "8d2f6c1a-77b4-4e0e-8f55", "prefix": "sk_NCaAAQy", "name": "Fran (facilitator)",
        "role": "facilitator", "project_id": "5f0c9a8e-1b7d-4c43-9a57", "created_at": "2026-11-27T14:02:00",
        "expires_at": None, "revoked_at": None,
    },
    "RunOut": {
        "id": "0b7e4f2a-9c1d-4d3e-8a6b", "warnings": [], "project_id": "5f0c9a8e-1b7d-4c43-9a57",
        "status": "running", "progress": {"prepare": [50, 50], "embed": [40, 120]}, "attempts": 1,
        "cancel_requested": False, "error": None, "created_at": "2026-11-27T14:03:00", "finished_at": None,
    },
    "UploadReport": {"received": 50, "created": 48, "updated": 0, "unchanged": 2,
                     "excluded": [{"id": "c17", "reason": "rejected by the Polis moderator"}],
                     "notes": ["Polis export: comments.csv"]},
    "EditOut": {"revision": 3, "message": "Merged 'Night buses' into 'Public transport'."},
    "ChainOut": {"intact": True, "events": 42, "first_broken_seq": None},
    "ErasureOut": {"contributions": 1, "runs": 2, "results": 5, "audit_events": 1},
    "RevisionOut": {"revision": 1, "created_at": "2026-11-27T14:10:00"},
    "ThemeBrief": {"id": "t3", "label": "night buses", "keywords": ["night bus", "shift"], "parent_id": None,
                   "n_contributions": 14, "n_participants": 12, "section": 0},
    "ContributionOut": {"id": "c12", "text": "The night buses stop too early for shift workers.",
                        "participant_id": "p7", "group": None, "question": None, "attributes": {},
                        "excluded_reason": None},
    "UnassignedOut": {"segment_id": "c40:0", "contribution_id": "c40", "text": "Fix the potholes first.", "section": 0},
    "AuditOut": {"seq": 7, "at": "2026-11-27T14:11:05.120000+00:00", "actor": "Fran (facilitator key sk_NCaAAQy…)",
                 "action": "review.rename_theme", "target": "run 0b7e… revision 1",
                 "before": {"revision_labels": {"t3": "night buses"}},
                 "after": {"action": "rename_theme", "theme_id": "t3", "label": "Night buses"},
                 "prev_hash": "9f…", "hash": "a1…"},
}  # fmt: skip
EXAMPLES["KeyOut"] = {**EXAMPLES["KeyInfo"], "key": "sk_NCaAAQy…(shown once)"}


def _example(schema: dict[str, Any], schemas: dict[str, Any]) -> Any:
    name = schema.get("$ref", "").split("/")[-1]
    if name in EXAMPLES:
        return EXAMPLES[name]
    if name.startswith("Page_"):
        item = _example(schemas[name]["properties"]["items"]["items"], schemas)
        if item is not None:
            return {"items": [item], "next_cursor": "eyJsIjoicnVucyIsImEiOiIwYjdlIn0"}
    return None


def operation_id(route: APIRoute) -> str:
    """The route function's name: chosen by hand, stable across versions (e.g. `start_run`)."""
    return route.name


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            webhooks=app.webhooks.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        extra = ContributionsIn.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(extra.pop("$defs", {}))
        schemas["ContributionsIn"] = extra
        schemas["Problem"] = PROBLEM
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for item in doc.get("webhooks", {}).values():  # what a receiver answers is its own affair
            for op in item.values():
                op["responses"] = {"2XX": {"description": "Received; any other answer is retried."}}
                op["security"] = []
        doc["components"]["securitySchemes"] = {"APIKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        doc["security"] = [{"APIKey": []}]
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in doc["paths"].values():
            for method, op in item.items():
                if method == "post":
                    op.setdefault("parameters", []).append(IDEMPOTENCY)
                    op["responses"]["409"] = {"description": "Idempotency-Key reused for another request (or a "
                                              "conflicting state).", "content": problem}  # fmt: skip
                responses = op.setdefault("responses", {})
                for status, text in ERRORS.items():
                    responses[status] = {"description": text, "content": problem}
                if op.get("operationId", "").startswith("create_project"):
                    responses["403"] = {"description": "Only a global admin key creates projects.", "content": problem}
                op.setdefault("summary", op.get("operationId", "").replace("_", " ").capitalize())
                for status, response in responses.items():
                    body = response.get("content", {}).get("application/json")
                    if status.startswith("2") and body and "example" not in body:
                        example = _example(body.get("schema", {}), schemas)
                        if example is not None:
                            body["example"] = example
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
