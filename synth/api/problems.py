"""RFC 9457 problem details for every error the API returns, so clients get one shape to parse."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"
log = logging.getLogger("synth.api")


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: object):
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(request: Request, status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def invalid(errors: list[dict], prefix: tuple = ()) -> Problem:
    """A 422 problem from pydantic's errors: each with its location (under `prefix`), message and type, and
    the first five in the detail. The one formatter for request bodies, uploads and run settings."""
    listed = [
        {"location": [*prefix, *e.get("loc", ())], "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    where = "; ".join(f"{'.'.join(str(x) for x in e['location'])}: {e['message']}" for e in listed[:5])
    return Problem(422, "Invalid request", where or "the request is not valid", errors=listed)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = invalid(list(exc.errors()))
        return problem_response(request, 422, problem.title, problem.detail, **problem.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
        }
        return problem_response(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    _install_domain_errors(app)


def _install_domain_errors(app: FastAPI) -> None:
    """Every error a handler can meet becomes a problem: domain errors by their meaning, database clashes as
    409 (two edits of one revision at once: retry), an unreachable database as 503, and anything else as a
    500 problem that names no internals."""
    from synth import service as svc
    from synth.service import EditError

    domain: list[tuple[type[Exception], int, str]] = [
        (svc.NotFound, 404, "Not found"),
        (svc.Conflict, 409, "Conflict"),
        (svc.TooLarge, 413, "Content too large"),
        (EditError, 422, "Edit refused"),
    ]
    for exc_type, status, title in domain:

        def handler(request: Request, exc: Exception, status: int = status, title: str = title) -> JSONResponse:
            return problem_response(request, status, title, str(exc))

        app.add_exception_handler(exc_type, handler)

    @app.exception_handler(svc.Invalid)
    async def _invalid_value(request: Request, exc: svc.Invalid) -> JSONResponse:
        errors = [{"location": exc.location, "message": str(exc)}]
        return problem_response(request, 422, "Invalid request", str(exc), errors=errors)

    @app.exception_handler(IntegrityError)
    async def _clash(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("write conflict on %s: %s", request.url.path, exc.orig)
        detail = "another change to the same thing was saved at the same moment; read it again and retry"
        return problem_response(request, 409, "Conflict", detail)

    @app.exception_handler(OperationalError)
    async def _unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, exc.orig)
        response = problem_response(request, 503, "Service unavailable", "the database is not reachable; retry")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        log.exception("database error on %s", request.url.path)
        return problem_response(request, 400, "Bad request", "the database refused a value in this request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "Internal server error", "an unexpected error; it has been logged")
