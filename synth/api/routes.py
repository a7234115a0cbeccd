"""Routes under /v1, one group per resource: projects and keys, contributions, runs, results, review,
audit. Each is a thin shell: dependencies (synth.api.deps) give it the session, the caller and a page; it
calls synth.service and shapes the answer. Domain errors become problem details in one handler
(synth.api.problems)."""

from __future__ import annotations

import io
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from synth import service as svc
from synth.api.deps import (
    CAN_ADMIN,
    CAN_EDIT,
    CAN_ERASE,
    CAN_READ,
    CAN_RUN,
    CAN_UPLOAD,
    DB,
    Cursor,
    caller,
    global_admin,
    limits,
    pages,
)
from synth.api.models import (
    AuditOut,
    ChainOut,
    ContributionOut,
    ContributionsIn,
    DeletionOut,
    DeliveryOut,
    EditOut,
    ErasureOut,
    KeyIn,
    KeyInfo,
    KeyOut,
    MemberOut,
    Page,
    ProjectIn,
    ProjectOut,
    RevisionOut,
    RunFinished,
    RunIn,
    RunOut,
    ThemeBrief,
    ThemePage,
    UnassignedOut,
    UploadPreview,
    UploadReport,
    WebhooksIn,
    WebhooksOut,
)
from synth.api.problems import Problem, invalid
from synth.diff import RunDiff, diff
from synth.edits import Edit, describe
from synth.formats import ColumnMap, InputError, LoadedInput, load_uploaded, preview_uploaded
from synth.formats.common import column_map
from synth.formats.peers import EXPORTS, export_files
from synth.report import render_html, render_markdown, report_headers
from synth.schema import Breakdown, Contribution, MinorityView, Summary, Synthesis
from synth.service import Caller, hash_key, webhooks
from synth.service import repository as repo

router = APIRouter(prefix="/v1")
# One cursor dependency per list; keys are row ids (str) or positions and sequence numbers (int).
PAGES_DELIVERIES = pages("deliveries", str)
PAGES = {
    "projects": pages("projects", str),
    "keys": pages("keys", str),
    "deletions": pages("deletions", int),
    "contributions": pages("contributions", int),
    "runs": pages("runs", str),
    "revisions": pages("revisions", int),
    "themes": pages("themes", int),
    "members": pages("members", int),
    "minority-views": pages("minority-views", int),
    "breakdowns": pages("breakdowns", int),
    "summaries": pages("summaries", int),
    "unassigned": pages("unassigned", int),
    "audit": pages("audit", int),
}

# --- projects ---------------------------------------------------------------------------------------


def _project_out(p) -> ProjectOut:  # noqa: ANN001 - Project
    return ProjectOut(id=p.id, name=p.name, created_at=p.created_at)


@router.post("/projects", status_code=201, response_model=ProjectOut, tags=["projects"])
def create_project(body: ProjectIn, s: DB, who: Caller = Depends(global_admin)) -> Any:
    """Create a project: a container for one consultation's contributions, runs, keys and audit trail.
    Only an admin key bound to no project may create one."""
    return _project_out(svc.create_project(s, body.name, who.actor))


@router.get("/projects", response_model=Page[ProjectOut], tags=["projects"])
def list_projects(s: DB, who: Caller = Depends(caller), page: Cursor = PAGES["projects"]) -> Any:
    """The projects this key can see (a project key sees its own), oldest first."""
    rows = repo.projects(s, who.project_id, page.after, page.limit + 1)
    return page.page([_project_out(p) for p in rows], key=lambda p: p.id)


@router.get("/projects/{project_id}", response_model=ProjectOut, tags=["projects"])
def get_project(project_id: str, s: DB, who: Caller = CAN_READ) -> Any:
    """One project's name and creation time."""
    return _project_out(repo.project(s, project_id))


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
def delete_project(project_id: str, s: DB, who: Caller = CAN_ADMIN) -> Response:
    """Delete a project with its contributions, runs, results and keys. Its audit trail stays (no
    contribution text), closed by a project.delete event, and a deletion record keeps its MACed head."""
    svc.delete_project(s, project_id, who.actor)
    return Response(status_code=204)


