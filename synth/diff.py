"""What changed between two runs (or two revisions) of a project: themes matched by their members.

Per section (matched by question), top-level themes are paired one to one by the Hungarian algorithm on the
Jaccard overlap of their contribution ids; a pair needs an overlap of at least `MIN_JACCARD`, or the themes
count as removed and added. A theme whose contributions went, a quarter or more each, to two or more themes
was split; a theme that took a quarter or more of each of two or more earlier themes is a merge. A
contribution in both runs moved when its theme in the later run is not the partner of its earlier one.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field
from scipy.optimize import linear_sum_assignment

from synth.schema import Section, Synthesis, Theme

MIN_JACCARD = 0.2  # below this two themes share too little to call one the other's successor
SHARE = 0.25  # a split part or merged source must be at least this share of the theme it came from


class ThemeChange(BaseModel):
    before_id: str | None = Field(None, description="Theme id in the earlier run; null when added.")
    after_id: str | None = Field(None, description="Theme id in the later run; null when removed.")
    before_title: str | None = None
    after_title: str | None = None
    n_before: int = 0
    n_after: int = 0
    jaccard: float = Field(0.0, description="Overlap of the two themes' contribution ids.")
    change: str = Field(description="same, grown, shrunk, renamed (titles differ), added or removed.")


class Move(BaseModel):
    contribution_id: str
    from_theme_ids: list[str] = Field(description="Earlier themes; empty = unassigned.")
    to_theme_ids: list[str] = Field(description="Later themes; empty = unassigned.")


class SectionDiff(BaseModel):
    question: str | None = Field(description="The section's question; null when the input had none.")
    themes: list[ThemeChange]
    splits: dict[str, list[str]] = Field(description="Earlier theme id -> the later themes it split into.")
    merges: dict[str, list[str]] = Field(description="Later theme id -> the earlier themes merged into it.")
    moved: list[Move]
    contributions_added: list[str]
    contributions_removed: list[str]


class RunDiff(BaseModel):
    sections: list[SectionDiff]


def _top(sec: Section) -> list[Theme]:
    return [t for t in sec.themes if t.parent_id is None]


def _membership(themes: list[Theme]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in themes:
        for c in t.contribution_ids:
            out.setdefault(c, []).append(t.id)
    return out


def _contributions(s: Synthesis, sec: Section) -> set[str]:
    owner = {x.id: x.contribution_id for x in s.segments}
    ids = {c for t in sec.themes for c in t.contribution_ids}
    return ids | {owner[x] for x in sec.unassigned_segment_ids if x in owner}


def diff_section(before: Synthesis, b: Section | None, after: Synthesis, a: Section | None) -> SectionDiff:
    """The changes in one section; a missing side is an empty section."""
    old, new = _top(b) if b else [], _top(a) if a else []
    old_sets = [set(t.contribution_ids) for t in old]
    new_sets = [set(t.contribution_ids) for t in new]
    jac = np.zeros((len(old), len(new)))
    for i, x in enumerate(old_sets):
        for j, y in enumerate(new_sets):
            jac[i, j] = len(x & y) / len(x | y) if x | y else 0.0
    pairs = {}
    if jac.size:
        rows, cols = linear_sum_assignment(-jac)
        pairs = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if jac[i, j] >= MIN_JACCARD}
    changes: list[ThemeChange] = []
    for i, t in enumerate(old):
        if i in pairs:
            u = new[pairs[i]]
            n0, n1 = t.n_contributions, u.n_contributions
            kind = "renamed" if t.title != u.title else "grown" if n1 > n0 else "shrunk" if n1 < n0 else "same"
            changes.append(
                ThemeChange(
                    before_id=t.id,
                    after_id=u.id,
                    before_title=t.title,
                    after_title=u.title,
                    n_before=n0,
                    n_after=n1,
                    jaccard=round(float(jac[i, pairs[i]]), 4),
                    change=kind,
                )  # fmt: skip
            )
        else:
            changes.append(
                ThemeChange(before_id=t.id, before_title=t.title, n_before=t.n_contributions, change="removed")
            )
    partners = set(pairs.values())
    changes += [
        ThemeChange(after_id=u.id, after_title=u.title, n_after=u.n_contributions, change="added")
        for j, u in enumerate(new)
        if j not in partners
    ]
    share = lambda x, y: len(x & y) / len(x) if x else 0.0  # noqa: E731 - share of x that went to y
    splits = {
        t.id: parts
        for i, t in enumerate(old)
        if len(parts := [new[j].id for j in range(len(new)) if share(old_sets[i], new_sets[j]) >= SHARE]) >= 2
    }
    merges = {
        u.id: parts
        for j, u in enumerate(new)
        if len(parts := [old[i].id for i in range(len(old)) if share(old_sets[i], new_sets[j]) >= SHARE]) >= 2
    }
    was, now = _membership(old), _membership(new)
    partner_of = {old[i].id: new[j].id for i, j in pairs.items()}
    before_ids = _contributions(before, b) if b else set()
    after_ids = _contributions(after, a) if a else set()
    moved = [
        Move(contribution_id=c, from_theme_ids=was.get(c, []), to_theme_ids=now.get(c, []))
        for c in sorted(before_ids & after_ids)
        if sorted(partner_of.get(t, f"gone:{t}") for t in was.get(c, [])) != sorted(now.get(c, []))
    ]
    return SectionDiff(
        question=(a or b).question if (a or b) else None,
        themes=changes,
        splits=splits,
        merges=merges,
        moved=moved,
        contributions_added=sorted(after_ids - before_ids),
        contributions_removed=sorted(before_ids - after_ids),
    )


def diff(before: Synthesis, after: Synthesis) -> RunDiff:
    """Every section of either run, in the later run's order, then sections only the earlier run had."""
    old = {sec.question: sec for sec in before.sections}
    new = {sec.question: sec for sec in after.sections}
    questions = list(new) + [q for q in old if q not in new]
    return RunDiff(sections=[diff_section(before, old.get(q), after, new.get(q)) for q in questions])
