"""A facilitator's afternoon in headless Chromium, at 1280 and 390 px: each edit lands on the page that shows
its result with a one-line confirmation and an undo button; undo gives back exactly the previous result;
merges and moves are confirmed naming both sides and never preselected; pickers offer only the question's own
themes; the audit log reads as sentences, filters and exports; axe-core finds nothing serious or critical."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from synth import service as svc
from synth.app import create_app
from synth.formats import LoadedInput, load_contributions
from synth.jobs import Worker
from synth.schema import Contribution
from tests.conftest import POLIS, serving
from tests.test_web import shoot, sign_in

pytestmark = pytest.mark.enable_socket


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('afternoon') / 'synth.db'}", run_worker=False)
    polis = load_contributions(POLIS)
    # a second project with two questions: its pickers must keep them apart
    two = [
        Contribution(id=f"{q}-{c.id}", text=c.text, question=question)
        for q, question in (("a", "What should change?"), ("b", "What should stay?"))
        for c in polis.contributions
    ]
    with app.state.db.session() as s:
        one = svc.create_project(s, "Afternoon", "setup")
        svc.add_contributions(s, one.id, polis, "setup")
        svc.start_run(s, one.id, {}, "setup", name="First pass")
        key = svc.create_key(s, "facilitator", one.id, "Fran")[1]
        other = svc.create_project(s, "Two questions", "setup")
        svc.add_contributions(s, other.id, LoadedInput(two, [], "two.csv", "two"), "setup")
        svc.start_run(s, other.id, {}, "setup")
        key2 = svc.create_key(s, "facilitator", other.id, "Fran")[1]
    worker = Worker(app.state.db)
    while worker.run_once():
        pass
    with app.state.db.session() as s:
        runs = {p: svc.repository.runs(s, p)[0].id for p in (one.id, other.id)}
    with serving(app) as port:
        yield {"url": f"http://127.0.0.1:{port}", "app": app, "pid": one.id, "key": key, "rid": runs[one.id],
               "pid2": other.id, "key2": key2, "rid2": runs[other.id]}  # fmt: skip


def no_serious(page: Page) -> None:
    found = [v for v in Axe().run(page).response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not found, [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in found]


def newest(server: dict) -> tuple[int, list]:
    with server["app"].state.db.session() as s:
        revision, synthesis = svc.load_result(s, server["pid"], server["rid"])
        return revision, synthesis.model_dump(mode="json")["sections"]


def top_themes(server: dict) -> list[dict]:
    return [t for t in newest(server)[1][0]["themes"] if t["parent_id"] is None]


def undo_and_compare(page: Page, server: dict, before_revision: int, before: list) -> None:
    expect(page.get_by_role("status").get_by_role("button", name="Undo")).to_be_visible()
    page.get_by_role("status").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text(f"Returned to revision {before_revision}.")
    assert newest(server)[1] == before  # exactly the result before the edit


@pytest.mark.parametrize("width", [1280, 390])
def test_each_edit_shows_its_result_and_undo_restores_it(server: dict, browser: Browser, width: int) -> None:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    sign_in(page, server["url"], server["key"])
    base = f"{server['url']}/web/projects/{server['pid']}/runs/{server['rid']}"
    a, b, c = top_themes(server)[:3]

    # merge: nothing preselected; a confirmation names both sides; the merged theme is where we land
    page.goto(f"{base}/themes/{a['id']}")
    merge = page.locator("#merge")
    assert merge.evaluate("s => s.value") == "" and merge.evaluate("s => s.required")
    revision, before = newest(server)
    page.get_by_role("button", name="Merge").click()  # no choice made: the browser refuses to submit
    assert page.url.endswith(f"/themes/{a['id']}") and newest(server)[0] == revision
    merge.select_option(b["id"])
    page.get_by_role("button", name="Merge").click()
    expect(page.locator("#question")).to_contain_text(f"into '{a['title'] or a['label']}'")
    expect(page.locator("#question")).to_contain_text(b["title"] or b["label"])
    no_serious(page)
    if width == 1280:  # shoot() takes both widths itself
        shoot(page, "confirm-merge")
    assert newest(server)[0] == revision  # nothing happened before the confirmation
    page.get_by_role("button", name="Yes, do it").click()
    assert page.url.endswith(f"/themes/{a['id']}")
    expect(page.get_by_role("status")).to_contain_text("Merged ")
    no_serious(page)
    if width == 1280:
        shoot(page, "after-merge")
    undo_and_compare(page, server, revision, before)

    # split: land on the theme that was split, the new one named in the confirmation line
    page.goto(f"{base}/themes/{a['id']}")
    revision, before = newest(server)
    page.locator("input[name=contribution_ids]").first.check()
    page.get_by_label("Split off as a new theme named").fill("Split in the browser")
    page.get_by_role("button", name="Split").click()
    assert page.url.endswith(f"/themes/{a['id']}")
    expect(page.get_by_role("status")).to_contain_text("Split 1 contribution off")
    expect(page.get_by_role("status")).to_contain_text("'Split in the browser'")
    undo_and_compare(page, server, revision, before)

    # move: confirmed naming both sides; land on the destination
    page.goto(f"{base}/themes/{a['id']}")
    revision, before = newest(server)
    assert page.locator("#to").evaluate("s => s.value") == ""  # no destination preselected
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Choose where to move")
    page.locator("input[name=contribution_ids]").first.check()
    page.locator("#to").select_option(c["id"])
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#question")).to_contain_text(f"to '{c['title'] or c['label']}'")
    page.get_by_role("button", name="Yes, do it").click()
    assert page.url.endswith(f"/themes/{c['id']}")
    expect(page.get_by_role("status")).to_contain_text("Moved 1 contribution to")
    undo_and_compare(page, server, revision, before)

    # reject a summary sentence: stays on the theme page
    page.goto(f"{base}/themes/{a['id']}")
    revision, before = newest(server)
    page.get_by_role("button", name="Reject sentence 1").click()
    expect(page.get_by_role("status")).to_contain_text("Marked a summary sentence rejected.")
    undo_and_compare(page, server, revision, before)
    page.context.close()


def test_pickers_offer_only_the_questions_own_themes(server: dict, browser: Browser) -> None:
    page = browser.new_page()
    sign_in(page, server["url"], server["key2"])
    base = f"{server['url']}/web/projects/{server['pid2']}/runs/{server['rid2']}"
    with server["app"].state.db.session() as s:
        sections = svc.load_result(s, server["pid2"], server["rid2"])[1].sections
    assert len(sections) == 2
    ids = [{t.id for t in sec.themes if t.parent_id is None} for sec in sections]
    for q, sec in enumerate(sections):
        theme = next(t for t in sec.themes if t.parent_id is None)
        page.goto(f"{base}/themes/{theme.id}")
        for picker in ("#merge", "#to"):
            offered = {v for v in page.locator(f"{picker} option").evaluate_all("os => os.map(o => o.value)") if v}
            offered.discard("unassigned")
            assert offered and offered <= ids[q] and not offered & ids[1 - q]
    page.goto(f"{base}/unassigned")
    for q, _ in enumerate(sections):
        selects = page.locator("select[name=to_theme_id]")
        offered = {v for v in selects.nth(q).locator("option").evaluate_all("os => os.map(o => o.value)") if v}
        assert offered <= ids[q] and not offered & ids[1 - q]
    no_serious(page)
    page.close()


def test_audit_log_reads_as_sentences_filters_and_exports(server: dict, browser: Browser) -> None:
    page = browser.new_page()
    sign_in(page, server["url"], server["key"])
    page.goto(f"{server['url']}/web/projects/{server['pid']}/audit")
    expect(page.get_by_text("is intact")).to_be_visible()
    expect(page.get_by_text("setup uploaded 50 contributions from").first).to_be_visible()
    expect(page.locator("ol.audit li").filter(has_text="Fran (facilitator key").first).to_be_visible()
    no_serious(page)
    shoot(page, "audit-sentences")
    page.locator("#f-action").select_option("review.revert_to_revision")
    page.get_by_role("button", name="Filter").click()
    items = page.locator("ol.audit > li")
    assert items.count() >= 1 and all("returned the run to revision" in t for t in items.all_inner_texts())
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=server["url"], cookies=cookies) as client:
        rows = list(
            csv.DictReader(io.StringIO(client.get(f"/web/projects/{server['pid']}/audit.csv?action=run.start").text))
        )
        assert [r["action"] for r in rows] == ["run.start"] and rows[0]["sentence"].startswith("setup started a run")
        data = json.loads(client.get(f"/web/projects/{server['pid']}/audit.json").text)
        assert data[0]["seq"] == 1 and all("sentence" in r and "before" in r for r in data)
    page.close()


def test_runs_have_names_and_sources(server: dict, browser: Browser) -> None:
    page = browser.new_page()
    sign_in(page, server["url"], server["key"])
    page.goto(f"{server['url']}/web/projects/{server['pid']}/runs/{server['rid']}")
    expect(page.get_by_role("heading", name="First pass")).to_be_visible()
    expect(page.get_by_text("Contributions from")).to_contain_text("comments.csv.")
    expect(page.get_by_text("Contributions from")).not_to_contain_text("/")  # no server path
    # the overview leads with the themes; minority views follow, folded
    themes_y = page.locator("table.themes").first.bounding_box()["y"]
    assert themes_y < page.locator("#minority-panel").bounding_box()["y"]
    assert themes_y < 900
    no_serious(page)
    shoot(page, "overview-themes-first")
    page.close()
