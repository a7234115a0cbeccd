"""Deductive coding against a codebook on real data: the pro-side ArgKP key points of the school-uniform motion as
the codebook for the planted fixture (pro and con arguments, plus a plant from another motion)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synth.cli import app
from synth.config import SynthConfig
from synth.formats import InputError, load_contributions
from synth.pipeline import RunResult, run
from synth.pipeline.code import read_codebook
from tests.conftest import FIXTURES, PLANTED

KEYPOINTS = FIXTURES / "argkp-uniform-pro-keypoints.csv"


def _codebook_csv(tmp_path: Path) -> Path:
    path = tmp_path / "codebook.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "description", "examples"])
        for k in csv.DictReader(KEYPOINTS.open()):
            w.writerow([k["key_point_id"], k["key_point"], "", ""])
    return path


@pytest.fixture(scope="module")
def coded(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    codes = read_codebook(_codebook_csv(tmp_path_factory.mktemp("codes")))
    return run(load_contributions(PLANTED), SynthConfig(), cache_dir=cache_dir, codebook=codes)


def test_every_passage_is_coded_fits_none_or_undecided_once(coded: RunResult) -> None:
    s = coded.synthesis
    c = s.sections[0].coding
    assert c is not None and len(c.codes) == 5
    coded_ids = {a.segment_id for a in c.assignments}
    groups = [coded_ids, set(c.fits_none), set(c.undecided)]
    assert sum(len(g) for g in groups) == len(s.segments) and set().union(*groups) == {x.id for x in s.segments}
    assert all(a.score >= 0.35 and a.by == "machine" for a in c.assignments)
    assert {a.code_id for a in c.assignments} <= {x.id for x in c.codes}


def test_a_view_no_code_covers_becomes_a_candidate(coded: RunResult) -> None:
    s = coded.synthesis
    c = s.sections[0].coding
    planted = {r["id"] for r in csv.DictReader(PLANTED.open()) if r["planted"] == "1"}
    owner = {x.id: x.contribution_id for x in s.segments}
    plant = {sid for sid, cid in owner.items() if cid in planted}
    assert plant and not plant & {a.segment_id for a in c.assignments}  # no uniform key point claims them
    best = max(c.candidates, key=lambda x: len(plant & set(x.segment_ids)))
    assert len(plant & set(best.segment_ids)) >= len(plant) - 1
    assert len(plant & set(best.segment_ids)) >= 2 * len(best.segment_ids) / 3
    text = {x.id: x.text for x in s.contributions}
    quote = best.title_citation
    assert text[quote.contribution_id][quote.start : quote.end] == quote.quote  # titled in a member's words


def test_codebook_files_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    path.write_text(json.dumps({"codes": [{"name": "Cost", "examples": "Too expensive|Cheap"}, {"name": "Bullying"}]}))
    codes = read_codebook(path)
    assert [(c.id, c.name, c.examples) for c in codes] == [("c1", "Cost", ["Too expensive", "Cheap"]),
                                                           ("c2", "Bullying", [])]  # fmt: skip
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\na,Cost\na,Other\n")
    with pytest.raises(InputError, match="two codes have the same id"):
        read_codebook(bad)
    bad.write_text("id,name\na,\n")
    with pytest.raises(InputError, match="row 1, column 'name': every code needs a name"):
        read_codebook(bad)


def test_cli_and_api_take_a_codebook(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, api) -> None:  # noqa: ANN001
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(cache_dir))
    out = tmp_path / "o"
    result = CliRunner().invoke(
        app, ["run", str(PLANTED), "--out", str(out), "--codebook", str(_codebook_csv(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    assert "Codebook:" in result.output and "candidate new codes" in result.output
    assert json.loads((out / "synthesis.json").read_text())["sections"][0]["coding"]["codes"][0]["id"] == "kp_4_5"

    from tests.conftest import h, make_project, upload_polis, work

    pid, keys = make_project(api, "Coded")
    upload_polis(api, pid, keys["platform"])
    codebook = [{"id": "eu", "name": "Leaving the European Union"}, {"id": "lab", "name": "The Labour party"}]
    r = api.post(f"/v1/projects/{pid}/runs", json={"codebook": codebook}, headers=h(keys["platform"]))
    assert r.status_code == 202, r.text
    work(api)
    result = api.get(f"/v1/projects/{pid}/runs/{r.json()['id']}/result", headers=h(keys["reader"])).json()
    coding = result["sections"][0]["coding"]
    assert [c["id"] for c in coding["codes"]] == ["eu", "lab"]
    n = len(result["segments"])
    assert (
        len({a["segment_id"] for a in coding["assignments"]}) + len(coding["fits_none"]) + len(coding["undecided"]) == n
    )


def test_a_reviewer_recodes_passages(coded: RunResult) -> None:
    from synth.edits import CodeContributions, EditError, apply_edit
    from synth.pipeline.verify import check

    s = coded.synthesis
    c = s.sections[0].coding
    target = c.undecided[0]
    cid = next(x.contribution_id for x in s.segments if x.id == target)
    edited = apply_edit(s, CodeContributions(action="code_contributions", contribution_ids=[cid], code_id="kp_4_6"))
    after = edited.sections[0].coding
    mine = {x.id for x in edited.segments if x.contribution_id == cid}
    assert {(a.segment_id, a.code_id, a.by, a.score) for a in after.assignments if a.segment_id in mine} == {
        (i, "kp_4_6", "reviewer", None) for i in mine
    }
    assert not mine & (set(after.undecided) | set(after.fits_none)) and check(edited) == []
    cleared = apply_edit(edited, CodeContributions(action="code_contributions", contribution_ids=[cid], code_id=None))
    assert mine <= set(cleared.sections[0].coding.fits_none)
    with pytest.raises(EditError, match="no code 'nope'"):
        apply_edit(s, CodeContributions(action="code_contributions", contribution_ids=[cid], code_id="nope"))


def test_coding_page_shows_and_corrects(api) -> None:  # noqa: ANN001
    import re

    from tests.conftest import h, make_project, upload_polis, work

    pid, keys = make_project(api, "Coded pages")
    upload_polis(api, pid, keys["platform"])
    codebook = [{"id": "eu", "name": "Leaving the European Union"}, {"id": "lab", "name": "The Labour party"}]
    rid = api.post(f"/v1/projects/{pid}/runs", json={"codebook": codebook}, headers=h(keys["platform"])).json()["id"]
    work(api)
    csrf = re.search(r'name="csrf" value="([^"]+)"', api.get("/web/").text).group(1)
    api.post("/web/login", data={"key": keys["facilitator"], "csrf": csrf})
    page = api.get(f"/web/projects/{pid}/runs/{rid}/coding")
    assert (
        page.status_code == 200 and "Leaving the European Union" in page.text and "For a person to decide" in page.text
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    cid = re.search(r'name="contribution_ids" value="([^"]+)"', page.text).group(1)
    form = {"csrf": csrf, "action": "code_contributions", "contribution_ids": cid, "code_id": "lab"}
    r = api.post(f"/web/projects/{pid}/runs/{rid}/edit", data=form, headers={"referer": page.url.__str__()})
    assert r.status_code in (200, 303)
    result = api.get(f"/v1/projects/{pid}/runs/{rid}/result", headers=h(keys["reader"])).json()
    coding = result["sections"][0]["coding"]
    segs = {x["id"] for x in result["segments"] if x["contribution_id"] == cid}
    assert {(a["segment_id"], a["code_id"], a["by"]) for a in coding["assignments"] if a["segment_id"] in segs} == {
        (i, "lab", "reviewer") for i in segs
    }
    audit = api.get(f"/v1/projects/{pid}/audit", headers=h(keys["reader"])).json()["items"]
    assert audit[-1]["action"] == "review.code_contributions"


def test_reports_show_the_codebook(coded: RunResult) -> None:
    from synth.report import render_html, render_markdown

    html, md = render_html(coded.synthesis, {}, "Uniforms"), render_markdown(coded.synthesis, {}, "Uniforms")
    c = coded.synthesis.sections[0].coding
    for text in (html, md):
        assert "Codebook" in text and f"{len(c.undecided)} left for a person to decide" in text
    assert "Candidate new code" in md and "Candidate new codes" in html
