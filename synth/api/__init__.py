"""The HTTP API under /v1: routes (synth.api.routes) over the service layer, its dependencies
(synth.api.deps), problem-details errors (synth.api.problems), the OpenAPI contract (synth.api.openapi) and
the middleware every request passes (synth.api.security, synth.api.idempotency). synth.app composes it with
the review pages into the served application."""

from synth.api.routes import router

__all__ = ["router"]
