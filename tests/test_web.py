"""The review pages end to end in a real headless Chromium (Debian's package) driven by Playwright:
sign in, upload a real Polis export, run, rename, move, reject, export, audit; screenshots at 1280 and
390 px; axe-core finds no critical violation; two projects' keys never see each other's data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from synth.app import create_app
from synth.service import create_key, create_project
from synth.store.models import ContributionRow
from tests.conftest import POLIS, serving

pytestmark = pytest.mark.enable_socket  # the browser talks to a server on 127.0.0.1
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FILE = "File (CSV, Excel or OpenDocument spreadsheet, JSON, JSONL, or a Polis comments.csv)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('web') / 'synth.db'}", run_worker=True)
    keys = {}
    with app.state.db.session() as s:
        for name in ("Brexit", "Other"):
            p = create_project(s, name, "test setup")
            keys[name] = {
                "id": p.id,
                "facilitator": create_key(s, "facilitator", p.id)[1],
                "reader": create_key(s, "reader", p.id)[1],
            }
    with serving(app) as port:
        yield {"url": f"http://127.0.0.1:{port}", "keys": keys, "app": app}


def sign_in(page: Page, url: str, key: str) -> None:
    page.goto(url + "/web/")
    page.get_by_label("Project key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def no_critical(page: Page) -> None:
    results = Axe().run(page)
    critical = [v for v in results.response["violations"] if v.get("impact") == "critical"]
    assert not critical, [(v["id"], v["help"]) for v in critical]


def test_facilitator_journey(server: dict, browser: Browser, tmp_path: Path) -> None:
    url, keys = server["url"], server["keys"]["Brexit"]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    sign_in(page, url, keys["facilitator"])
    expect(page.get_by_role("heading", name="Brexit")).to_be_visible()
    no_critical(page)

    page.get_by_label(
        "File (CSV, Excel or OpenDocument spreadsheet, JSON, JSONL, or a Polis comments.csv)"
    ).set_input_files(str(POLIS / "comments.csv"))
    page.get_by_label("Polis participants-votes.csv (optional)").set_input_files(str(POLIS / "participants-votes.csv"))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-report")).to_contain_text("50 received: 50 new")
    page.get_by_role("button", name="Start a run").click()
    expect(page.get_by_role("link", name="Overview")).to_be_visible(timeout=180_000)  # the page refreshes itself
    shoot(page, "project")
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("#minority-panel")).to_be_visible()
    expect(page.locator("svg[role=img]")).to_be_visible()
    no_critical(page)
    shoot(page, "run-overview")

    # rename the first theme
    page.locator("table a").first.click()
    page.get_by_label("New name").fill("Renamed in the browser")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Renamed in the browser")).to_be_visible()
    no_critical(page)
    shoot(page, "theme")
    # a citation opens its source with the cited span highlighted
    citation = page.locator("a.cite").nth(1)
    cited_id = citation.inner_text().strip("[]#")
    citation.click()
    expect(page.locator("#source mark")).not_to_be_empty()
    expect(page.get_by_role("heading", name=f"Contribution #{cited_id}")).to_be_visible()
    page.go_back()
    # reject the second summary sentence
    page.get_by_role("button", name="Reject sentence 2").click()
    expect(page.locator("#sentence-1")).to_have_class("sentence rejected")
    rejected_text = page.locator("#sentence-1 p").inner_text().split(" rejected")[0].strip()
    # move the first member to the unassigned list
    first = page.locator("input[name=contribution_ids]").first
    moved = first.get_attribute("value")
    first.check()
    page.get_by_label("Move to").select_option("unassigned")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#question")).to_contain_text("Move 1 contribution from 'Renamed in the browser'")
    page.get_by_role("button", name="Yes, do it").click()  # the move lands on its destination, with an undo
    expect(page.get_by_role("status")).to_contain_text("Moved 1 contribution to the unassigned list.")
    expect(page.get_by_role("status").get_by_role("button", name="Undo")).to_be_visible()
    assert page.url.endswith("/unassigned")
    expect(page.get_by_text(f"#{moved}:").first).to_be_visible()
    no_critical(page)
    shoot(page, "unassigned")

    # the report reflects every edit; the export downloads
    page.goto(page.url.replace("/unassigned", "/report"))
    shoot(page, "report")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Export HTML").click()
    html = Path(dl.value.path()).read_text()
    assert "Renamed in the browser" in html and rejected_text[:40] not in html
    with page.expect_download() as dl:
        page.get_by_role("link", name="Export JSON").click()
    assert '"schema_version"' in Path(dl.value.path()).read_text()

    page.get_by_role("link", name="Audit log").click()
    for said in (
        "to 'Renamed in the browser'",
        "rejected a summary sentence",
        "moved 1 contribution to the unassigned",
    ):
        expect(page.get_by_text(said)).to_be_visible()
    expect(page.get_by_text("is intact")).to_be_visible()
    no_critical(page)
    shoot(page, "audit")

    # what changed since the machine's version: the rename and the move
    page.goto(page.url.split("/audit")[0])
    page.get_by_role("link", name="Overview").first.click()
    page.get_by_role("link", name="Changes since").click()
    expect(page.get_by_role("cell", name="Renamed in the browser")).to_be_visible()
    expect(page.get_by_text("1 moved between themes")).to_be_visible()
    no_critical(page)
    shoot(page, "changes")

    # new contributions arrive: an incremental run keeps the facilitator's name and says what it added
    page.get_by_role("link", name="Back to the run overview").click()
    project_url = page.url.split("/runs/")[0]
    page.goto(project_url)
    extra = tmp_path / "late.csv"
    extra.write_text("id,text\nlate-1,Brexit should be paused until Parliament agrees on a plan.\n", encoding="utf-8")
    page.get_by_label(
        "File (CSV, Excel or OpenDocument spreadsheet, JSON, JSONL, or a Polis comments.csv)"
    ).set_input_files(str(extra))
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("button", name="Import 1 contributions").click()  # a table is mapped, then imported
    expect(page.locator("#upload-report")).to_contain_text("1 received: 1 new")
    page.get_by_label("Start from").select_option(index=1)
    page.get_by_role("button", name="Start a run").click()
    expect(page.get_by_role("status")).to_contain_text("Incremental run started")
    expect(page.get_by_role("link", name="Overview").first).to_be_visible(timeout=180_000)
    expect(page.locator(".run-status").first).to_have_text("succeeded", timeout=180_000)
    page.get_by_role("link", name="Overview").first.click()
    expect(page.get_by_text("This run added 1 contributions to an earlier run of 50")).to_be_visible()
    expect(page.locator("table.themes").get_by_role("link", name="Renamed in the browser")).to_be_visible()
    no_critical(page)
    context.close()


def test_two_projects_never_see_each_other(server: dict, browser: Browser) -> None:
    url, keys = server["url"], server["keys"]
    a, b = browser.new_context(), browser.new_context()
    pa, pb = a.new_page(), b.new_page()
    sign_in(pa, url, keys["Brexit"]["reader"])
    sign_in(pb, url, keys["Other"]["reader"])
    expect(pb.get_by_role("heading", name="Other")).to_be_visible()
    pb.goto(f"{url}/web/projects/{keys['Brexit']['id']}")
    expect(pb.get_by_role("alert")).to_contain_text("cannot open that page")
    pb.goto(f"{url}/web/projects/{keys['Brexit']['id']}/audit")
    expect(pb.get_by_role("alert")).to_contain_text("cannot open that page")
    pa.goto(f"{url}/web/projects/{keys['Other']['id']}")
    expect(pa.get_by_role("alert")).to_contain_text("cannot open that page")
    # a reader sees no upload form and no edit buttons
    pa.goto(f"{url}/web/projects/{keys['Brexit']['id']}")
    expect(pa.get_by_text("may read but not upload")).to_be_visible()
    a.close()
    b.close()


def test_forms_need_the_csrf_token(server: dict, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server["url"], server["keys"]["Other"]["facilitator"])
    pid = server["keys"]["Other"]["id"]
    r = page.request.post(f"{server['url']}/web/projects/{pid}/runs", form={"csrf": "forged"}, max_redirects=0)
    assert r.status == 303 and r.headers["location"] == "/web/forbidden"
    context.close()


def test_mapping_a_wide_spreadsheet(server: dict, browser: Browser, tmp_path: Path) -> None:
    """A secretariat's wide .xlsx: the preview finds the question columns; the facilitator chooses the id and
    the attributes with form controls, previews again, imports; attributes are kept."""
    from openpyxl import Workbook

    from tests.test_spreadsheets import HEADER, Q1, Q2, wide_rows

    book = Workbook()
    book.active.append(HEADER)
    for row in wide_rows():
        book.active.append(row)
    path = tmp_path / "assembly.xlsx"
    book.save(path)
    url, keys = server["url"], server["keys"]["Other"]
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, url, keys["facilitator"])
    page.get_by_label(
        "File (CSV, Excel or OpenDocument spreadsheet, JSON, JSONL, or a Polis comments.csv)"
    ).set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="Map the columns of assembly.xlsx")).to_be_visible()
    expect(page.get_by_text("A wide file")).to_be_visible()
    no_critical(page)
    shoot(page, "mapping")
    page.locator("#mapping tr", has_text="Age band").get_by_label("attribute").uncheck()  # keep only Region
    page.get_by_label("Id (or respondent)").select_option("Response ID")
    page.get_by_role("button", name="Preview with this mapping").click()
    first = page.locator("tbody tr").filter(has_text="#R001/q1")
    expect(first).to_contain_text("Region: North")
    expect(first).not_to_contain_text("Age band")
    expect(first).to_contain_text(Q1)
    page.get_by_role("button", name="Import 74 contributions").click()
    expect(page.locator("#upload-report")).to_contain_text("74 received: 74 new")
    with server["app"].state.db.session() as s:
        rows = s.scalars(select(ContributionRow).where(ContributionRow.project_id == keys["id"]))
        stored = {r.external_id: r.data for r in rows}
    assert stored["R001/q2"]["question"] == Q2 and stored["R001/q2"]["attributes"] == {"Region": "North"}
    context.close()
