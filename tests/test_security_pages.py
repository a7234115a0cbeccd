"""Stored XSS cannot come back: a hostile corpus goes in through the API and every page and report comes out inert.

Participant text, ids, group names, theme labels, minority reasons, key names, project and file names are all
attacker-controlled. A security review once found Jinja's autoescape off for our `.html.j2` templates; these
tests would have caught it. Real comments from the Polis fixture carry injected payloads (so themes still form);
they are uploaded with a platform key, run by the in-process worker, edited with hostile labels, and then every
review page, the report preview, the HTML export, the CLI's HTML report and its Markdown report (rendered with
raw HTML allowed, the worst case) are opened in a real headless Chromium. Each must show the payloads as text,
create no element from them, hold no script, open no dialog, report no CSP violation and send the security
headers. The last tests check that every template is rendered with autoescape, and that every `|safe` is one
we reviewed.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from jinja2 import Environment
from markdown_it import MarkdownIt
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Response

import synth.web
from synth.app import create_app
from synth.config import SynthConfig
from synth.edits import MarkMinority, MoveContributions, RenameTheme, apply_edit
from synth.formats import load_contributions
from synth.pipeline import run
from synth.report import _env, markdown_escape, render_html, render_markdown
from synth.schema import Synthesis
from synth.service import create_key
from tests.conftest import POLIS, serving

pytestmark = pytest.mark.enable_socket  # the browser and the API client talk to a server on 127.0.0.1

# Every payload that would make an element marks it (data-pwned or id=pwned), so one DOM query finds it.
ID_PAYLOADS = [
    "<img src=x onerror=alert(1) data-pwned>",
    '"><svg onload=alert(2) data-pwned>',
    "javascript:alert(3)",
    "</textarea><script data-pwned>alert(4)</script>",
    "dir/sub?q=1#frag",
    "' onmouseover='alert(9)' data-pwned='",
]
GROUP_PAYLOADS = ["<b id=pwned>grp</b>", "<script data-pwned>alert(5)</script>"]
TEXT_PAYLOADS = [
    "[click](javascript:alert(6))",
    '![x](x" onerror="alert(7))',
    "<iframe src=javascript:alert(8) data-pwned></iframe>",
    '" onmouseover="alert(9)" data-pwned="',
    "</style><script data-pwned>alert(10)</script>",
    "<img src=x onerror=alert(13) data-pwned>",
    "</title><svg onload=alert(14) data-pwned>",
    '<a href="javascript:alert(15)" data-pwned>link</a>',
    "&lt;img src=x onerror=alert(16) data-pwned&gt;",  # an entity must stay an entity, not be decoded to markup
    "\n<script data-pwned>alert(17)</script>\n",  # at a line's start: Markdown's HTML-block trigger
    "[official result](https://pwned.invalid/) ![chart](https://pwned.invalid/x.png)",  # Markdown-only
]
MOVED_TEXT = "<img src=x onerror=alert(13) data-pwned>"  # its row and the first hostile id's go to the queue
FILE_NAME = "<img src=x onerror=alert(11) data-pwned>.csv"
LABEL = "<img src=x onerror=alert(12) data-pwned>"
REASON = "<svg onload=alert(18) data-pwned> stands apart"
PROJECT_NAME = "<b id=pwned>Brexit</b> <img src=x onerror=alert(21) data-pwned>"
ADMIN_NAME = "<img src=x onerror=alert(22) data-pwned>"
PLATFORM_NAME = "<img src=x onerror=alert(19) data-pwned>"
FACILITATOR_NAME = '"><script data-pwned>alert(20)</script>'

INJECTED = (
    "[data-pwned], #pwned, img[onerror], svg[onload], iframe[src^='javascript'], a[href^='javascript'], "
    "[onerror], [onload], [onmouseover]"
)
OUTSIDE = re.compile(r"^(?!http://127\.0\.0\.1:)https?://")
# Runs in every document (Playwright injects it past the CSP): records what the CSP blocked.
VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', "
    "e => (window.__violations ||= []).push(e.violatedDirective + ' ' + e.blockedURI))"
)
# One look at a document: what was injected, scripts, CSP violations, and all its text (title included).
INSPECT = f"""() => ({{
    injected: [...document.querySelectorAll({INJECTED!r})].slice(0, 5).map(e => e.outerHTML.slice(0, 120)),
    scripts: document.scripts.length,
    violations: window.__violations || [],
    text: document.documentElement.textContent,
}})"""


def hostile_rows() -> list[dict[str, str]]:
    """The 50 real comments with payloads in ids, texts and group names; every row keeps its real text."""
    with (POLIS / "comments.csv").open(encoding="utf-8", newline="") as f:
        comments = list(csv.DictReader(f))
    rows = [
        {"id": c["comment-id"], "text": c["comment-body"], "group": "north" if i % 2 else "south"}
        for i, c in enumerate(comments)
    ]
    for row, payload in zip(rows[:6], ID_PAYLOADS, strict=True):
        row["id"] = payload
    for row, payload in zip(rows[6:17], TEXT_PAYLOADS, strict=True):
        row["text"] += " " + payload
    for i, row in enumerate(rows[17:37]):
        row["group"] = GROUP_PAYLOADS[i % 2]
    return rows


@pytest.fixture(scope="module")
def hostile_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        # no attribute column: the generic reader takes attributes only when --attr-cols names them
        writer = csv.DictWriter(f, ["id", "text", "group"])
        writer.writeheader()
        writer.writerows(hostile_rows())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('secweb') / 'synth.db'}", run_worker=True)
    with app.state.db.session() as s:
        admin = create_key(s, "admin", None, ADMIN_NAME)[1]
    with serving(app) as port:
        yield {"url": f"http://127.0.0.1:{port}", "admin": admin}


def _ok(r: httpx.Response) -> Any:
    assert r.is_success, (r.status_code, r.text)
    return r.json()


@pytest.fixture(scope="module")
def seeded(server: dict, hostile_csv: Path) -> dict:
    """Everything through the API: a hostile project, hostile key names, the upload under a hostile file name,
    a run, then a hostile theme label, a hostile minority reason and a hostile row moved to the queue."""
    with httpx.Client(base_url=server["url"] + "/v1", timeout=60) as api:
        admin = {"X-API-Key": server["admin"]}
        pid = _ok(api.post("/projects", json={"name": PROJECT_NAME}, headers=admin))["id"]
        keys = {
            role: _ok(api.post(f"/projects/{pid}/keys", json={"role": role, "name": name}, headers=admin))["key"]
            for role, name in (("platform", PLATFORM_NAME), ("facilitator", FACILITATOR_NAME))
        }
        platform, facilitator = {"X-API-Key": keys["platform"]}, {"X-API-Key": keys["facilitator"]}
        files = {"file": (FILE_NAME, hostile_csv.read_bytes(), "text/csv")}
        report = _ok(api.post(f"/projects/{pid}/contributions", files=files, headers=platform))
        assert report["created"] == 50, report
        rid = _ok(api.post(f"/projects/{pid}/runs", json={"config": {}}, headers=platform))["id"]
        deadline = time.monotonic() + 180
        while (status := _ok(api.get(f"/projects/{pid}/runs/{rid}", headers=platform)))["status"] != "succeeded":
            assert status["status"] in ("queued", "running") and time.monotonic() < deadline, status
            time.sleep(0.2)
        themes = _ok(api.get(f"/projects/{pid}/runs/{rid}/themes", headers=platform))["items"]
        assert len(themes) >= 2, themes  # real comments still form themes
        moved = next(r["id"] for r in hostile_rows() if MOVED_TEXT in r["text"])
        edits = [
            {"action": "rename_theme", "theme_id": themes[0]["id"], "label": LABEL},
            {"action": "move_contributions", "contribution_ids": [moved, ID_PAYLOADS[0]], "to_theme_id": None},
            {"action": "mark_minority", "contribution_ids": ID_PAYLOADS, "reason": REASON},
        ]
        for edit in edits:
            _ok(api.post(f"/projects/{pid}/runs/{rid}/edits", json=edit, headers=facilitator))
    top = [t for t in themes if t["parent_id"] is None]  # the overview lists these; sub-themes are on their pages
    return {"pid": pid, "rid": rid, "facilitator": keys["facilitator"], "n_themes": len(top)}


@dataclass
class Tab:
    """One signed-in page and what it saw: dialogs, and the headers of every document it loaded."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def record(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.headers[response.url.split("#")[0]] = response.headers