def _key_info(key) -> KeyInfo:  # noqa: ANN001 - ApiKey
    return KeyInfo.model_validate(key, from_attributes=True)


@router.post("/projects/{project_id}/keys", status_code=201, response_model=KeyOut, tags=["keys"])
def create_key(project_id: str, body: KeyIn, s: DB, who: Caller = CAN_ADMIN) -> Any:
    """A new key for this project with a role and a name people will recognise in the audit log. The key
    itself is in this response only; the server keeps its hash."""
    repo.project(s, project_id)
    key, plaintext = svc.create_key(s, body.role, project_id, body.name, body.expires_in_days)
    after = {"role": body.role, "name": body.name, "expires_at": str(key.expires_at or "")}
    svc.audit(s, project_id, who.actor, "key.create", key.prefix, None, after)
    return KeyOut(**_key_info(key).model_dump(), key=plaintext)


@router.get("/projects/{project_id}/keys", response_model=Page[KeyInfo], tags=["keys"])
def list_keys(project_id: str, s: DB, who: Caller = CAN_ADMIN, page: Cursor = PAGES["keys"]) -> Any:
    """The project's keys, revoked and expired ones included; never a key's secret."""
    rows = repo.keys(s, project_id, page.after, page.limit + 1)
    return page.page([_key_info(k) for k in rows], key=lambda k: k.id)


@router.delete("/projects/{project_id}/keys/{key_id}", response_model=KeyInfo, tags=["keys"])
def revoke_key(project_id: str, key_id: str, s: DB, who: Caller = CAN_ADMIN) -> Any:
    """Revoke a key at once: the API refuses it and browser sessions opened with it end."""
    return _key_info(svc.revoke_key(s, project_id, key_id, who.actor))


@router.post("/projects/{project_id}/keys/{key_id}/rotate", status_code=201, response_model=KeyOut, tags=["keys"])
def rotate_key(project_id: str, key_id: str, s: DB, who: Caller = CAN_ADMIN) -> Any:
    """A new key with the same role and name; the old one is revoked."""
    key, plaintext = svc.rotate_key(s, project_id, key_id, who.actor)
    return KeyOut(**_key_info(key).model_dump(), key=plaintext)


@router.get("/deletions", response_model=Page[DeletionOut], tags=["projects"])
def list_deletions(s: DB, who: Caller = Depends(global_admin), page: Cursor = PAGES["deletions"]) -> Any:
    """Every deleted project: who deleted it, when, and the MACed head its audit chain ended on."""
    out = page.page(repo.deletions(s, page.after, page.limit + 1), key=lambda d: d.pk)
    return {**out, "items": [DeletionOut.model_validate(d, from_attributes=True) for d in out["items"]]}


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
        raise invalid(exc.errors()) from None
    seen: dict[str, int] = {}
    for i, c in enumerate(parsed.contributions):
        if c.id in seen:
            raise Problem(422, "Invalid request", f"contributions[{i}]: duplicate id {c.id!r} (first at {seen[c.id]})")
        seen[c.id] = i
    contributions = [Contribution(**c.model_dump(), source_row=i + 1) for i, c in enumerate(parsed.contributions)]
    return LoadedInput(contributions, [], "request body (JSON)", hash_key(body.decode("utf-8", "replace")))


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
    """Add contributions: a file (CSV, TSV, spreadsheet, JSON, JSONL, or a Polis export) as multipart, or a
    JSON body. Upserts by id, so the same upload twice changes nothing; says what was read, created, updated
    and excluded, and why."""
    loaded = await _read_upload(request)
    svc.check_upload(loaded, limits(request))

    def store() -> dict:
        with request.app.state.db.session() as s:
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
    with request.app.state.db.session() as s:
        repo.project(s, project_id)
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


