"""Routers per resource under /v1: projects, contributions, runs, results, review, audit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from synth import projects as svc
from synth.api.auth import Caller, allowed, caller, global_admin
from synth.api.models import (
    AuditOut,
    ChainOut,
    ContributionOut,
    ContributionsIn,
    DeletionOut,
    EditOut,
    KeyIn,
    KeyInfo,
    KeyOut,
    Page,
    ProjectIn,
    ProjectOut,
    RevisionOut,
    RunIn,
    RunOut,
    ThemeBrief,
    UploadPreview,
    UploadReport,
)
from synth.api.problems import Problem
from synth.diff import RunDiff, diff
from synth.formats import ColumnMap, InputError, LoadedInput, load_uploaded, preview_uploaded
from synth.formats.common import column_map
from synth.report import render_html, render_markdown, report_headers
from synth.review import Edit, EditError
from synth.schema import Breakdown, Contribution, MinorityView, Summary, Synthesis, Theme

router = APIRouter(prefix="/v1")
CAN_READ, CAN_UPLOAD, CAN_RUN, CAN_EDIT, CAN_ADMIN = (
    Depends(allowed(a)) for a in ("read", "upload", "run", "edit", "admin")
)
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


def db(request: Request):  # noqa: ANN201 - Database
    return request.app.state.db


def limits(request: Request) -> svc.Limits:
    return svc.Limits.of(request.app.state.limits)


def _not_found(exc: Exception) -> Problem:
    return Problem(404, "Not found", str(exc))


# --- projects ---------------------------------------------------------------------------------------


@router.post("/projects", status_code=201, response_model=ProjectOut, tags=["projects"])
def create_project(body: ProjectIn, request: Request, who: Caller = Depends(global_admin)) -> Any:
    with db(request).session() as s:
        p = svc.create_project(s, body.name, who.actor)
        return ProjectOut(id=p.id, name=p.name, created_at=p.created_at)


@router.get("/projects", response_model=list[ProjectOut], tags=["projects"])
def list_projects(request: Request, who: Caller = Depends(caller)) -> Any:
    with db(request).session() as s:
        return [ProjectOut(id=p.id, name=p.name, created_at=p.created_at) for p in svc.list_projects(s, who.project_id)]


@router.get("/projects/{project_id}", response_model=ProjectOut, tags=["projects"])
def get_project(project_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        try:
            p = svc.get_project(s, project_id)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        return ProjectOut(id=p.id, name=p.name, created_at=p.created_at)


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
def delete_project(project_id: str, request: Request, who: Caller = CAN_ADMIN) -> Response:
    with db(request).session() as s:
        try:
            svc.delete_project(s, project_id, who.actor)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
    return Response(status_code=204)


def _key_info(key) -> KeyInfo:  # noqa: ANN001 - ApiKey
    return KeyInfo.model_validate(key, from_attributes=True)


@router.post("/projects/{project_id}/keys", status_code=201, response_model=KeyOut, tags=["keys"])
def create_key(project_id: str, body: KeyIn, request: Request, who: Caller = CAN_ADMIN) -> Any:
    with db(request).session() as s:
        try:
            svc.get_project(s, project_id)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        key, plaintext = svc.create_key(s, body.role, project_id, body.name, body.expires_in_days)
        after = {"role": body.role, "name": body.name, "expires_at": str(key.expires_at or "")}
        svc.audit(s, project_id, who.actor, "key.create", key.prefix, None, after)
        return KeyOut(**_key_info(key).model_dump(), key=plaintext)


@router.get("/projects/{project_id}/keys", response_model=list[KeyInfo], tags=["keys"])
def list_keys(project_id: str, request: Request, who: Caller = CAN_ADMIN) -> Any:
    """The project's keys, revoked and expired ones included; never a key's secret."""
    with db(request).session() as s:
        return [_key_info(k) for k in svc.list_keys(s, project_id)]


@router.delete("/projects/{project_id}/keys/{key_id}", response_model=KeyInfo, tags=["keys"])
def revoke_key(project_id: str, key_id: str, request: Request, who: Caller = CAN_ADMIN) -> Any:
    """Revoke a key at once: the API refuses it and browser sessions opened with it end."""
    with db(request).session() as s:
        return _key_info(svc.revoke_key(s, project_id, key_id, who.actor))


@router.post("/projects/{project_id}/keys/{key_id}/rotate", status_code=201, response_model=KeyOut, tags=["keys"])
def rotate_key(project_id: str, key_id: str, request: Request, who: Caller = CAN_ADMIN) -> Any:
    """A new key with the same role and name; the old one is revoked."""
    with db(request).session() as s:
        key, plaintext = svc.rotate_key(s, project_id, key_id, who.actor)
        return KeyOut(**_key_info(key).model_dump(), key=plaintext)


@router.get("/deletions", response_model=list[DeletionOut], tags=["projects"])
def list_deletions(request: Request, who: Caller = Depends(global_admin)) -> Any:
    """Every deleted project: who deleted it, when, and the MACed head its audit chain ended on."""
    with db(request).session() as s:
        return [DeletionOut.model_validate(d, from_attributes=True) for d in svc.deletions(s)]


# --- contributions ----------------------------------------------------------------------------------

UPLOAD_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ContributionsIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV, JSON or JSONL"},
                        "participants_votes": {
                            "type": "string",
                            "format": "binary",
                            "description": "Polis participants-votes.csv (with file = comments.csv)",
                        },
                        "format": {"type": "string", "enum": ["auto", "csv", "json", "jsonl", "polis", "sheet"]},
                        "id_column": {"type": "string", "description": "Mapping: the id (or respondent) column"},
                        "text_column": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Mapping: the text column, or one per question column of a wide file",
                        },
                        "question_column": {"type": "string"},
                        "participant_column": {"type": "string"},
                        "group_column": {"type": "string"},
                        "attribute_column": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["file"],
                }
            },
        },
        "required": True,
    }
}


def _parse_json_upload(body: bytes) -> LoadedInput:
    """CPU work: runs in a worker thread, never on the event loop."""
    try:
        parsed = ContributionsIn.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"location": list(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(x) for x in e['location'])}: {e['message']}" for e in errors[:5])
        raise Problem(422, "Invalid request", where, errors=errors) from None
    seen: dict[str, int] = {}
    for i, c in enumerate(parsed.contributions):
        if c.id in seen:
            raise Problem(422, "Invalid request", f"contributions[{i}]: duplicate id {c.id!r} (first at {seen[c.id]})")
        seen[c.id] = i
    contributions = [Contribution(**c.model_dump(), source_row=i + 1) for i, c in enumerate(parsed.contributions)]
    return LoadedInput(contributions, [], "request body (JSON)", svc.hash_key(body.decode("utf-8", "replace")))


def _read_file_upload(
    filename: str, data: bytes, fmt: str, votes: bytes | None, columns: ColumnMap | None = None, preview: bool = False
) -> Any:
    """CPU work: runs in a worker thread, never on the event loop."""
    try:
        if preview:
            return preview_uploaded(filename, data, fmt, votes, columns)
        return load_uploaded(filename, data, fmt, votes, columns)
    except InputError as exc:
        where = {"file": exc.file, "row": exc.row, "column": exc.column}
        raise Problem(422, "Invalid upload", f"{exc.file}: {exc.message}", **where) from None


async def _read_upload(request: Request, preview: bool = False) -> Any:
    """The body streams in on the event loop (the security middleware holds it to the limit); parsing it runs
    in a thread, so one large upload does not stall every other request."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" and not preview:
        return await run_in_threadpool(_parse_json_upload, await request.body())
    if ctype == "multipart/form-data":
        form = await request.form(max_files=2, max_fields=80)
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise Problem(422, "Invalid request", "multipart upload needs a 'file' part")
        votes = form.get("participants_votes")
        try:
            columns = column_map(form.getlist)
        except InputError as exc:
            raise Problem(422, "Invalid mapping", exc.message, column=exc.column) from None
        return await run_in_threadpool(
            _read_file_upload,
            upload.filename or "upload.csv",
            await upload.read(),
            str(form.get("format") or "auto"),
            await votes.read() if votes is not None and hasattr(votes, "read") else None,
            columns,
            preview,
        )
    raise Problem(
        415, "Unsupported media type", "send multipart/form-data" + ("" if preview else " or application/json")
    )