def open_tab(context: BrowserContext) -> Tab:
    context.set_default_timeout(10_000)  # every page is local: fail fast, not after 30 s a step
    context.route(OUTSIDE, lambda route: route.abort())  # an injected link or image must not reach out
    context.add_init_script(VIOLATIONS)
    tab = Tab(context.new_page())
    tab.page.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.page.on("response", tab.record)
    return tab


@pytest.fixture(scope="module")
def tab(browser: Browser, server: dict, seeded: dict) -> Iterator[Tab]:
    """The facilitator, signed in through the form."""
    context = browser.new_context()
    t = open_tab(context)
    t.page.goto(server["url"] + "/web/")
    t.page.get_by_label("Project key").fill(seeded["facilitator"])
    t.page.get_by_role("button", name="Sign in").click()
    t.page.wait_for_url(f"**/web/projects/{seeded['pid']}")
    yield t
    context.close()


def inspect(frame: Frame) -> dict:
    return frame.evaluate(INSPECT)


def problems(tab: Tab, shown: list[str], served: bool = True) -> list[str]:
    """Everything wrong with the page as it stands, in every frame; `shown` must be visible as text."""
    page = tab.page
    page.wait_for_load_state("load")
    page.wait_for_timeout(50)  # violation events are queued tasks: let them land
    found, text = [], ""
    for frame in page.frames:
        where = frame.url[:100]
        if frame is not page.main_frame and not frame.url.startswith("http://127.0.0.1:"):
            found.append(f"a frame we did not make: {where!r}")  # e.g. an injected javascript: iframe
            continue  # it may never get a document to evaluate in
        seen = inspect(frame)
        if seen["injected"]:
            found.append(f"{where}: injected elements {seen['injected']}")
        if seen["scripts"]:
            found.append(f"{where}: {seen['scripts']} script elements")
        if seen["violations"]:
            found.append(f"{where}: CSP violations {seen['violations']}")
        text += seen["text"]
    if tab.dialogs:
        found.append(f"dialogs opened: {tab.dialogs}")
    found += [f"{page.url[:100]}: payload not shown as text: {s!r}" for s in shown if s not in text]
    if served:
        found += header_problems(tab.headers.get(page.url.split("#")[0]), page.url)
    return found