@router.get("/projects/{project_id}/contributions", response_model=Page[ContributionOut], tags=["contributions"])
def list_contributions(project_id: str, s: DB, who: Caller = CAN_READ, page: Cursor = PAGES["contributions"]) -> Any:
    """The project's contributions in upload order."""
    repo.project(s, project_id)
    rows = repo.contributions(s, project_id, page.after, page.limit + 1)
    out = page.page(rows, key=lambda r: r.pk)
    return {**out, "items": [_contribution_out(r) for r in out["items"]]}


@router.get(
    "/projects/{project_id}/contributions/{contribution_id:path}",
    response_model=ContributionOut,
    tags=["contributions"],
)
def get_contribution(project_id: str, contribution_id: str, s: DB, who: Caller = CAN_READ) -> Any:
    """One contribution as stored."""
    return _contribution_out(repo.contribution(s, project_id, contribution_id))


Reason = Annotated[str, Query(min_length=1, max_length=500, description="Why; recorded in the audit log.")]
DEFAULT_REASON = "erasure request"


@router.delete(
    "/projects/{project_id}/contributions/{contribution_id:path}", response_model=ErasureOut, tags=["contributions"]
)
def erase_contribution(
    project_id: str, contribution_id: str, s: DB, reason: Reason = DEFAULT_REASON, who: Caller = CAN_ERASE
) -> Any:
    """Erase one contribution (a mistaken upload, or its author's request): its text leaves the store and every
    future run, and is replaced by a redaction marker in the snapshots, results and audit details of past runs,
    which then say they were redacted. An audit event records the erasure, without the text; the audit chain
    still verifies."""
    return svc.erase(s, project_id, [repo.contribution(s, project_id, contribution_id)], who.actor, reason)


@router.delete(
    "/projects/{project_id}/participants/{participant_id:path}", response_model=ErasureOut, tags=["contributions"]
)
def erase_participant(
    project_id: str, participant_id: str, s: DB, reason: Reason = DEFAULT_REASON, who: Caller = CAN_ERASE
) -> Any:
    """Erase everything one participant wrote (a right-to-erasure request), as for one contribution."""
    rows = repo.contributions_of_participant(s, repo.project(s, project_id).id, participant_id)
    if not rows:
        raise svc.NotFound(f"no contributions of participant {participant_id}")
    return svc.erase(s, project_id, rows, who.actor, reason)


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
        callback_url=r.callback_url,
        redacted=r.redacted_at is not None,
        name=r.name,
        sources=r.sources or [],
    )


@router.post("/projects/{project_id}/runs", status_code=202, response_model=RunOut, tags=["runs"])
def start_run(
    project_id: str,
    body: RunIn,
    request: Request,
    response: Response,
    tasks: BackgroundTasks,
    s: DB,
    who: Caller = CAN_RUN,
) -> Any:
    """Queue a synthesis of the project's contributions as they are now (202; poll the Location, or give a
    callback). With `from_run_id`, an incremental run that keeps an earlier run's reviewed themes."""
    try:
        overrides = body.config.model_dump(mode="json", exclude_unset=True)
        earlier = (body.from_run_id, body.from_revision) if body.from_run_id else None
        codes = [c.model_dump() for c in body.codebook] if body.codebook else None
        run = svc.start_run(
            s,
            project_id,
            overrides,
            who.actor,
            limits(request),
            earlier,
            codes,
            callback_url=body.callback_url,
            name=body.name,
        )
    except ValidationError as exc:
        raise invalid(exc.errors(), ("config",)) from None
    response.headers["Location"] = f"/v1/projects/{project_id}/runs/{run.id}"
    tasks.add_task(request.app.state.wake)  # after the response, so after the commit: the worker sees the run
    return _run_out(run)


@router.get("/projects/{project_id}/runs", response_model=Page[RunOut], tags=["runs"])
def list_runs(project_id: str, s: DB, who: Caller = CAN_READ, page: Cursor = PAGES["runs"]) -> Any:
    """The project's runs, oldest first, with status and progress."""
    return page.page([_run_out(r) for r in repo.runs(s, project_id, page.after, page.limit + 1)], key=lambda r: r.id)


