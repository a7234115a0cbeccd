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


def operation_id(route: APIRoute) -> str:
    """The route function's name: chosen by hand, stable across versions (e.g. `start_run`)."""
    return route.name


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        extra = ContributionsIn.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(extra.pop("$defs", {}))
        schemas["ContributionsIn"] = extra
        schemas["Problem"] = PROBLEM
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
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
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