def csp_problems(csp: str) -> list[str]:
    if "default-src 'none'" not in csp or "script-src" in csp or "unsafe-inline" in csp:
        return [f"CSP is not strict and script-free: {csp!r}"]
    return []


def header_problems(headers: dict[str, str] | None, url: str) -> list[str]:
    if headers is None:
        return [f"{url}: no document response recorded"]
    csp = headers.get("content-security-policy", "")
    wrong = csp_problems(csp)
    if "x-frame-options" not in headers and "frame-ancestors" not in csp:
        wrong.append("neither X-Frame-Options nor frame-ancestors")
    if headers.get("x-content-type-options") != "nosniff":
        wrong.append("no X-Content-Type-Options: nosniff")
    if not headers.get("referrer-policy"):
        wrong.append("no Referrer-Policy")
    return [f"{url}: {w}" for w in wrong]


def base_url(server: dict, seeded: dict) -> str:
    return f"{server['url']}/web/projects/{seeded['pid']}/runs/{seeded['rid']}"


def open_overview(tab: Tab, server: dict, seeded: dict) -> None:
    """The run overview, reached as a facilitator does: the project page's Overview link."""
    tab.page.goto(f"{server['url']}/web/projects/{seeded['pid']}")
    tab.page.get_by_role("link", name="Overview").first.click()
    tab.page.wait_for_url(base_url(server, seeded))


def test_projects_and_project_page(tab: Tab, server: dict, seeded: dict) -> None:
    tab.page.goto(server["url"] + "/web/")  # signed in: sends the facilitator on to the project page
    tab.page.wait_for_url(f"**/web/projects/{seeded['pid']}")
    found = problems(tab, [PROJECT_NAME])
    tab.page.goto(server["url"] + "/web/projects")
    found += problems(tab, [PROJECT_NAME])
    assert not found, found