@router.get("/projects/{project_id}/runs/{run_id}", response_model=RunOut, tags=["runs"])
def get_run(project_id: str, run_id: str, s: DB, who: Caller = CAN_READ) -> Any:
    """A run's status and its progress per stage."""
    return _run_out(repo.run(s, project_id, run_id))


@router.post("/projects/{project_id}/runs/{run_id}/cancel", response_model=RunOut, tags=["runs"])
def cancel_run(project_id: str, run_id: str, response: Response, s: DB, who: Caller = CAN_RUN) -> Any:
    """A queued run is cancelled at once (200). A running one is asked to stop (202, `cancel_requested`): the
    worker checks within seconds, between and inside stages, and stores no result."""
    run = svc.cancel_run(s, project_id, run_id, who.actor)
    if run.status == "running":
        response.status_code = 202
    return _run_out(run)


@router.delete("/projects/{project_id}/runs/{run_id}", status_code=204, tags=["runs"])
def delete_run(project_id: str, run_id: str, s: DB, who: Caller = CAN_RUN) -> Response:
    """Delete a finished run, its snapshot and every revision of its result, to free space under the quota."""
    svc.delete_run(s, project_id, run_id, who.actor)
    return Response(status_code=204)


@router.put("/projects/{project_id}/webhooks", response_model=WebhooksOut, tags=["runs"])
def set_webhooks(project_id: str, body: WebhooksIn, s: DB, who: Caller = CAN_ADMIN) -> Any:
    """Allow-list the hosts a run's `callback_url` may reach. The signing secret is made on first use (or with
    `rotate_secret`) and shown in this response only."""
    hosts, secret = webhooks.set_hosts(s, project_id, body.allowed_hosts, body.rotate_secret, who.actor)
    return WebhooksOut(allowed_hosts=hosts, secret=secret)


@router.get("/projects/{project_id}/webhooks", response_model=WebhooksOut, tags=["runs"])
def get_webhooks(project_id: str, s: DB, who: Caller = CAN_RUN) -> Any:
    """The hosts callbacks may reach (never the secret)."""
    return WebhooksOut(allowed_hosts=repo.project(s, project_id).webhook_hosts or [])


@router.get("/projects/{project_id}/runs/{run_id}/deliveries", response_model=Page[DeliveryOut], tags=["runs"])
def list_deliveries(project_id: str, run_id: str, s: DB, who: Caller = CAN_RUN, page: Cursor = PAGES_DELIVERIES) -> Any:
    """Every callback of the run and each attempt to deliver it: when, and what the receiver answered."""
    repo.run(s, project_id, run_id)
    rows = repo.deliveries(s, run_id, page.after, page.limit + 1)
    items = [DeliveryOut.model_validate(d, from_attributes=True) for d in rows]
    return page.page(items, key=lambda d: d.id)


def install_webhooks(app: Any) -> None:
    """Document the callbacks in the OpenAPI `webhooks` section."""

    @app.webhooks.post("run.finished", tags=["runs"])
    def run_finished(body: RunFinished) -> None:
        """Sent to a run's `callback_url` when it succeeds, fails or is cancelled; check `X-Synth-Signature`
        (HMAC-SHA256 of the raw body with the project's webhook secret) before trusting it."""


# --- results ----------------------------------------------------------------------------------------

Revision = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Default: the newest revision.")]
RESULT = "/projects/{project_id}/runs/{run_id}"


class Loaded:
    """The result a request reads: its run, revision number, Synthesis and the caller (who may read)."""

    def __init__(self, project_id: str, run_id: str, s: DB, revision: Revision = None, who: Caller = CAN_READ):
        self.project_id, self.run_id, self.session = project_id, run_id, s
        self.revision, self.synthesis = svc.load_result(s, project_id, run_id, revision)

    def sections(self, attr: str) -> list:
        return [x for sec in self.synthesis.sections for x in getattr(sec, attr)]

    def title(self) -> str:
        return svc.report_title(self.session, self.project_id, self.run_id, self.revision)


