"""Summaries made only of sentences that can be checked: counts that cite what they count, and
verbatim quotes that cite where they come from. Nothing is paraphrased, so nothing can drift.
"""

from __future__ import annotations

from synth.pipeline.label import SectionData
from synth.schema import Citation, MinorityView, Segment, Summary, SummarySentence, Theme
from synth.wording import plural


def cite(segments: list[Segment]) -> list[Citation]:
    return [Citation.of(s) for s in segments]


def _groups_part(theme: Theme, n_groups: int) -> str:
    """' (in 1 of the 2 groups)', ' (in every group)', or nothing when there are no groups."""
    if n_groups <= 1:
        return ""
    k = len(theme.group_counts)
    return " (in every group)" if k == n_groups else f" (in {k} of the {n_groups} groups)"


def _quoted(text: str) -> str:
    return f"\u201c{text}\u201d"


def _title_cites(theme: Theme, segs: dict[str, Segment]) -> list[Citation]:
    """A title's own span first (when it has one), then every member it counts."""
    cites = cite([segs[s] for s in theme.segment_ids])
    return ([theme.title_citation] if theme.title_citation else []) + cites


def theme_summary(theme: Theme, subs: list[Theme], n_groups: int, segs: dict[str, Segment]) -> Summary:
    """Two to four sentences a secretariat can use: what the theme holds (its title, in its author's words)
    and how widely it is shared; the narrower points within it; one or two quotes from other contributions.
    Every sentence cites what it states or counts."""
    dup = f" (and {plural(theme.n_duplicates, 'duplicate')} set aside)" if theme.n_duplicates else ""
    people = plural(theme.n_participants, "participant")
    what = _quoted(theme.title) if theme.title_citation else f"\u2018{theme.title or theme.label}\u2019"
    sentences = [
        SummarySentence(
            text=(
                f"{plural(theme.n_contributions, 'contribution')}{dup} from {people}{_groups_part(theme, n_groups)} "
                f"share this theme; its most representative statement is {what}."
            ),
            citations=_title_cites(theme, segs),
            kind="count",
        )
    ]
    if subs:
        parts = [f"{_quoted(s.title) if s.title_citation else s.title or s.label} ({s.n_contributions})" for s in subs]
        sentences.append(
            SummarySentence(
                text=f"Narrower points within it: {'; '.join(parts)}.",
                citations=[c for s in subs for c in _title_cites(s, segs)],
                kind="count",
            )
        )
    shown = {x.title_citation.contribution_id for x in [theme, *subs] if x.title_citation}
    leads = ("One participant wrote", "Another wrote")
    for rep in theme.representatives:
        if rep.contribution_id in shown:
            continue
        lead = leads[min(len(sentences) - 1 - bool(subs), 1)]
        shown.add(rep.contribution_id)
        sentences.append(SummarySentence(text=f"{lead}: {_quoted(rep.quote)}", citations=[rep], kind="quote"))
        if sum(x.kind == "quote" for x in sentences) == 2:
            break
    return Summary(scope=theme.id, sentences=sentences)


def _listing(themes: list[Theme]) -> str:
    """'“A” (21 contributions), “B” (15) and “C” (12)'."""
    items = [f"{_quoted(t.title) if t.title_citation else t.title or t.label} ({t.n_contributions})" for t in themes]
    items[0] = items[0][:-1] + (" contribution)" if themes[0].n_contributions == 1 else " contributions)")
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def overview(
    data: SectionData,
    themes: list[Theme],
    views: list[MinorityView],
    unassigned: list[Segment],
    segs: dict[str, Segment],
) -> Summary:
    """A paragraph about the whole section: how many took part, the main themes by size, what stands
    apart (minority views) and what fits nowhere; each sentence cites what it counts."""
    top = sorted((t for t in themes if t.parent_id is None), key=lambda t: (-t.n_contributions, t.id))
    n_all = len({s.contribution_id for s in data.segments})
    n_people = len({data.participant(s.contribution_id) for s in data.segments})
    themed = [segs[s] for t in top for s in t.segment_ids]
    n_themed = len({s.contribution_id for s in themed})
    sentences: list[SummarySentence] = []
    if themed:
        sentences.append(
            SummarySentence(
                text=(
                    f"{plural(n_all, 'contribution')} from {plural(n_people, 'participant')} were analysed; "
                    f"{n_themed} of them ({100 * n_themed / n_all:.0f}%) fall into {plural(len(top), 'theme')}."
                ),
                citations=cite(themed),
                kind="count",
            )
        )
        lead = top[:3]
        word = "The largest themes are" if len(lead) > 1 else "The theme is"
        sentences.append(
            SummarySentence(
                text=f"{word} {_listing(lead)}.",
                citations=[c for t in lead for c in _title_cites(t, segs)],
                kind="count",
            )
        )
    if views:
        cited = [
            s
            for v in views
            for s in (
                [segs[i] for i in v.segment_ids]
                or [x for x in data.segments if x.contribution_id in v.contribution_ids]
            )
        ]
        sentences.append(
            SummarySentence(
                text=(
                    "1 minority view stands apart from the main themes and is set out below so that it is not lost."
                    if len(views) == 1
                    else f"{len(views)} minority views stand apart from the main themes and are set out below so "
                    "that they are not lost."
                ),
                citations=cite(cited),
                kind="count",
            )
        )
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