def test_run_overview(tab: Tab, server: dict, seeded: dict) -> None:
    open_overview(tab, server, seeded)
    shown = [LABEL, REASON, *(f"#{i}" for i in ID_PAYLOADS)]  # minority panel links name the hostile ids
    found = problems(tab, shown)
    assert not found, found


def test_every_theme_page(tab: Tab, server: dict, seeded: dict) -> None:
    open_overview(tab, server, seeded)
    links = tab.page.locator("table.themes a[href*='/themes/']")
    assert links.count() == seeded["n_themes"]
    found = []
    for i in range(links.count()):
        links.nth(i).click()
        # the renamed label is the heading of its own page and a merge / move choice on every other
        found += problems(tab, [LABEL])
        tab.page.go_back()
    assert not found, found


def test_unassigned_queue(tab: Tab, server: dict, seeded: dict) -> None:
    open_overview(tab, server, seeded)
    tab.page.get_by_role("link", name="Unassigned queue").click()
    # the queue shows each contribution's first unassigned passage, after its id; themes are assign choices
    shown = [f"#{ID_PAYLOADS[0]}:", LABEL]
    found = problems(tab, shown)
    assert not found, found


def test_contribution_pages_from_links(tab: Tab, server: dict, seeded: dict) -> None:
    """Every link of the hostile minority view (ids urlencoded by the template) and a few citations."""
    open_overview(tab, server, seeded)
    card = tab.page.locator(".minority", has_text=REASON)
    links = card.locator("details a[href*='/contributions/']")  # the full list of members, behind a summary
    names = [n.removeprefix("#") for n in links.all_text_contents()]
    assert sorted(names) == sorted(ID_PAYLOADS)
    found = []
    for i, cid in enumerate(names):  # '</textarea>…' and 'dir/sub?q=1#frag' hold '/': the route must take it
        tab.page.locator(".minority", has_text=REASON).locator("details summary").click()
        links.nth(i).click()
        found += problems(tab, [f"Contribution #{cid}"])
        tab.page.go_back()
    tab.page.locator("table a[href*='/themes/']").first.click()
    cites = tab.page.locator("a.cite")
    assert cites.count() >= 3
    for i in range(3):
        cites.nth(i).click()
        found += problems(tab, ["Contribution #"])
        assert tab.page.locator("#source mark").count() == 1  # the cited span
        tab.page.go_back()
    assert not found, found


def test_report_preview_is_sandboxed(tab: Tab, server: dict, seeded: dict) -> None:
    open_overview(tab, server, seeded)
    tab.page.get_by_role("link", name="Report and exports").click()
    frame = tab.page.locator("iframe")
    sandbox = frame.get_attribute("sandbox")
    assert sandbox is not None and "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    tab.page.frame_locator("iframe").locator("h1").wait_for()
    # the preview frame holds the report: its text shows every kind of payload
    shown = [LABEL, REASON, *ID_PAYLOADS, *GROUP_PAYLOADS, MOVED_TEXT, TEXT_PAYLOADS[2]]
    found = problems(tab, shown)
    assert not found, found
    preview = next(f for f in tab.page.frames if "export.html" in f.url)
    assert header_problems(tab.headers.get(preview.url), preview.url) == []
    assert "sandbox" in tab.headers[preview.url]["content-security-policy"]


def test_export_inline(tab: Tab, server: dict, seeded: dict) -> None:
    open_overview(tab, server, seeded)
    tab.page.get_by_role("link", name="Report and exports").click()
    src = tab.page.locator("iframe").get_attribute("src")
    tab.page.goto(server["url"] + src)  # the address the preview frames, as a top-level document
    shown = [LABEL, REASON, *ID_PAYLOADS, *GROUP_PAYLOADS, *[p.strip() for p in TEXT_PAYLOADS]]
    found = problems(tab, shown)
    assert not found, found
    assert "sandbox" in tab.headers[tab.page.url]["content-security-policy"]


def test_audit_log(tab: Tab, server: dict, seeded: dict) -> None:
    tab.page.goto(f"{server['url']}/web/projects/{seeded['pid']}")
    tab.page.get_by_role("link", name="Audit log").click()
    # actors are key names; the upload's target is its file name
    shown = [ADMIN_NAME, PLATFORM_NAME, FACILITATOR_NAME, FILE_NAME]
    found = problems(tab, shown)
    assert not found, found


