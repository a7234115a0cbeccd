"""Incremental runs on real data: a reviewed run takes new contributions without losing a reviewer's edit."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synth.cli import app
from synth.config import SynthConfig
from synth.diff import diff
from synth.edits import MarkMinority, MergeThemes, MoveContributions, RenameTheme, apply_edit
from synth.formats import InputError, LoadedInput, load_contributions
from synth.incremental import extend
from synth.pipeline import run
from synth.pipeline.verify import check
from synth.schema import Synthesis
from tests.conftest import PLANTED


def _first(loaded: LoadedInput, share: float) -> LoadedInput:
    return dataclasses.replace(loaded, contributions=loaded.contributions[: int(share * len(loaded.contributions))])


def _top(s: Synthesis) -> list:
    return [t for t in s.sections[0].themes if t.parent_id is None]


@pytest.fixture(scope="module")
def reviewed(cache_dir: Path) -> Synthesis:
    """70% of the planted fixture, then a facilitator's afternoon: rename, merge, move out, mark a view."""
    s = run(_first(load_contributions(PLANTED), 0.7), SynthConfig(), cache_dir=cache_dir).synthesis
    a, b, c = _top(s)[:3]
    s = apply_edit(s, RenameTheme(action="rename_theme", theme_id=a.id, label="Uniforms and cost, as reviewed"))
    s = apply_edit(s, MergeThemes(action="merge_themes", theme_ids=[b.id, c.id]))
    out = sorted(set(a.contribution_ids) - set(b.contribution_ids) - set(c.contribution_ids))[0]
    s = apply_edit(s, MoveContributions(action="move_contributions", contribution_ids=[out], to_theme_id=None))
    return apply_edit(s, MarkMinority(action="mark_minority", contribution_ids=[out], reason="Checked by hand."))


@pytest.fixture(scope="module")
def extended(reviewed: Synthesis, cache_dir: Path) -> Synthesis:
    return extend(reviewed, load_contributions(PLANTED), SynthConfig(), cache_dir=cache_dir).synthesis


def test_every_edit_survives_and_nothing_earlier_moves(reviewed: Synthesis, extended: Synthesis) -> None:
    assert check(extended) == []
    before = {t.id: t for t in reviewed.sections[0].themes}
    after = {t.id: t for t in extended.sections[0].themes}
    for tid, t in before.items():  # ids, titles and members kept: each earlier member is where a person left it
        assert after[tid].title == t.title and after[tid].label == t.label
        assert set(t.segment_ids) <= set(after[tid].segment_ids)
    assert "Uniforms and cost, as reviewed" in {t.title for t in after.values()}
    assert set(reviewed.sections[0].unassigned_segment_ids) <= set(extended.sections[0].unassigned_segment_ids)
    assert {v.id: v for v in reviewed.sections[0].minority_views}.items() <= {
        v.id: v for v in extended.sections[0].minority_views
    }.items()
    changes = diff(reviewed, extended).sections[0]
    assert not changes.moved and "removed" not in {c.change for c in changes.themes}


def test_new_contributions_are_each_placed_once(reviewed: Synthesis, extended: Synthesis) -> None:
    n_all = sum(1 for _ in csv.DictReader(PLANTED.open()))
    assert extended.metadata.extends is not None
    assert extended.metadata.extends.n_new == n_all - len(reviewed.contributions) > 0
    assert extended.coverage.n_input == n_all
    sec = extended.sections[0]
    old = {x.id for x in reviewed.segments}
    placed = [i for t in sec.themes if t.parent_id is None for i in t.segment_ids] + sec.unassigned_segment_ids
    new = [x.id for x in extended.segments if x.id not in old]
    assert sorted(i for i in placed if i not in old) == sorted(new)  # each new passage exactly once
    ids = [t.id for t in sec.themes]
    assert len(ids) == len(set(ids))
    # the plant (contributions from another motion, at the end of the file) forms a new theme or view
    planted = {r["id"] for r in csv.DictReader(PLANTED.open()) if r["planted"] == "1"}
    assert planted.isdisjoint(c.id for c in reviewed.contributions)
    flagged = {c for v in sec.minority_views for c in v.contribution_ids}
    assert len(planted & flagged) >= len(planted) - 1


def test_same_input_adds_nothing(reviewed: Synthesis, cache_dir: Path) -> None:
    again = extend(reviewed, _first(load_contributions(PLANTED), 0.7), SynthConfig(), cache_dir=cache_dir).synthesis
    assert again.metadata.extends is not None and again.metadata.extends.n_new == 0
    assert [t.segment_ids for t in again.sections[0].themes] == [t.segment_ids for t in reviewed.sections[0].themes]
    assert again.sections[0].proposals == []


def test_a_changed_contribution_is_refused(reviewed: Synthesis, cache_dir: Path) -> None:
    loaded = load_contributions(PLANTED)
    first = loaded.contributions[0]
    edited = [first.model_copy(update={"text": first.text + " Edited."}), *loaded.contributions[1:]]
    with pytest.raises(InputError, match=f"changed since the earlier run.*{first.id}"):
        extend(reviewed, dataclasses.replace(loaded, contributions=edited), SynthConfig(), cache_dir=cache_dir)


def test_cli_from_an_earlier_folder(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(cache_dir))
    rows = list(csv.DictReader(PLANTED.open()))
    early = tmp_path / "early.csv"
    with early.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[: len(rows) // 2])
    assert CliRunner().invoke(app, ["run", str(early), "--out", str(tmp_path / "a")]).exit_code == 0
    result = CliRunner().invoke(app, ["run", str(PLANTED), "--out", str(tmp_path / "b"), "--from", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "new contributions added to the earlier run" in result.output
    data = json.loads((tmp_path / "b" / "synthesis.json").read_text())
    assert data["metadata"]["extends"]["n_new"] == len(rows) - len(rows) // 2
    missing = CliRunner().invoke(app, ["run", str(PLANTED), "--out", str(tmp_path / "c"), "--from", str(tmp_path)])
    assert missing.exit_code == 2 and "no earlier synthesis here" in missing.output


def test_a_new_copy_of_an_earlier_contribution_is_set_aside(reviewed: Synthesis, cache_dir: Path) -> None:
    loaded = _first(load_contributions(PLANTED), 0.7)
    original = next(c for c in reviewed.contributions if c.id in {x.contribution_id for x in reviewed.segments})
    copy = original.model_copy(update={"id": "copy-of-" + original.id, "text": "  " + original.text.upper() + " "})
    grown = extend(reviewed, dataclasses.replace(loaded, contributions=[*loaded.contributions, copy]), SynthConfig(),
                   cache_dir=cache_dir).synthesis  # fmt: skip
    (excluded,) = [e for e in grown.excluded if e.contribution_id == copy.id]
    assert excluded.duplicate_of == original.id and "duplicate" in excluded.reason
    assert check(grown) == [] and grown.coverage.n_excluded == reviewed.coverage.n_excluded + 1


def test_report_says_it_extended_an_earlier_run(extended: Synthesis) -> None:
    from synth.report import render_html, render_markdown

    html, md = render_html(extended, {}, "Uniforms"), render_markdown(extended, {}, "Uniforms")
    n_new = extended.metadata.extends.n_new if extended.metadata.extends else 0
    assert "This run extended an earlier one" in html and f"added {n_new}" in html
    assert f"with {n_new} new ones" in md
    for p in extended.sections[0].proposals:  # a proposal's reason names the theme by its title (escaped)
        assert p.reason in md or p.reason.replace("'", "&#39;") in html
