"""Verify: the architecture's invariants, checked on the finished Synthesis. A Synthesis that breaks
one is refused, never written: a secretariat must be able to trust every count and every quote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from synth.schema import Synthesis

SupportScorer = Callable[[str, list[str]], float]


class SynthesisInvalid(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:10]) + (f"; ... {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(f"synthesis breaks {len(problems)} invariant(s): {shown}")


def check(synthesis: Synthesis, min_support: float = 0.3, scorer: SupportScorer | None = None) -> list[str]:
    """Every violation found, as readable lines; an empty list means the Synthesis may be emitted."""
    problems: list[str] = []
    texts = {c.id: c.text for c in synthesis.contributions}
    if len(texts) != len(synthesis.contributions):
        problems.append("contribution ids are not unique")
    excluded = Counter(e.contribution_id for e in synthesis.excluded)
    problems += [f"{cid} is excluded {n} times" for cid, n in excluded.items() if n > 1]
    problems += [f"excluded id {cid} is not a contribution" for cid in excluded if cid not in texts]

    seg_by_id = {s.id: s for s in synthesis.segments}
    for s in synthesis.segments:
        if s.contribution_id not in texts:
            problems.append(f"segment {s.id} points to unknown contribution {s.contribution_id}")
        elif texts[s.contribution_id][s.start : s.end] != s.text:
            problems.append(f"segment {s.id} is not the text at [{s.start}:{s.end}]")
        if s.contribution_id in excluded:
            problems.append(f"segment {s.id} belongs to excluded contribution {s.contribution_id}")

    # 1. every segment exactly once in a top-level theme or unassigned; every contribution accounted for
    placed: Counter[str] = Counter()
    for sec in synthesis.sections:
        placed.update(sec.unassigned_segment_ids)
        for t in sec.themes:
            if t.parent_id is None:
                placed.update(t.segment_ids)
            bad = [x for x in t.segment_ids if x not in seg_by_id]
            problems += [f"theme {t.id} lists unknown segment {x}" for x in bad[:3]]
            derived = list(dict.fromkeys(seg_by_id[x].contribution_id for x in t.segment_ids if x in seg_by_id))
            if derived != t.contribution_ids or t.n_contributions != len(derived):
                problems.append(f"theme {t.id}: contribution ids or count disagree with its segments")
        parents = {t.id: set(t.segment_ids) for t in sec.themes if t.parent_id is None}
        for t in sec.themes:
            if t.parent_id is not None and not set(t.segment_ids) <= parents.get(t.parent_id, set()):
                problems.append(f"sub-theme {t.id} has segments outside its parent {t.parent_id}")
    problems += [f"segment {x} is placed {n} times" for x, n in placed.items() if n > 1]
    problems += [f"segment {x} is in no theme and not unassigned" for x in seg_by_id if placed[x] == 0]
    problems += [f"placed segment {x} does not exist" for x in placed if x not in seg_by_id]
    with_segments = {s.contribution_id for s in synthesis.segments}
    for cid in texts:
        if cid not in excluded and cid not in with_segments:
            problems.append(f"contribution {cid} is neither analysed nor excluded")

    from synth.provenance import coverage_of

    if coverage_of(synthesis) != synthesis.coverage:
        problems.append("coverage figures disagree with the themes and the unassigned list")

    # 2. every citation resolves to the exact text; 3. every sentence cited (drafted ones supported)
    def check_citation(where: str, c) -> None:  # noqa: ANN001 - Citation
        text = texts.get(c.contribution_id)
        if text is None:
            problems.append(f"{where}: cites unknown contribution {c.contribution_id}")
        elif not (0 <= c.start < c.end <= len(text)) or text[c.start : c.end] != c.quote:
            problems.append(f"{where}: quote is not the text of {c.contribution_id}[{c.start}:{c.end}]")

    for sec in synthesis.sections:
        for t in sec.themes:
            for c in t.representatives:
                check_citation(f"theme {t.id} representative", c)
            for drafted in [t.drafted_title] if t.drafted_title else []:
                for c in drafted.citations:
                    check_citation(f"theme {t.id} drafted title", c)
                if not drafted.citations or drafted.support < min_support:
                    problems.append(f"theme {t.id}: drafted title not supported by what it cites")
            if t.title_citation is not None:
                check_citation(f"theme {t.id} title", t.title_citation)
                if t.title[1:] != t.title_citation.quote[1:]:  # only the first letter's case may differ
                    problems.append(f"theme {t.id}: title is not the words it cites")
        for v in sec.minority_views:
            problems += [f"minority view {v.id} names unknown {x}" for x in v.contribution_ids if x not in texts]
            drafted = v.drafted_statement
            for c in [*([v.statement_citation] if v.statement_citation else []), *v.quotes]:
                check_citation(f"minority view {v.id}", c)
            for c in drafted.citations if drafted else []:
                check_citation(f"minority view {v.id} drafted statement", c)
            if drafted and (not drafted.citations or drafted.support < min_support):
                problems.append(f"minority view {v.id}: drafted statement not supported by what it cites")
        for summary in sec.summaries:
            for i, sentence in enumerate(summary.sentences):
                where = f"summary {summary.scope} sentence {i + 1}"
                if not sentence.citations:
                    problems.append(f"{where} has no citation")
                for c in sentence.citations:
                    check_citation(where, c)
                if sentence.kind == "drafted":
                    if scorer is not None:
                        score = scorer(sentence.text, [c.quote for c in sentence.citations])
                        if sentence.support is None or abs(sentence.support - score) > 1e-3:
                            problems.append(f"{where}: recorded support differs from the measured {score:.3f}")
                    if sentence.support is None or sentence.support < min_support:
                        problems.append(f"{where}: drafted sentence not supported by what it cites")
    return problems


def verify(synthesis: Synthesis, min_support: float = 0.3, scorer: SupportScorer | None = None) -> Synthesis:
    problems = check(synthesis, min_support, scorer)
    if problems:
        raise SynthesisInvalid(problems)
    return synthesis