Read = Annotated[Loaded, Depends()]


@router.get(RESULT + "/result", response_model=Synthesis, tags=["results"])
def result(r: Read) -> Any:
    """The whole synthesis of a revision (synthesis.json): themes, minority views, summaries with citations,
    unassigned and excluded contributions, and how it was made."""
    return r.synthesis


@router.get(RESULT + "/revisions", response_model=Page[RevisionOut], tags=["results"])
def list_revisions(
    project_id: str, run_id: str, s: DB, who: Caller = CAN_READ, page: Cursor = PAGES["revisions"]
) -> Any:
    """Every revision of the run's result: 0 is the machine's, each review edit adds one."""
    rows = svc.revisions(s, project_id, run_id, page.after, page.limit + 1)
    return page.page(
        [RevisionOut(revision=r.revision, created_at=r.created_at) for r in rows], key=lambda r: r.revision
    )


@router.get(RESULT + "/themes", response_model=Page[ThemeBrief], tags=["results"])
def themes(r: Read, page: Cursor = PAGES["themes"]) -> Any:
    """The themes (and sub-themes, with `parent_id`) of every section, with their sizes and keywords."""
    synthesis = r.synthesis
    briefs = [
        ThemeBrief(
            id=t.id,
            label=t.label,
            keywords=t.keywords,
            parent_id=t.parent_id,
            n_contributions=t.n_contributions,
            n_participants=t.n_participants,
            section=i,
        )
        for i, sec in enumerate(synthesis.sections)
        for t in sec.themes
    ]
    return page.window(briefs)


@router.get(RESULT + "/themes/{theme_id}", response_model=ThemePage, tags=["results"])
def theme(theme_id: str, r: Read, page: Cursor = PAGES["members"]) -> Any:
    """The theme, its summary, and a page of its members with their full text."""
    synthesis = r.synthesis
    texts = {c.id: c.text for c in synthesis.contributions}
    for sec in synthesis.sections:
        for t in sec.themes:
            if t.id == theme_id:
                summary = next((x for x in sec.summaries if x.scope == t.id), None)
                members = page.window([MemberOut(id=c, text=texts[c]) for c in t.contribution_ids])
                return ThemePage(theme=t, summary=summary, members=members)
    raise svc.NotFound(f"no theme {theme_id}")


@router.get(RESULT + "/minority-views", response_model=Page[MinorityView], tags=["results"])
def minority_views(r: Read, page: Cursor = PAGES["minority-views"]) -> Any:
    """Views held by few that must not be lost, each with its statement, reason and evidence."""
    return page.window(r.sections("minority_views"))


@router.get(RESULT + "/breakdowns", response_model=Page[Breakdown], tags=["results"])
def breakdowns(r: Read, page: Cursor = PAGES["breakdowns"]) -> Any:
    """Per theme, its participants by group and by attribute value (cells under the privacy floor withheld)."""
    return page.window(r.sections("breakdowns"))


@router.get(RESULT + "/diff", response_model=RunDiff, tags=["results"])
def run_diff(
    project_id: str,
    run_id: str,
    s: DB,
    against: Annotated[str, Query(max_length=64, description="The earlier run's id (may be this run).")],
    against_revision: Revision = None,
    revision: Revision = None,
    who: Caller = CAN_READ,
) -> Any:
    """What changed from `against` (at `against_revision`) to this run (at `revision`): themes matched by their
    members (Hungarian on Jaccard), added, removed, grown, shrunk, renamed, split and merged themes, and moved
    contributions. Compare two revisions of one run by giving its own id as `against`."""
    before = svc.load_result(s, project_id, against, against_revision)[1]
    return diff(before, svc.load_result(s, project_id, run_id, revision)[1])