@router.post(
    "/projects/{project_id}/contributions",
    response_model=UploadReport,
    tags=["contributions"],
    openapi_extra=UPLOAD_DOC,
)
async def upload(project_id: str, request: Request, who: Caller = CAN_UPLOAD) -> Any:
    loaded = await _read_upload(request)
    svc.check_upload(loaded, limits(request))

    def store() -> dict:
        with db(request).session() as s:
            return svc.add_contributions(s, project_id, loaded, who.actor)

    return await run_in_threadpool(store)


@router.post(
    "/projects/{project_id}/contributions/preview",
    response_model=UploadPreview,
    tags=["contributions"],
    openapi_extra=UPLOAD_DOC,
)
async def preview_upload(project_id: str, request: Request, who: Caller = CAN_UPLOAD) -> Any:
    """What an upload would give with this mapping, stored nowhere: the file's columns, the role each plays,
    the first contributions, and counts. Send the same multipart body to .../contributions to import it."""
    with db(request).session() as s:
        try:
            svc.get_project(s, project_id)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
    return await _read_upload(request, preview=True)


def _contribution_out(row) -> ContributionOut:  # noqa: ANN001 - ContributionRow
    d = row.data
    return ContributionOut(
        id=row.external_id,
        text=d["text"],
        participant_id=d.get("participant_id"),
        group=d.get("group"),
        question=d.get("question"),
        attributes=d.get("attributes") or {},
        excluded_reason=row.excluded_reason,
    )


