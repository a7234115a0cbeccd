"""Summaries made only of sentences that can be checked: counts that cite what they count, and
verbatim quotes that cite where they come from. Nothing is paraphrased, so nothing can drift.
"""

from __future__ import annotations

from synth.pipeline.label import SectionData
from synth.schema import Citation, MinorityView, Segment, Summary, SummarySentence, Theme
from synth.wording import plural


def cite(segments: list[Segment]) -> list[Citation]:
    return [Citation(contribution_id=s.contribution_id, start=s.start, end=s.end, quote=s.text) for s in segments]


def _groups_part(theme: Theme, n_groups: int) -> str:
    return f" across {len(theme.group_counts)} of {n_groups} groups" if n_groups > 1 else ""


def theme_summary(theme: Theme, subs: list[Theme], n_groups: int, segs: dict[str, Segment]) -> Summary:
    """Counted statement, representative quotes, then one counted statement per sub-theme."""
    dup = f" (plus {plural(theme.n_duplicates, 'duplicate')} set aside)" if theme.n_duplicates else ""
    kw = f" (keywords: {', '.join(theme.keywords[:4])})" if theme.keywords else ""
    sentences = [
        SummarySentence(
            text=(
                f"{plural(theme.n_contributions, 'contribution')} from "
                f"{plural(theme.n_participants, 'participant')}{_groups_part(theme, n_groups)} "
                f"fall in this theme{kw}{dup}."
            ),
            citations=cite([segs[s] for s in theme.segment_ids]),
            kind="count",
        )
    ]
    for i, rep in enumerate(theme.representatives):
        lead = "One contribution reads" if i == 0 else "Another reads"
        sentences.append(SummarySentence(text=f"{lead}: \u201c{rep.quote}\u201d", citations=[rep], kind="quote"))
    for sub in subs:
        sentences.append(
            SummarySentence(
                text=f"Within it, {plural(sub.n_contributions, 'contribution')} focus on '{sub.label}'.",
                citations=cite([segs[s] for s in sub.segment_ids]),
                kind="count",
            )
        )
    return Summary(scope=theme.id, sentences=sentences)


def overview(
    data: SectionData,
    themes: list[Theme],
    views: list[MinorityView],
    unassigned: list[Segment],
    segs: dict[str, Segment],
) -> Summary:
    top = [t for t in themes if t.parent_id is None]
    n_all = len({s.contribution_id for s in data.segments})
    themed = [segs[s] for t in top for s in t.segment_ids]
    n_themed = len({s.contribution_id for s in themed})
    sentences: list[SummarySentence] = []
    if themed:
        sentences.append(
            SummarySentence(
                text=(
                    f"Of {plural(n_all, 'contribution')}, {n_themed} ({100 * n_themed / n_all:.0f}%) fall into "
                    f"{plural(len(top), 'theme')}."
                ),
                citations=cite(themed),
                kind="count",
            )
        )
    for t in top[:5]:
        sentences.append(
            SummarySentence(
                text=f"'{t.label}' gathers {plural(t.n_contributions, 'contribution')} from "
                f"{plural(t.n_participants, 'participant')}.",
                citations=cite([segs[s] for s in t.segment_ids]),
                kind="count",
            )
        )
    for v in views:
        cited = [segs[s] for s in v.segment_ids] or [
            s for s in data.segments if s.contribution_id in set(v.contribution_ids)
        ]
        sentences.append(SummarySentence(text=f"Minority view: {v.reason}", citations=cite(cited), kind="count"))
    if unassigned:
        n_un = len({s.contribution_id for s in unassigned})
        sentences.append(
            SummarySentence(
                text=f"{plural(n_un, 'contribution')} have passages that fit no theme; they are listed in full.",
                citations=cite(unassigned),
                kind="count",
            )
        )
    return Summary(scope="overview", sentences=sentences)


def summarize(
    data: SectionData, themes: list[Theme], views: list[MinorityView], unassigned: list[Segment]
) -> list[Summary]:
    """The section overview first, then one summary per top-level theme."""
    segs = {s.id: s for s in data.segments}
    n_groups = len(data.groups())
    out = [overview(data, themes, views, unassigned, segs)]
    for t in (t for t in themes if t.parent_id is None):
        out.append(theme_summary(t, [s for s in themes if s.parent_id == t.id], n_groups, segs))
    return out
