"""The diff between runs or revisions, on a real run edited by review actions whose effect is known."""

from __future__ import annotations

from synth.diff import diff
from synth.edits import MergeThemes, MoveContributions, RenameTheme, apply_edit
from synth.pipeline import RunResult


def _top(s):  # noqa: ANN001, ANN202
    return [t for t in s.sections[0].themes if t.parent_id is None]


def test_a_run_against_itself_changes_nothing(planted_run: RunResult) -> None:
    s = planted_run.synthesis
    (sec,) = diff(s, s).sections
    assert {c.change for c in sec.themes} == {"same"}
    assert len(sec.themes) == len(_top(s))
    assert not (sec.moved or sec.splits or sec.merges or sec.contributions_added or sec.contributions_removed)


def test_merge_rename_and_move_are_reported(planted_run: RunResult) -> None:
    s = planted_run.synthesis
    first, second, third = _top(s)[:3]
    merged = apply_edit(s, MergeThemes(action="merge_themes", theme_ids=[first.id, second.id]))
    (sec,) = diff(s, merged).sections
    assert sec.merges == {first.id: [first.id, second.id]}
    by_before = {c.before_id: c for c in sec.themes}
    assert by_before[first.id].after_id == first.id and by_before[first.id].change in ("grown", "renamed")
    assert by_before[second.id].change == "removed"
    # the second theme's members now sit in the first: each is a move, nothing else moved
    only_second = set(second.contribution_ids) - set(first.contribution_ids)
    assert {m.contribution_id for m in sec.moved} >= only_second
    assert all(first.id in m.to_theme_ids for m in sec.moved)

    renamed = apply_edit(s, RenameTheme(action="rename_theme", theme_id=third.id, label="Cost of uniforms"))
    (sec,) = diff(s, renamed).sections
    (change,) = [c for c in sec.themes if c.before_id == third.id]
    assert change.change == "renamed" and change.after_title == "Cost of uniforms" and change.jaccard == 1.0

    one = sorted(set(third.contribution_ids) - set(first.contribution_ids))[0]
    moved = apply_edit(s, MoveContributions(action="move_contributions", contribution_ids=[one], to_theme_id=None))
    (sec,) = diff(s, moved).sections
    assert [(m.contribution_id, m.to_theme_ids) for m in sec.moved] == [(one, [])]