@router.get("/projects/{project_id}/contributions", response_model=Page, tags=["contributions"])
def list_contributions(
    project_id: str, request: Request, offset: Offset = 0, limit: Limit = 50, who: Caller = CAN_READ
) -> Any:
    with db(request).session() as s:
        try:
            total, rows = svc.list_contributions(s, project_id, offset, limit)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        return Page(total=total, offset=offset, limit=limit, items=[_contribution_out(r) for r in rows])


@router.get(
    "/projects/{project_id}/contributions/{contribution_id:path}",
    response_model=ContributionOut,
    tags=["contributions"],
)
def get_contribution(project_id: str, contribution_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        try:
            return _contribution_out(svc.get_contribution(s, project_id, contribution_id))
        except svc.NotFound as exc:
            raise _not_found(exc) from None


# --- runs -------------------------------------------------------------------------------------------


def _warnings(config: dict) -> list[str]:
    """What a caller must know before contributions leave this machine: drafting with a remote endpoint."""
    from synth.config import SynthConfig
    from synth.llm import Endpoint, remote_warning

    settings = SynthConfig(**config)
    endpoint = Endpoint.of(settings) if settings.draft else None
    warning = remote_warning(endpoint) if endpoint is not None else None
    return [warning] if warning else []


def _run_out(r) -> RunOut:  # noqa: ANN001 - Run
    return RunOut(
        warnings=_warnings(r.config or {}),
        id=r.id,
        project_id=r.project_id,
        status=r.status,
        progress=r.progress or {},
        attempts=r.attempts,
        cancel_requested=r.cancel_requested,
        error=r.error,
        created_at=r.created_at,
        finished_at=r.finished_at,
    )


@router.post("/projects/{project_id}/runs", status_code=202, response_model=RunOut, tags=["runs"])
def start_run(project_id: str, body: RunIn, request: Request, response: Response, who: Caller = CAN_RUN) -> Any:
    with db(request).session() as s:
        try:
            overrides = body.config.model_dump(mode="json", exclude_unset=True)
            earlier = (body.from_run_id, body.from_revision) if body.from_run_id else None
            codes = [c.model_dump() for c in body.codebook] if body.codebook else None
            run = svc.start_run(s, project_id, overrides, who.actor, limits(request), earlier, codes)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        except svc.Conflict as exc:
            raise Problem(409, "Conflict", str(exc)) from None
        except ValidationError as exc:
            errors = [{"location": ["config", *e["loc"]], "message": e["msg"]} for e in exc.errors()]
            raise Problem(
                422,
                "Invalid request",
                "; ".join(f"{'.'.join(map(str, e['location']))}: {e['message']}" for e in errors[:5]),
                errors=errors,
            ) from None
        response.headers["Location"] = f"/v1/projects/{project_id}/runs/{run.id}"
        out = _run_out(run)
    request.app.state.wake()
    return out


@router.get("/projects/{project_id}/runs", response_model=list[RunOut], tags=["runs"])
def list_runs(project_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        try:
            return [_run_out(r) for r in svc.list_runs(s, project_id)]
        except svc.NotFound as exc:
            raise _not_found(exc) from None


@router.get("/projects/{project_id}/runs/{run_id}", response_model=RunOut, tags=["runs"])
def get_run(project_id: str, run_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        try:
            return _run_out(svc.get_run(s, project_id, run_id))
        except svc.NotFound as exc:
            raise _not_found(exc) from None


@router.post("/projects/{project_id}/runs/{run_id}/cancel", response_model=RunOut, tags=["runs"])
def cancel_run(project_id: str, run_id: str, request: Request, response: Response, who: Caller = CAN_RUN) -> Any:
    """A queued run is cancelled at once (200). A running one is asked to stop (202, `cancel_requested`): the
    worker checks within seconds, between and inside stages, and stores no result."""
    with db(request).session() as s:
        run = svc.cancel_run(s, project_id, run_id, who.actor)
        if run.status == "running":
            response.status_code = 202
        return _run_out(run)


@router.delete("/projects/{project_id}/runs/{run_id}", status_code=204, tags=["runs"])
def delete_run(project_id: str, run_id: str, request: Request, who: Caller = CAN_RUN) -> Response:
    """Delete a finished run, its snapshot and every revision of its result, to free space under the quota."""
    with db(request).session() as s:
        svc.delete_run(s, project_id, run_id, who.actor)
    return Response(status_code=204)


# --- results ----------------------------------------------------------------------------------------


def load_result(request: Request, project_id: str, run_id: str, revision: int | None) -> tuple[int, Synthesis]:
    """The Synthesis of a revision. Revisions never change, so parsed ones are kept in a small LRU keyed by
    (run id, revision): reading a theme page must not re-parse megabytes of JSON."""
    from sqlalchemy import select

    from synth.store.models import Result

    cache = request.app.state.results
    with db(request).session() as s:
        try:
            svc.get_run(s, project_id, run_id)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        q = select(Result.revision, Result.pk).where(Result.run_id == run_id)
        q = q.where(Result.revision == revision) if revision is not None else q.order_by(Result.revision.desc())
        found = s.execute(q.limit(1)).first()
        if found is None:
            raise Problem(
                404, "Not found", f"run {run_id} has no result" + ("" if revision is None else f" revision {revision}")
            )
        key = (run_id, found.revision)
        if key not in cache:
            text = s.scalar(select(Result.synthesis).where(Result.pk == found.pk))
            cache[key] = Synthesis.model_validate_json(text)
            while len(cache) > 16:
                cache.popitem(last=False)
        cache.move_to_end(key)
        return found.revision, cache[key]


Revision = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Default: the newest revision.")]
RESULT = "/projects/{project_id}/runs/{run_id}"


@router.get(RESULT + "/result", response_model=Synthesis, tags=["results"])
def result(project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ) -> Any:
    return load_result(request, project_id, run_id, revision)[1]


@router.get(RESULT + "/revisions", response_model=list[RevisionOut], tags=["results"])
def list_revisions(project_id: str, run_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        try:
            return [
                RevisionOut(revision=r.revision, created_at=r.created_at) for r in svc.revisions(s, project_id, run_id)
            ]
        except svc.NotFound as exc:
            raise _not_found(exc) from None


@router.get(RESULT + "/themes", response_model=list[ThemeBrief], tags=["results"])
def themes(project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ) -> Any:
    s = load_result(request, project_id, run_id, revision)[1]
    return [
        ThemeBrief(
            id=t.id,
            label=t.label,
            keywords=t.keywords,
            parent_id=t.parent_id,
            n_contributions=t.n_contributions,
            n_participants=t.n_participants,
            section=i,
        )
        for i, sec in enumerate(s.sections)
        for t in sec.themes
    ]


@router.get(RESULT + "/themes/{theme_id}", tags=["results"])
def theme(
    project_id: str,
    run_id: str,
    theme_id: str,
    request: Request,
    revision: Revision = None,
    offset: Offset = 0,
    limit: Limit = 50,
    who: Caller = CAN_READ,
) -> dict[str, Any]:
    """The theme, its summary, and a page of its members with their full text."""
    _, s = load_result(request, project_id, run_id, revision)
    for sec in s.sections:
        for t in sec.themes:
            if t.id == theme_id:
                texts = _contribution_index(s)
                page = t.contribution_ids[offset : offset + limit]
                summary = next((x for x in sec.summaries if x.scope == t.id), None)
                return {
                    "theme": Theme.model_dump(t, mode="json"),
                    "summary": summary.model_dump(mode="json") if summary else None,
                    "members": {
                        "total": len(t.contribution_ids),
                        "offset": offset,
                        "limit": limit,
                        "items": [{"id": c, "text": texts[c]} for c in page],
                    },
                }
    raise Problem(404, "Not found", f"no theme {theme_id}")


def _contribution_index(s: Synthesis) -> dict[str, str]:
    return {c.id: c.text for c in s.contributions}


@router.get(RESULT + "/minority-views", response_model=list[MinorityView], tags=["results"])
def minority_views(
    project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ
) -> Any:
    return [v for sec in load_result(request, project_id, run_id, revision)[1].sections for v in sec.minority_views]


@router.get(RESULT + "/breakdowns", response_model=list[Breakdown], tags=["results"])
def breakdowns(
    project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ
) -> Any:
    """Per theme, its participants by group and by attribute value (cells under the privacy floor withheld)."""
    return [b for sec in load_result(request, project_id, run_id, revision)[1].sections for b in sec.breakdowns]


@router.get(RESULT + "/diff", response_model=RunDiff, tags=["results"])
def run_diff(
    project_id: str,
    run_id: str,
    request: Request,
    against: Annotated[str, Query(max_length=64, description="The earlier run's id (may be this run).")],
    against_revision: Revision = None,
    revision: Revision = None,
    who: Caller = CAN_READ,
) -> Any:
    """What changed from `against` (at `against_revision`) to this run (at `revision`): themes matched by their
    members (Hungarian on Jaccard), added, removed, grown, shrunk, renamed, split and merged themes, and moved
    contributions. Compare two revisions of one run by giving its own id as `against`."""
    before = load_result(request, project_id, against, against_revision)[1]
    return diff(before, load_result(request, project_id, run_id, revision)[1])


@router.get(RESULT + "/export/{to}", tags=["results"], response_class=Response)
def export_peer(
    project_id: str, run_id: str, to: str, request: Request, revision: Revision = None, who: Caller = CAN_READ
) -> Response:
    """The synthesis in a peer's format, as a zip: `tttc` (Talk to the City report JSON v0.2), `sensemaker`
    (categorized.csv, report_data.json), `themefinder` (Consult's mapping.jsonl, themes.json) or `kouchou`
    (hierarchical_result.json)."""
    import io
    import zipfile

    from synth.formats.peers import EXPORTS, export_files

    if to not in EXPORTS:
        raise Problem(404, "Not found", f"no export format {to[:40]!r}: one of {', '.join(EXPORTS)}")
    revision_no, s = load_result(request, project_id, run_id, revision)
    with db(request).session() as session:
        title = svc.report_title(session, project_id, run_id, revision_no)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in export_files(s, to, title).items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)
    headers = {"Content-Disposition": f'attachment; filename="synth-{to}.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)


@router.get(RESULT + "/summaries", response_model=list[Summary], tags=["results"])
def summaries(project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ) -> Any:
    return [x for sec in load_result(request, project_id, run_id, revision)[1].sections for x in sec.summaries]


@router.get(RESULT + "/unassigned", tags=["results"])
def unassigned(
    project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ
) -> list[dict[str, Any]]:
    s = load_result(request, project_id, run_id, revision)[1]
    segs = {x.id: x for x in s.segments}
    return [
        {"segment_id": i, "contribution_id": segs[i].contribution_id, "text": segs[i].text, "section": n}
        for n, sec in enumerate(s.sections)
        for i in sec.unassigned_segment_ids
    ]


@router.get(RESULT + "/report.html", response_class=HTMLResponse, tags=["results"])
def report_html(
    project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ
) -> Any:
    rev, s = load_result(request, project_id, run_id, revision)
    with db(request).session() as session:
        title = svc.report_title(session, project_id, run_id, rev)
    return HTMLResponse(render_html(s, None, title), headers=report_headers())


@router.get(RESULT + "/report.md", response_class=PlainTextResponse, tags=["results"])
def report_md(project_id: str, run_id: str, request: Request, revision: Revision = None, who: Caller = CAN_READ) -> Any:
    rev, s = load_result(request, project_id, run_id, revision)
    with db(request).session() as session:
        title = svc.report_title(session, project_id, run_id, rev)
    return PlainTextResponse(render_markdown(s, None, title), media_type="text/markdown")


# --- review and audit -------------------------------------------------------------------------------


@router.post(RESULT + "/edits", status_code=201, response_model=EditOut, tags=["review"])
def edit(project_id: str, run_id: str, body: Edit, request: Request, who: Caller = CAN_EDIT) -> Any:
    """Apply one review edit; it makes a new revision, verified, and an audit event. The machine's original
    (revision 0) stays readable."""
    with db(request).session() as s:
        try:
            revision, _ = svc.review(s, project_id, run_id, body, who.actor)
        except svc.NotFound as exc:
            raise _not_found(exc) from None
        except EditError as exc:
            raise Problem(422, "Edit refused", str(exc)) from None
        return EditOut(revision=revision)


@router.get("/projects/{project_id}/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(project_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        return [
            AuditOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                before=e.before,
                after=e.after,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in svc.audit_events(s, project_id)
        ]


@router.get("/projects/{project_id}/audit/verify", response_model=ChainOut, tags=["audit"])
def audit_verify(project_id: str, request: Request, who: Caller = CAN_READ) -> Any:
    with db(request).session() as s:
        intact, broken = svc.verify_chain(s, project_id)
        return ChainOut(intact=intact, events=len(svc.audit_events(s, project_id)), first_broken_seq=broken)
