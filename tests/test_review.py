"""Review edits: each gives a new verified Synthesis, with counts and summaries that follow the members."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from synth.edits import Edit, EditError, apply_edit
from synth.pipeline import RunResult
from synth.pipeline.verify import check

edit = TypeAdapter(Edit).validate_python


def top(s):  # noqa: ANN001, ANN201
    return [t for t in s.sections[0].themes if t.parent_id is None]


def test_rename_keeps_everything_else(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    t = top(s)[0]
    out = apply_edit(s, edit({"action": "rename_theme", "theme_id": t.id, "label": "Labour and Brexit"}))
    assert top(out)[0].label == "Labour and Brexit" and top(s)[0].label == t.label  # original untouched
    assert top(out)[0].segment_ids == t.segment_ids


def test_merge_then_split(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    a, b = top(s)[0], top(s)[1]
    merged = apply_edit(s, edit({"action": "merge_themes", "theme_ids": [a.id, b.id]}))
    m = next(t for t in top(merged) if t.id == a.id)
    assert b.id not in {t.id for t in merged.sections[0].themes}
    assert m.n_contributions == len(set(a.contribution_ids) | set(b.contribution_ids))
    count = next(x for x in merged.sections[0].summaries if x.scope == a.id).sentences[0]
    assert count.text.startswith(f"{m.n_contributions} contributions")
    assert len(count.citations) == len(m.segment_ids) + (m.title_citation is not None)  # members, and the title
    split = apply_edit(
        merged,
        edit({"action": "split_theme", "theme_id": a.id, "contribution_ids": b.contribution_ids, "label": "Split off"}),
    )
    new = next(t for t in top(split) if t.label == "Split off")
    rest = next(t for t in top(split) if t.id == a.id)
    # the split moves every passage of the named contributions that the theme holds, and nothing else
    moving = {x.id for x in s.segments if x.contribution_id in set(b.contribution_ids)} & set(m.segment_ids)
    assert moving and set(new.segment_ids) == moving
    assert set(rest.segment_ids) == set(m.segment_ids) - moving and rest.segment_ids
    assert set(new.contribution_ids) == set(b.contribution_ids) and new.n_contributions == len(b.contribution_ids)
    assert set(rest.contribution_ids) == set(m.contribution_ids) - set(b.contribution_ids)
    assert check(split) == []


def test_move_to_unassigned_and_back(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    t = top(s)[0]
    cid = t.contribution_ids[-1]
    out = apply_edit(s, edit({"action": "move_contributions", "contribution_ids": [cid], "to_theme_id": None}))
    assert cid not in next(x for x in top(out) if x.id == t.id).contribution_ids
    assert out.coverage.n_themed <= s.coverage.n_themed
    back = apply_edit(out, edit({"action": "move_contributions", "contribution_ids": [cid], "to_theme_id": t.id}))
    assert cid in next(x for x in top(back) if x.id == t.id).contribution_ids


def test_mark_and_unmark_minority(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    cid = s.contributions[0].id
    out = apply_edit(s, edit({"action": "mark_minority", "contribution_ids": [cid], "reason": "Only voice on X"}))
    view = next(v for v in out.sections[0].minority_views if v.kind == "marked_by_reviewer")
    assert view.contribution_ids == [cid]
    back = apply_edit(out, edit({"action": "unmark_minority", "view_id": view.id}))
    assert all(v.kind != "marked_by_reviewer" for v in back.sections[0].minority_views)


def test_sentence_review_and_supported_edit(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    scope = top(s)[0].id
    rejected = apply_edit(s, edit({"action": "review_sentence", "scope": scope, "index": 1, "status": "rejected"}))
    assert next(x for x in rejected.sections[0].summaries if x.scope == scope).sentences[1].status == "rejected"
    quote = next(x for x in s.sections[0].summaries if x.scope == scope).sentences[1]
    reworded = "A participant said " + quote.citations[0].quote.rstrip(".") + "."
    out = apply_edit(s, edit({"action": "review_sentence", "scope": scope, "index": 1, "text": reworded}))
    sentence = next(x for x in out.sections[0].summaries if x.scope == scope).sentences[1]
    assert sentence.kind == "drafted" and sentence.support >= 0.3 and sentence.original_text == quote.text
    assert sentence.citations == quote.citations
    with pytest.raises(EditError, match="not supported"):
        apply_edit(
            s,
            edit(
                {
                    "action": "review_sentence",
                    "scope": scope,
                    "index": 1,
                    "text": "Pineapples are the best pizza topping in Naples.",
                }
            ),
        )


def test_bad_edits_are_refused(polis_run: RunResult) -> None:
    s = polis_run.synthesis
    with pytest.raises(EditError, match="no theme"):
        apply_edit(s, edit({"action": "rename_theme", "theme_id": "nope", "label": "x"}))
    with pytest.raises(EditError, match="unknown contribution"):
        apply_edit(s, edit({"action": "move_contributions", "contribution_ids": ["zzz"], "to_theme_id": None}))


def test_the_report_agrees_with_itself_after_edits(polis_run: RunResult) -> None:
    """Rename, merge, split, move and reject, then export: no heading, overview sentence, count or minority
    view may name a theme, title or count that no longer holds."""
    import re

    from synth.report import render_html, render_markdown

    s = polis_run.synthesis
    a, b, c = top(s)[:3]
    s = apply_edit(s, edit({"action": "rename_theme", "theme_id": a.id, "label": "Renamed by the reviewer"}))
    s = apply_edit(s, edit({"action": "merge_themes", "theme_ids": [a.id, b.id]}))
    merged = next(t for t in top(s) if t.id == a.id)
    s = apply_edit(
        s,
        edit(
            {
                "action": "split_theme",
                "theme_id": a.id,
                "contribution_ids": merged.contribution_ids[:3],
                "label": "Split",
            }
        ),
    )
    s = apply_edit(
        s, edit({"action": "move_contributions", "contribution_ids": [c.contribution_ids[0]], "to_theme_id": None})
    )
    overview = s.sections[0].summaries[0]
    s = apply_edit(
        s, edit({"action": "review_sentence", "section": 0, "scope": "overview", "index": 0, "status": "rejected"})
    )
    assert check(s) == []
    sec = s.sections[0]
    now = {t.id: t for t in top(s)}
    assert b.id not in now and {v.theme_id for v in sec.minority_views} <= set(now) | {None}
    for t in now.values():  # each theme's first sentence counts what the theme holds now
        first = next(x for x in sec.summaries if x.scope == t.id).sentences[0]
        assert first.text.startswith(f"{t.n_contributions} contribution"), (t.id, first.text)
        assert (t.title or t.label) in first.text
    listing = overview.sentences[1].text if len(overview.sentences) > 1 else ""
    current = sec.summaries[0].sentences[1].text
    counts = re.findall(r"\((\d+)(?: contributions?)?\)", current)
    assert counts, current
    for n in counts:
        assert int(n) in {t.n_contributions for t in now.values()}, current
    assert a.title not in current and "Renamed by the reviewer" in current + listing
    # citation links carry their quote in a title attribute: verbatim text, not a claim of the report's
    html = re.sub(r' title="[^"]*"', "", render_html(s).split('id="appendix"')[0])
    md = render_markdown(s).split("## Appendix")[0]
    headings = re.findall(r"<h4>(.*?) <span", html)
    assert sorted(headings) == sorted(
        (t.title or t.label).replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") for t in now.values()
    )
    assert a.title not in html.split("<article")[0]  # the overview and the themes table name the new title
    assert f'id="{b.id}"' not in html and f"#{b.id}" not in html  # the merged-away theme is gone everywhere
    assert a.title not in md.split("### Minority views")[0] and "Renamed by the reviewer" in md
    assert sec.summaries[0].sentences[0].status == "rejected"
    assert overview.sentences[0].text not in html  # a rejected sentence leaves the report


def test_undo_and_return_to_a_revision_through_the_api(api) -> None:  # noqa: ANN001
    """Undo makes a new revision equal to the one before; returning to revision 0 too; both are audited and
    nothing is lost (every revision stays readable)."""
    from tests.conftest import h, make_project, upload_polis, work

    pid, keys = make_project(api, "Undo")
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    base = f"/v1/projects/{pid}/runs/{rid}"
    fac = h(keys["facilitator"])
    themes = [t for t in api.get(f"{base}/themes", headers=fac).json()["items"] if t["parent_id"] is None]
    api.post(
        f"{base}/edits", json={"action": "rename_theme", "theme_id": themes[0]["id"], "label": "First"}, headers=fac
    )
    merge = {"action": "merge_themes", "theme_ids": [themes[0]["id"], themes[1]["id"]]}
    assert api.post(f"{base}/edits", json=merge, headers=fac).json()["revision"] == 2
    undo = api.post(f"{base}/edits", json={"action": "revert_to_revision"}, headers=fac)
    assert undo.status_code == 201 and undo.json()["revision"] == 3
    result = lambda n: api.get(f"{base}/result?revision={n}", headers=fac).json()  # noqa: E731
    assert result(3)["sections"] == result(1)["sections"]  # the merge is undone, the rename kept
    back = api.post(f"{base}/edits", json={"action": "revert_to_revision", "revision": 0}, headers=fac)
    assert back.json()["revision"] == 4 and result(4)["sections"] == result(0)["sections"]
    assert result(2)["sections"] != result(4)["sections"]  # revision 2 is still there, as it was
    bad = api.post(f"{base}/edits", json={"action": "revert_to_revision", "revision": 9}, headers=fac)
    assert bad.status_code == 422 and "not an earlier revision" in bad.json()["detail"]
    actions = [e["action"] for e in api.get(f"/v1/projects/{pid}/audit", headers=fac).json()["items"]]
    assert actions[-2:] == ["review.revert_to_revision", "review.revert_to_revision"]


def test_undo_button_on_the_run_page(api) -> None:  # noqa: ANN001
    import re

    from tests.conftest import h, make_project, upload_polis, work

    pid, keys = make_project(api, "Undo in pages")
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    tid = api.get(f"/v1/projects/{pid}/runs/{rid}/themes", headers=h(keys["reader"])).json()["items"][0]["id"]
    rename = {"action": "rename_theme", "theme_id": tid, "label": "Renamed, then undone"}
    api.post(f"/v1/projects/{pid}/runs/{rid}/edits", json=rename, headers=h(keys["facilitator"]))
    csrf = re.search(r'name="csrf" value="([^"]+)"', api.get("/web/").text).group(1)
    api.post("/web/login", data={"key": keys["facilitator"], "csrf": csrf})
    page = api.get(f"/web/projects/{pid}/runs/{rid}").text
    assert "Undo the last edit" in page and "Return to revision" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    after = api.post(f"/web/projects/{pid}/runs/{rid}/edit", data={"csrf": csrf, "action": "revert_to_revision"})
    assert "Undid the last edit." in after.text and "Renamed, then undone" not in after.text


def test_map_colours_follow_theme_ids_across_a_merge(planted_run: RunResult) -> None:
    from synth.edits import MergeThemes, apply_edit
    from synth.web.map import theme_colours

    s = planted_run.synthesis
    before = theme_colours(s)
    tops = [t.id for t in s.sections[0].themes if t.parent_id is None]
    merged = apply_edit(s, MergeThemes(action="merge_themes", theme_ids=[tops[0], tops[1]]))
    after = theme_colours(merged)
    assert tops[1] not in after and all(after[t] == before[t] for t in after)  # nobody else changes colour
    assert len(set(list(before.values())[:8])) == min(8, len(before))  # the first themes are told apart