# --- the CLI's reports -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_synthesis(hostile_csv: Path, cache_dir: Path) -> Synthesis:
    """The CLI's path: the loader on the file, the pipeline, then the same three edits as through the API."""
    s = run(load_contributions(hostile_csv), SynthConfig(), cache_dir=cache_dir).synthesis
    theme = next(t for sec in s.sections for t in sec.themes if t.parent_id is None)
    moved = next(c.id for c in s.contributions if MOVED_TEXT in c.text)
    s = apply_edit(s, RenameTheme(action="rename_theme", theme_id=theme.id, label=LABEL))
    ids = [moved, ID_PAYLOADS[0]]
    s = apply_edit(s, MoveContributions(action="move_contributions", contribution_ids=ids, to_theme_id=None))
    return apply_edit(s, MarkMinority(action="mark_minority", contribution_ids=ID_PAYLOADS, reason=REASON))


def test_cli_html_report(cli_synthesis: Synthesis, browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(cli_synthesis, title=PROJECT_NAME), encoding="utf-8")
    context = browser.new_context()
    tab = open_tab(context)
    tab.page.goto(path.as_uri())
    shown = [PROJECT_NAME, LABEL, REASON, *ID_PAYLOADS, *GROUP_PAYLOADS, *[p.strip() for p in TEXT_PAYLOADS]]
    found = problems(tab, shown, served=False)
    # a file has no headers: its own meta CSP must be strict and script-free
    csp = tab.page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content") or ""
    found += csp_problems(csp)
    context.close()
    assert not found, found


def test_cli_markdown_report(cli_synthesis: Synthesis, browser: Browser) -> None:
    md = render_markdown(cli_synthesis, title=PROJECT_NAME)
    lines = md.splitlines()
    assert not [x for x in lines if x.lstrip().lower().startswith("<script")]
    assert "<img" not in md.lower() and "<svg" not in md.lower() and "<script" not in md.lower()
    # the worst case: a renderer that passes raw HTML through
    html = MarkdownIt("commonmark", {"html": True}).render(md)
    context = browser.new_context()
    tab = open_tab(context)
    tab.page.set_content(html)  # no CSP here: a payload that became markup would open a dialog
    shown = [LABEL, REASON, *ID_PAYLOADS, *[p.strip() for p in TEXT_PAYLOADS]]  # it names no groups
    found = problems(tab, shown, served=False)
    # the report's own links are anchors; a participant's Markdown link or image must stay text
    found += tab.page.eval_on_selector_all("a[href]:not([href^='#']), img", "es => es.map(e => e.outerHTML)")
    context.close()
    assert not found, found


# --- the templates themselves ----------------------------------------------------------------------


def _autoescapes(env: Environment, name: str) -> bool:
    return bool(env.autoescape(name) if callable(env.autoescape) else env.autoescape)


def test_every_html_template_autoescapes() -> None:
    envs = {"report": _env(False), "web": synth.web.templates.env}
    checked = []
    for where, env in envs.items():
        for name in env.list_templates():
            if name.endswith(".html.j2"):
                assert _autoescapes(env, name), f"{where}/{name} renders without autoescape"
                checked.append(name)
    assert "report.html.j2" in checked and "theme.html.j2" in checked and len(checked) >= 11
    # the Markdown report escapes HTML and Markdown both
    md = _env(True)
    assert _autoescapes(md, "report.md.j2") and md.finalize is markdown_escape


SAFE_ALLOWED = {("run.html.j2", "map_svg|safe")}  # built by synth.web.map with every value escaped


def test_no_unreviewed_safe_or_autoescape_off() -> None:
    """A `|safe`, `{% autoescape false %}` or `Markup(` in a template bypasses escaping; each must be reviewed."""
    found = set()
    for env in (_env(False), synth.web.templates.env):
        for name in env.list_templates():
            source = env.loader.get_source(env, name)[0]
            for m in re.finditer(r"[\w.]+\s*\|\s*safe\b|autoescape\s+false|Markup\(", source):
                found.add((name, re.sub(r"\s", "", m.group())))
    assert found == SAFE_ALLOWED
