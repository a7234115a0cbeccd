"""Who raised what: per theme, how its participants spread over each group and attribute value.

A secretariat must be able to say "this was raised mostly by younger participants" and defend it, and must
never let a table identify a handful of people. So: counts of participants (not contributions), a privacy
floor under which a cell is withheld, and over- or under-representation flagged only where a two-sided
Fisher exact test survives Benjamini-Hochberg correction across the section (as for minority views).
"""

from __future__ import annotations

from scipy.stats import false_discovery_control, fisher_exact

from synth.config import SynthConfig
from synth.pipeline.label import SectionData
from synth.schema import Breakdown, BreakdownCell, Theme, ThemeBreakdown

MAX_VALUES = 20  # more distinct values than this is a free-text column, not a stratum


def dimensions(data: SectionData) -> dict[str, dict[str, str]]:
    """dimension -> participant -> value, for the group column and every attribute."""
    dims: dict[str, dict[str, str]] = {}
    for cid in dict.fromkeys(s.contribution_id for s in data.segments):
        contribution = data.contributions[cid]
        person = data.participant(cid)
        if contribution.group is not None:
            dims.setdefault("group", {})[person] = contribution.group
        for key, value in sorted(contribution.attributes.items()):
            if value != "":
                dims.setdefault(key, {})[person] = value
    return {d: m for d, m in dims.items() if 2 <= len(set(m.values())) <= MAX_VALUES}


def _complement(cells: list[BreakdownCell]) -> list[BreakdownCell]:
    """Secondary suppression: with the row's total known, one withheld cell could be worked out from the others,
    so the smallest shown cell is withheld with it."""
    hidden = [c for c in cells if c.participants is None]
    shown = [c for c in cells if c.participants is not None]
    if len(hidden) != 1 or not shown:
        return cells
    smallest = min(shown, key=lambda c: (c.participants, c.value))
    return [c.model_copy(update={"participants": None, "share": None}) if c is smallest else c for c in cells]


def breakdowns(data: SectionData, themes: list[Theme], config: SynthConfig) -> list[Breakdown]:
    floor = config.privacy_floor
    top = [t for t in themes if t.parent_id is None]
    out: list[Breakdown] = []
    tests: list[tuple[int, int, int, float]] = []  # (breakdown, theme row, cell, p)
    for dim, member_of in dimensions(data).items():
        values = sorted(set(member_of.values()))
        everyone = set(member_of)
        overall = {v: sum(1 for p in everyone if member_of[p] == v) for v in values}
        shown_overall = {v for v, n in overall.items() if n >= floor}
        if len(shown_overall) == len(values) - 1 and shown_overall:  # secondary suppression, as in _complement
            shown_overall.discard(min(shown_overall, key=lambda v: (overall[v], v)))
        rows = []
        for t in top:
            inside = {data.participant(c) for c in t.contribution_ids} & everyone
            cells = []
            for v in values:
                a = sum(1 for p in inside if member_of[p] == v)
                b, c, d = len(inside) - a, overall[v] - a, len(everyone) - len(inside) - overall[v] + a
                shown = a >= floor
                cells.append(
                    BreakdownCell(
                        value=v,
                        participants=a if shown else None,
                        share=round(a / len(inside), 4) if shown and inside else None,
                    )
                )
                if shown and inside and len(inside) < len(everyone):
                    p = float(fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue)
                    tests.append((len(out), len(rows), len(cells) - 1, p))
            rows.append(ThemeBreakdown(theme_id=t.id, participants=len(inside), cells=_complement(cells)))
        out.append(
            Breakdown(
                dimension=dim,
                values=values,
                overall={v: n if v in shown_overall else None for v, n in overall.items()},
                overall_share={
                    v: round(n / len(everyone), 4) if v in shown_overall else None for v, n in overall.items()
                },
                participants=len(everyone),
                floor=floor,
                themes=rows,
            )
        )
    if tests:
        qs = false_discovery_control([p for *_, p in tests])
        for (bi, ri, ci, _), q in zip(tests, qs, strict=True):
            cell = out[bi].themes[ri].cells[ci]
            if cell.participants is None:  # withheld by secondary suppression: no flag either
                continue
            overall_share = out[bi].overall_share[cell.value]
            flag = None
            if q < config.group_fdr and cell.share is not None and overall_share is not None:
                flag = "over" if cell.share > overall_share else "under"
            out[bi].themes[ri].cells[ci] = cell.model_copy(update={"q_value": float(f"{q:.4g}"), "flag": flag})
    return out