@router.get(
    RESULT + "/export/{to}",
    tags=["results"],
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
def export_peer(to: str, r: Read) -> Response:
    """The synthesis in a peer's format, as a zip: `tttc` (Talk to the City report JSON v0.2), `sensemaker`
    (categorized.csv, report_data.json), `themefinder` (Consult's mapping.jsonl, themes.json) or `kouchou`
    (hierarchical_result.json)."""
    if to not in EXPORTS:
        raise svc.NotFound(f"no export format {to[:40]!r}: one of {', '.join(EXPORTS)}")
    synthesis, title = r.synthesis, r.title()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in export_files(synthesis, to, title).items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)
    headers = {"Content-Disposition": f'attachment; filename="synth-{to}.zip"'}
    return Response(buffer.getvalue(), media_type="application/zip", headers=headers)


@router.get(RESULT + "/summaries", response_model=Page[Summary], tags=["results"])
def summaries(r: Read, page: Cursor = PAGES["summaries"]) -> Any:
    """Each section's overview and each theme's summary; every sentence has a stable id and cites its sources."""
    return page.window(r.sections("summaries"))


@router.get(RESULT + "/unassigned", response_model=Page[UnassignedOut], tags=["results"])
def unassigned(r: Read, page: Cursor = PAGES["unassigned"]) -> Any:
    """The passages that fit no theme, per section: read them, assign them, or mark them as minority views."""
    synthesis = r.synthesis
    segs = {x.id: x for x in synthesis.segments}
    items = [
        UnassignedOut(segment_id=i, contribution_id=segs[i].contribution_id, text=segs[i].text, section=n)
        for n, sec in enumerate(synthesis.sections)
        for i in sec.unassigned_segment_ids
    ]
    return page.window(items)


@router.get(RESULT + "/report.html", response_class=HTMLResponse, tags=["results"])
def report_html(r: Read) -> Any:
    """The self-contained HTML report of a revision (served sandboxed, with its own CSP)."""
    return HTMLResponse(render_html(r.synthesis, None, r.title()), headers=report_headers())


@router.get(RESULT + "/report.md", response_class=PlainTextResponse, tags=["results"])
def report_md(r: Read) -> Any:
    """The report of a revision in Markdown (every value escaped)."""
    return PlainTextResponse(render_markdown(r.synthesis, None, r.title()), media_type="text/markdown")


# --- review and audit -------------------------------------------------------------------------------


@router.post(RESULT + "/edits", status_code=201, response_model=EditOut, tags=["review"])
def edit(project_id: str, run_id: str, body: Edit, s: DB, who: Caller = CAN_EDIT) -> Any:
    """Apply one review edit; it makes a new revision, verified, and an audit event. The machine's original
    (revision 0) stays readable, and `revert_to_revision` undoes."""
    before = svc.load_result(s, project_id, run_id)[1]
    revision, _ = svc.review(s, project_id, run_id, body, who.actor)
    return EditOut(revision=revision, message=describe(before, body))


def _audit_out(e) -> AuditOut:  # noqa: ANN001 - AuditEvent
    return AuditOut.model_validate(e, from_attributes=True)


@router.get("/projects/{project_id}/audit", response_model=Page[AuditOut], tags=["audit"])
def audit_log(project_id: str, s: DB, who: Caller = CAN_READ, page: Cursor = PAGES["audit"]) -> Any:
    """Who did what, when, with what before and after, oldest first; each event hash-chained to the last."""
    repo.project(s, project_id)
    rows = repo.events(s, project_id, page.after, page.limit + 1)
    return page.page([_audit_out(e) for e in rows], key=lambda e: e.seq)


@router.get("/projects/{project_id}/audit/verify", response_model=ChainOut, tags=["audit"])
def audit_verify(project_id: str, s: DB, who: Caller = CAN_READ) -> Any:
    """Whether the audit chain is intact (no event changed, removed or reordered), and where it first breaks."""
    intact, broken = svc.verify_chain(s, project_id)
    return ChainOut(intact=intact, events=repo.count_events(s, project_id), first_broken_seq=broken)
