"""The facilitators' review pages: server-rendered, no script, over the same service layer as the API.

Sign-in with a project key puts the key's scope in a signed session cookie; every form carries the
session's CSRF token. Edits go through synth.service.review, so the pages and the API record the same
revisions and audit events.
"""

from __future__ import annotations

import secrets
import time
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import PackageLoader
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from synth import service as svc
from synth.config import SynthConfig
from synth.edits import Edit, EditError, describe
from synth.formats import ColumnMap, InputError, load_uploaded, preview_uploaded, upload_name
from synth.formats.common import column_map
from synth.llm import Endpoint
from synth.report import html_environment, render_html, render_markdown, report_headers
from synth.service import CAN, Caller
from synth.service import repository as repo
from synth.web.map import theme_colours, theme_map

router = APIRouter(prefix="/web", include_in_schema=False)
templates = Jinja2Templates(env=html_environment(PackageLoader("synth", "web/templates")))
EDIT = TypeAdapter(Edit)
CSS = files("synth").joinpath("web/static/synth.css").read_text(encoding="utf-8")


class Redirect(Exception):
    def __init__(self, url: str):
        self.url = url


def _csrf(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(24)
    return request.session["csrf"]


def _who(request: Request) -> Caller | None:
    """The signed-in caller, checked against the database on every request: a session ends when its holder
    signs out, when it expires, or when its key is revoked or expires. The cookie holds only a random id."""
    if hasattr(request.state, "who"):  # looked up once per request
        return request.state.who
    who = None
    sid = request.session.get("sid")
    if sid:
        with request.app.state.db.session() as s:
            key = svc.session_key(s, str(sid))
            if key is not None:
                who = Caller.of(key)
        if who is None:
            request.session.pop("sid", None)
    request.state.who = who
    return who


def _require(request: Request, project_id: str, action: str = "read") -> Caller:
    who = _who(request)
    if who is None:
        raise Redirect("/web/")
    if not who.sees(project_id) or who.role not in CAN[action]:
        raise Redirect("/web/forbidden")
    return who


async def _form(request: Request) -> Any:
    form = await request.form(max_files=2, max_fields=200)
    if not secrets.compare_digest(str(form.get("csrf", "")), request.session.get("csrf", "-")):
        raise Redirect("/web/forbidden")
    return form


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    who = _who(request)
    context.setdefault("project_id", who.project_id if who else None)
    flash = request.session.pop("flash", None)
    error = request.session.pop("error", None)
    undo = request.session.pop("undo", None)
    if undo and flash:  # the edit just made can be undone from the page that shows it
        context.setdefault("undo_action", f"/web/projects/{context.get('project_id')}/runs/{undo['run']}/edit")
        context.setdefault("undo_revision", undo["revision"])
    return templates.TemplateResponse(
        request,
        name,
        {"who": who, "csrf": _csrf(request), "flash": flash, "error": error, **context},
        status_code=status,
    )


def install(app: Any) -> None:
    app.state.pending_uploads = {}  # token -> an upload waiting for its column mapping (see _stash)

    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> RedirectResponse:
        return RedirectResponse(exc.url, status_code=303)


@router.get("/static/synth.css")
def stylesheet() -> Response:
    """The pages' only stylesheet, served from the package so the CSP can say style-src 'self'."""
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    who = _who(request)
    if who is not None:
        return RedirectResponse(f"/web/projects/{who.project_id}" if who.project_id else "/web/projects", 303)
    return page(request, "login.html.j2")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)

    def sign_in(token: str) -> tuple[Caller, str] | None:
        with request.app.state.db.session() as s:
            key = svc.authenticate(s, token)
            if key is None:
                return None
            return Caller.of(key), svc.start_session(s, key)

    signed = await run_in_threadpool(sign_in, str(form.get("key", "")).strip())
    if signed is None:
        request.session["error"] = "That key is not valid, or it was revoked or has expired."
        return RedirectResponse("/web/", 303)
    caller, sid = signed
    request.session.clear()
    request.session["sid"] = sid
    request.session["csrf"] = secrets.token_urlsafe(24)
    return RedirectResponse(f"/web/projects/{caller.project_id}" if caller.project_id else "/web/projects", 303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    sid = request.session.get("sid")
    if sid:

        def end() -> None:
            with request.app.state.db.session() as s:
                svc.end_session(s, str(sid))

        await run_in_threadpool(end)
    request.session.clear()
    return RedirectResponse("/web/", 303)


@router.get("/forbidden", response_class=HTMLResponse)
def forbidden(request: Request) -> Response:
    return page(request, "login.html.j2", 403, error="Your key cannot open that page.")


@router.get("/projects", response_class=HTMLResponse)
def projects(request: Request) -> Response:
    who = _who(request)
    if who is None:
        raise Redirect("/web/")
    with request.app.state.db.session() as s:
        return page(request, "projects.html.j2", projects=repo.projects(s, who.project_id))


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project(request: Request, project_id: str, error: str = "") -> Response:
    who = _require(request, project_id)
    if error == "too-large":  # the security middleware refused an upload over the limit before reading it
        request.session["error"] = f"The file is too large: the limit is {request.app.state.limits.body_bytes} bytes."
    with request.app.state.db.session() as s:
        try:
            p = repo.project(s, project_id)
        except svc.NotFound:
            raise Redirect("/web/forbidden") from None
        runs = list(reversed(repo.runs(s, project_id)))
        total = repo.count_contributions(s, project_id)
    busy = any(r.status in ("queued", "running") for r in runs)
    endpoint = Endpoint.of(SynthConfig())  # the server's own LLM settings (environment), if any
    return page(
        request,
        "project.html.j2",
        llm_configured=endpoint is not None,
        llm_host=endpoint.host if endpoint else "",
        llm_loopback=endpoint.loopback if endpoint else True,
        project=p,
        runs=runs,
        n_contributions=total,
        project_id=project_id,
        report=request.session.pop("report", None),
        refresh=2 if busy else None,
        can_upload=who.role in CAN["upload"],
        can_run=who.role in CAN["run"],
    )


@router.post("/projects/{project_id}/upload")
async def upload(request: Request, project_id: str) -> Response:
    """The same reader and limits as the API; parsing and storing run in a thread, off the event loop."""
    who = _require(request, project_id, "upload")
    back = RedirectResponse(f"/web/projects/{project_id}", 303)
    try:
        form = await _form(request)
    except HTTPException as exc:  # the security middleware cut the body off at the limit
        request.session["error"] = f"The file is too large: {exc.detail}."
        return back
    upload, votes, fmt = form.get("file"), form.get("participants_votes"), str(form.get("format") or "auto")
    if upload is None or not getattr(upload, "filename", ""):
        request.session["error"] = "Choose a file to upload."
        return back
    has_votes = votes is not None and getattr(votes, "filename", "")
    data, votes_data = await upload.read(), (await votes.read() if has_votes else None)
    if votes_data is None and fmt != "polis":  # a table: show what it holds and let the facilitator map it
        token = _stash(request, project_id, upload.filename, data, fmt)
        return RedirectResponse(f"/web/projects/{project_id}/uploads/{token}", 303)
    return await _import(request, project_id, who, upload.filename, data, fmt, votes_data, None)


async def _import(
    request: Request,
    project_id: str,
    who: Caller,
    filename: str,
    data: bytes,
    fmt: str,
    votes_data: bytes | None,
    columns: ColumnMap | None,
) -> Response:
    """Read with the mapping, check the limits, store; back to the project page with what was read."""
    back = RedirectResponse(f"/web/projects/{project_id}", 303)
    limits = request.app.state.limits

    def read_and_store() -> dict:
        loaded = load_uploaded(filename, data, fmt, votes_data, columns)
        svc.check_upload(loaded, limits)
        with request.app.state.db.session() as s:
            report = svc.add_contributions(s, project_id, loaded, f"{who.actor} (web)")
        report["source"] = loaded.source
        return report

    try:
        report = await run_in_threadpool(read_and_store)
    except InputError as exc:
        request.session["error"] = f"{exc.file}: {exc.message}"
        return back
    except (svc.TooLarge, svc.Invalid) as exc:
        request.session["error"] = f"{upload_name(filename)}: {exc}"
        return back
    request.session["report"] = report
    request.session["flash"] = f"Read {report['received']} contributions from {report['source']}."
    return back


PENDING_MAX, PENDING_SECONDS = 20, 1800  # uploads waiting for their mapping, per server process


def _stash(request: Request, project_id: str, filename: str, data: bytes, fmt: str) -> str:
    """Keep an upload in memory while the facilitator maps its columns (bounded in number and time; the body
    size is already bounded by the upload limit)."""
    pending = request.app.state.pending_uploads
    now = time.monotonic()
    for token in [t for t, p in pending.items() if now - p["at"] > PENDING_SECONDS]:
        del pending[token]
    while len(pending) >= PENDING_MAX:
        del pending[next(iter(pending))]
    token = secrets.token_urlsafe(16)
    pending[token] = {"project": project_id, "sid": request.session.get("sid"), "name": filename, "data": data,
                      "fmt": fmt, "at": now}  # fmt: skip
    return token


def _pending(request: Request, project_id: str, token: str) -> dict:
    item = request.app.state.pending_uploads.get(token)
    if item is None or item["project"] != project_id or item["sid"] != request.session.get("sid"):
        request.session["error"] = "That upload is no longer waiting (it expired, or was imported): upload it again."
        raise Redirect(f"/web/projects/{project_id}")
    return item


@router.get("/projects/{project_id}/uploads/{token}", response_class=HTMLResponse)
async def mapping_page(request: Request, project_id: str, token: str) -> Response:
    _require(request, project_id, "upload")
    item = _pending(request, project_id, token)
    return await _mapping(request, project_id, token, item, ColumnMap())


async def _mapping(
    request: Request, project_id: str, token: str, item: dict, columns: ColumnMap, problem: str | None = None
) -> Response:
    """The preview: the file's columns with the role each plays, the first contributions, and the counts."""
    try:
        preview = await run_in_threadpool(preview_uploaded, item["name"], item["data"], item["fmt"], None, columns)
    except InputError as exc:
        problem, preview = f"{exc.file}: {exc.message}", None
        if columns != ColumnMap():  # show the file's columns again, with what the reader found on its own
            try:
                preview = await run_in_threadpool(preview_uploaded, item["name"], item["data"], item["fmt"])
            except InputError:
                preview = None
    return page(request, "mapping.html.j2", project_id=project_id, token=token, preview=preview, problem=problem,
                file_name=upload_name(item["name"]))  # fmt: skip


@router.post("/projects/{project_id}/uploads/{token}")
async def mapping_submit(request: Request, project_id: str, token: str) -> Response:
    who = _require(request, project_id, "upload")
    form = await _form(request)
    item = _pending(request, project_id, token)
    try:
        columns = column_map(form.getlist)
    except InputError as exc:
        return await _mapping(request, project_id, token, item, ColumnMap(), exc.message)
    if form.get("action") != "import":
        return await _mapping(request, project_id, token, item, columns)
    response = await _import(request, project_id, who, item["name"], item["data"], item["fmt"], None, columns)
    if "error" in request.session:  # stay on the mapping, with the reason shown
        return RedirectResponse(f"/web/projects/{project_id}/uploads/{token}", 303)
    request.app.state.pending_uploads.pop(token, None)
    return response


@router.post("/projects/{project_id}/runs")
async def start_run(request: Request, project_id: str) -> Response:
    who = _require(request, project_id, "run")
    form = await _form(request)
    limits = request.app.state.limits
    earlier = str(form.get("from_run") or "")[:64]
    overrides = {"draft": True} if form.get("draft") else {}

    def start() -> None:
        with request.app.state.db.session() as s:
            svc.start_run(
                s,
                project_id,
                overrides,
                f"{who.actor} (web)",
                limits,
                (earlier, None) if earlier else None,
                name=str(form.get("name") or "")[:200],
            )

    try:
        await run_in_threadpool(start)
        request.session["flash"] = "Incremental run started." if earlier else "Run started."
    except (svc.Conflict, svc.TooLarge, svc.NotFound) as exc:
        request.session["error"] = str(exc)
    request.app.state.wake()
    return RedirectResponse(f"/web/projects/{project_id}", 303)


def _load(request: Request, project_id: str, run_id: str, revision: int | None = None) -> tuple[int, Any]:
    with request.app.state.db.session() as s:
        return svc.load_result(s, project_id, run_id, revision)


def _result(request: Request, project_id: str, run_id: str) -> tuple[int, Any]:
    try:
        return _load(request, project_id, run_id)
    except svc.NotFound:  # a missing run or result: back to the project page
        raise Redirect(f"/web/projects/{project_id}") from None


def _base(project_id: str, run_id: str) -> str:
    return f"/web/projects/{project_id}/runs/{run_id}"


@router.get("/projects/{project_id}/runs/{run_id}", response_class=HTMLResponse)
def run_overview(request: Request, project_id: str, run_id: str) -> Response:
    who = _require(request, project_id)
    revision, s = _result(request, project_id, run_id)
    with request.app.state.db.session() as session:
        run = repo.run(session, project_id, run_id)
        extends = (run.snapshot or {}).get("extends")
        earlier = repo.run(session, project_id, extends["run_id"]) if extends else None
        about = {
            "name": run.name,
            "sources": run.sources or [],
            "from": {"name": earlier.name, "id": earlier.id, "revision": extends["revision"]} if earlier else None,
        }
    return page(
        request,
        "run.html.j2",
        s=s,
        run=about,
        revision=revision,
        base=_base(project_id, run_id),
        map_svg=theme_map(s),
        colours=theme_colours(s),
        can_edit=who.role in CAN["edit"],
        project_id=project_id,
    )


@router.get("/projects/{project_id}/runs/{run_id}/coding", response_class=HTMLResponse)
def coding_page(request: Request, project_id: str, run_id: str) -> Response:
    """The codebook's codes with their passages and scores, the passages a person must decide, those that fit
    no code, and the candidate new codes; passages can be coded from here."""
    who = _require(request, project_id)
    revision, s = _result(request, project_id, run_id)
    segs = {x.id: x for x in s.segments}
    return page(
        request,
        "coding.html.j2",
        s=s,
        segs=segs,
        revision=revision,
        base=_base(project_id, run_id),
        can_edit=who.role in CAN["edit"],
    )


@router.get("/projects/{project_id}/runs/{run_id}/changes", response_class=HTMLResponse)
def changes(request: Request, project_id: str, run_id: str, against: str = "") -> Response:
    """What changed since another run (or this run's first revision): the diff, for a facilitator to read."""
    from synth.diff import diff

    _require(request, project_id)
    revision, after = _result(request, project_id, run_id)
    against = against[:64] or run_id
    try:
        before_revision, before = _load(request, project_id, against, 0 if against == run_id else None)
    except svc.NotFound:  # an unknown run: back to the overview with a message
        request.session["error"] = "No such run to compare with."
        raise Redirect(_base(project_id, run_id)) from None
    with request.app.state.db.session() as s:
        others = [r for r in repo.runs(s, project_id) if r.status == "succeeded"]
    return page(
        request,
        "changes.html.j2",
        d=diff(before, after),
        base=_base(project_id, run_id),
        against=against,
        same_run=against == run_id,
        before_revision=before_revision,
        revision=revision,
        others=others,
        run_id=run_id,
    )


@router.get("/projects/{project_id}/runs/{run_id}/themes/{theme_id}", response_class=HTMLResponse)
def theme_page(request: Request, project_id: str, run_id: str, theme_id: str, offset: int = 0) -> Response:
    who = _require(request, project_id)
    _, s = _result(request, project_id, run_id)
    for n, sec in enumerate(s.sections):
        for t in sec.themes:
            if t.id == theme_id:
                limit, offset = 50, max(0, offset)
                others = [o for o in sec.themes if o.parent_id is None and o.id != t.id]
                return page(
                    request,
                    "theme.html.j2",
                    t=t,
                    section=n,
                    base=_base(project_id, run_id),
                    summary=next((x for x in sec.summaries if x.scope == t.id), None),
                    subs=[x for x in sec.themes if x.parent_id == t.id],
                    others=others,
                    members=t.contribution_ids[offset : offset + limit],
                    offset=offset,
                    limit=limit,
                    texts={c.id: c.text for c in s.contributions},
                    can_edit=who.role in CAN["edit"],
                    project_id=project_id,
                )
    raise Redirect(_base(project_id, run_id))


@router.get("/projects/{project_id}/runs/{run_id}/unassigned", response_class=HTMLResponse)
def unassigned(request: Request, project_id: str, run_id: str) -> Response:
    who = _require(request, project_id)
    _, s = _result(request, project_id, run_id)
    segs = {x.id: x for x in s.segments}
    queues = []  # per question: a contribution can move only to its own question's themes
    for sec in s.sections:
        seen: set[str] = set()
        items = []
        for sid in sec.unassigned_segment_ids:
            if segs[sid].contribution_id not in seen:
                seen.add(segs[sid].contribution_id)
                items.append(segs[sid])
        queues.append((sec.question, items, [t for t in sec.themes if t.parent_id is None]))
    return page(
        request,
        "unassigned.html.j2",
        queues=queues,
        base=_base(project_id, run_id),
        can_edit=who.role in CAN["edit"],
        project_id=project_id,
    )


# :path, because ids come from participants and may hold "/" (a link keeps it; the route must too)
@router.get("/projects/{project_id}/runs/{run_id}/contributions/{contribution_id:path}", response_class=HTMLResponse)
def contribution(
    request: Request, project_id: str, run_id: str, contribution_id: str, start: int = 0, end: int = 0
) -> Response:
    _require(request, project_id)
    _, s = _result(request, project_id, run_id)
    c = next((x for x in s.contributions if x.id == contribution_id), None)
    if c is None:
        raise Redirect(_base(project_id, run_id))
    start, end = max(0, min(start, len(c.text))), max(0, min(end, len(c.text)))
    if end <= start:
        start = end = 0
    themes = [t for sec in s.sections for t in sec.themes if t.parent_id is None and c.id in t.contribution_ids]
    excluded = next((e.reason for e in s.excluded if e.contribution_id == c.id), None)
    return page(
        request,
        "contribution.html.j2",
        c=c,
        before=c.text[:start],
        cited=c.text[start:end],
        after=c.text[end:],
        themes=themes,
        excluded=excluded,
        base=_base(project_id, run_id),
        project_id=project_id,
    )


@router.post("/projects/{project_id}/runs/{run_id}/edit")
async def edit(request: Request, project_id: str, run_id: str) -> Response:
    who = _require(request, project_id, "edit")
    form = await _form(request)
    data: dict[str, Any] = {"action": form.get("action")}
    for key in ("theme_id", "label", "reason", "view_id", "scope", "status", "text"):
        if form.get(key):
            data[key] = str(form.get(key))
    for key in ("index", "section", "revision"):
        value = str(form.get(key) or "")
        if value:
            data[key] = int(value) if value.isdigit() else value  # a non-number fails validation below
    if data["action"] == "merge_themes":
        data["theme_ids"] = [str(x) for x in form.getlist("theme_ids")]
    if data["action"] in ("move_contributions", "split_theme", "mark_minority", "code_contributions"):
        data["contribution_ids"] = [str(x) for x in form.getlist("contribution_ids")]
    if data["action"] == "code_contributions":
        data["code_id"] = str(form.get("code_id") or "") or None
    if data["action"] == "move_contributions":
        destination = str(form.get("to_theme_id") or "")
        if not destination:
            request.session["error"] = "Choose where to move the selected contributions."
            return RedirectResponse(_same_run_page(request.headers.get("referer"), _base(project_id, run_id)), 303)
        data["to_theme_id"] = None if destination == "unassigned" else destination
        data.pop("theme_id", None)
    if data["action"] == "mark_minority":
        data.pop("theme_id", None)
    if data["action"] == "review_sentence" and data.get("text") and "status" not in data:
        data["status"] = None
    back = _same_run_page(request.headers.get("referer"), _base(project_id, run_id))
    try:
        parsed = EDIT.validate_python(data)
    except ValidationError as exc:
        request.session["error"] = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        return RedirectResponse(back, 303)
    _, before = _result(request, project_id, run_id)
    if data["action"] in ("merge_themes", "move_contributions") and form.get("confirmed") != "yes":
        return _confirm(request, project_id, run_id, form, before, parsed, back)

    def save(parsed: Any) -> int:
        with request.app.state.db.session() as s:
            return svc.review(s, project_id, run_id, parsed, f"{who.actor} (web)")[0]

    try:
        revision = await run_in_threadpool(save, parsed)
    except (EditError, svc.NotFound, svc.Conflict) as exc:
        request.session["error"] = str(exc)
        return RedirectResponse(back, 303)
    except IntegrityError:  # another edit of the same revision was saved at the same moment
        request.session["error"] = "Someone saved another edit at the same moment; look again and retry."
        return RedirectResponse(back, 303)
    request.session["flash"] = describe(before, parsed)
    request.session["undo"] = {"run": run_id, "revision": revision - 1}
    return RedirectResponse(_landing(project_id, run_id, parsed, back), 303)


def _landing(project_id: str, run_id: str, edit: Any, back: str) -> str:
    """The page that shows what an edit did: the merged theme, the theme a split left (the new one is linked
    from it), the destination of a move; otherwise the page the edit was made on."""
    base = _base(project_id, run_id)
    if edit.action == "merge_themes":
        return f"{base}/themes/{edit.theme_ids[0]}"
    if edit.action in ("split_theme", "rename_theme"):
        return f"{base}/themes/{edit.theme_id}"
    if edit.action == "move_contributions":
        return f"{base}/themes/{edit.to_theme_id}" if edit.to_theme_id else f"{base}/unassigned"
    if edit.action == "revert_to_revision":
        return base
    return back


def _confirm(request: Request, project_id: str, run_id: str, form: Any, before: Any, edit: Any, back: str) -> Response:
    """A merge or a move is asked once more, naming both sides; the form carries the same fields plus
    confirmed=yes, so nothing is merged or moved by one careless click."""
    themes = {t.id: t for sec in before.sections for t in sec.themes}
    fields = [(k, str(v)) for k, v in form.multi_items() if k not in ("csrf", "confirmed")]
    if edit.action == "merge_themes":
        into = themes.get(edit.theme_ids[0])
        others = [themes[i] for i in edit.theme_ids[1:] if i in themes]
        question = (
            f"Merge {', '.join(repr(o.title or o.label) for o in others)} "
            f"({sum(o.n_contributions for o in others)} contributions) into "
            f"'{(into.title or into.label) if into else edit.theme_ids[0]}' "
            f"({into.n_contributions if into else 0} contributions)?"
        )
    else:
        owner = {x.id: x.contribution_id for x in before.segments}
        wanted = set(edit.contribution_ids)
        sources = sorted(
            {
                t.title or t.label
                for t in themes.values()
                if t.parent_id is None and wanted & {owner[i] for i in t.segment_ids}
            }
        )
        destination = themes.get(edit.to_theme_id) if edit.to_theme_id else None
        where = f"'{destination.title or destination.label}'" if destination else "the unassigned list"
        n, origin = len(wanted), ", ".join(repr(x) for x in sources) or "the unassigned list"
        question = f"Move {n} contribution{'s' if n != 1 else ''} from {origin} to {where}?"
    return page(
        request,
        "confirm.html.j2",
        question=question,
        fields=fields,
        action=f"{_base(project_id, run_id)}/edit",
        back=back,
        project_id=project_id,
    )


def _same_run_page(referer: str | None, base: str) -> str:
    """Where to land after an edit: the page it was made on, if that is a page of this run on this site;
    otherwise the run overview. Never an address from the request as it stands (an open redirect)."""
    if referer:
        parts = urlsplit(referer)
        path = parts.path
        ours = (path == base or path.startswith(base + "/")) and ".." not in path and "//" not in path
        if ours and not path.endswith("/edit"):  # a confirmation page answers a POST to /edit: not a page
            return path + (f"?{parts.query}" if parts.query else "")
    return base


@router.get("/projects/{project_id}/runs/{run_id}/report", response_class=HTMLResponse)
def report(request: Request, project_id: str, run_id: str) -> Response:
    _require(request, project_id)
    revision, _ = _result(request, project_id, run_id)
    return page(request, "report.html.j2", revision=revision, base=_base(project_id, run_id), project_id=project_id)


@router.get("/projects/{project_id}/runs/{run_id}/export.{kind}")
def export(request: Request, project_id: str, run_id: str, kind: str, inline: int = 0) -> Response:
    _require(request, project_id)
    revision, s = _result(request, project_id, run_id)
    with request.app.state.db.session() as session:
        title = svc.report_title(session, project_id, run_id, revision)
    disposition = {} if inline else {"Content-Disposition": f'attachment; filename="synthesis-r{revision}.{kind}"'}
    if kind == "html":
        return HTMLResponse(render_html(s, None, title), headers={**disposition, **report_headers()})
    if kind == "md":
        return PlainTextResponse(render_markdown(s, None, title), media_type="text/markdown", headers=disposition)
    if kind == "json":
        return Response(s.model_dump_json(indent=2), media_type="application/json", headers=disposition)
    raise Redirect(_base(project_id, run_id))


def _audit_rows(request: Request, project_id: str, who: str, action: str, theme: str) -> tuple[list[dict], dict]:
    """The project's events as sentences (with their details), filtered by person, action and theme."""
    from synth.service.audit import mentions, sentence

    with request.app.state.db.session() as s:
        events = svc.audit_events(s, project_id)
    choices = {
        "people": sorted({e.actor for e in events}),
        "actions": sorted({e.action for e in events}),
        "total": len(events),
    }
    rows = [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "sentence": sentence(e),
            "before": e.before,
            "after": e.after,
            "hash": e.hash,
        }
        for e in events
        if (not who or e.actor == who) and (not action or e.action == action) and (not theme or mentions(e, theme))
    ]
    return rows, choices


@router.get("/projects/{project_id}/audit", response_class=HTMLResponse)
def audit_page(request: Request, project_id: str, who: str = "", action: str = "", theme: str = "") -> Response:
    _require(request, project_id)
    rows, choices = _audit_rows(request, project_id, who[:200], action[:60], theme[:64])
    with request.app.state.db.session() as s:  # checked for the page; an export carries the hashes instead
        choices["intact"], choices["broken"] = svc.verify_chain(s, project_id)
    query = urlencode({k: v for k, v in (("who", who), ("action", action), ("theme", theme)) if v})
    return page(
        request,
        "audit.html.j2",
        events=rows,
        project_id=project_id,
        chosen={"who": who, "action": action, "theme": theme},
        query=query,
        **choices,
    )


@router.get("/projects/{project_id}/audit.{kind}")
def audit_export(
    request: Request, project_id: str, kind: str, who: str = "", action: str = "", theme: str = ""
) -> Response:
    """The (filtered) audit log as CSV or JSON: one row per event, its sentence and its details."""
    import csv
    import io
    import json

    _require(request, project_id)
    if kind not in ("csv", "json"):
        raise HTTPException(404)
    rows, _ = _audit_rows(request, project_id, who[:200], action[:60], theme[:64])
    name = f'attachment; filename="synth-audit.{kind}"'
    if kind == "json":
        body = json.dumps(rows, ensure_ascii=False, indent=1)
        return Response(body, media_type="application/json", headers={"Content-Disposition": name})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "actor", "action", "target", "sentence", "before", "after", "hash"])
    for r in rows:
        cells = [r["seq"], r["at"], r["actor"], r["action"], r["target"], r["sentence"]]
        cells += [json.dumps(r["before"], ensure_ascii=False), json.dumps(r["after"], ensure_ascii=False), r["hash"]]
        writer.writerow([_spreadsheet_safe(str(c)) for c in cells])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": name})


def _spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with an apostrophe."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


__all__ = ["install", "router"]
