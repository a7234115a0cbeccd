"""Review edits: a facilitator corrects the machine. Each edit is a pure function of (synthesis, edit,
vectors) to a new Synthesis; the result is verified like any other, so an edit can never break a count or a
quote. The vectors are loaded once by the caller (the service keeps them per run) and passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from synth.config import SynthConfig, default_cache_dir
from synth.pipeline.breakdown import breakdowns
from synth.pipeline.cluster import unit
from synth.pipeline.embed import embed_texts
from synth.pipeline.label import SectionData, representatives
from synth.pipeline.prepare import normalise
from synth.pipeline.summarize import overview, theme_summary
from synth.pipeline.verify import verify
from synth.provenance import coverage_of
from synth.schema import Citation, CodeAssignment, MinorityView, Section, Summary, Synthesis, Theme


class EditError(ValueError):
    """The edit names something that is not there or cannot be done; nothing was changed."""


class Vectors:
    """Unit vectors of a synthesis's passages and of new wording, from one encoder. A run's passages never
    change between revisions, so one Vectors serves every edit of a run; each text is encoded at most once."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]):
        self._encode = encode
        self._known: dict[str, np.ndarray] = {}

    @classmethod
    def packaged(cls, cache_dir: Path | None, runtime: str = "onnx") -> Vectors:
        """The packaged encoder, with the on-disk embedding cache (the texts a run embedded are hits)."""
        return cls(lambda texts: embed_texts(texts, cache_dir, runtime=runtime))

    def of(self, texts: list[str]) -> np.ndarray:
        keys = [normalise(x) for x in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._known))
        if missing:
            self._known.update(zip(missing, self._encode(missing), strict=True))
        return np.array([self._known[k] for k in keys]).reshape(len(keys), -1)

    def support(self, text: str, quotes: list[str]) -> float:
        """Cosine between a sentence and the mean of what it cites (first 20 citations)."""
        vecs = self.of([text] + quotes[:20])
        return round(float(vecs[0] @ unit(vecs[1:].mean(axis=0))), 4)


class RenameTheme(BaseModel):
    action: Literal["rename_theme"]
    theme_id: str
    label: str = Field(min_length=1, max_length=200)


class MergeThemes(BaseModel):
    action: Literal["merge_themes"]
    theme_ids: list[str] = Field(min_length=2, description="The first keeps its id and label.")


class SplitTheme(BaseModel):
    action: Literal["split_theme"]
    theme_id: str
    contribution_ids: list[str] = Field(min_length=1, description="Members that form the new theme.")
    label: str = Field(min_length=1, max_length=200)


class MoveContributions(BaseModel):
    action: Literal["move_contributions"]
    contribution_ids: list[str] = Field(min_length=1)
    to_theme_id: str | None = Field(description="A top-level theme id, or null for the unassigned list.")


class MarkMinority(BaseModel):
    action: Literal["mark_minority"]
    contribution_ids: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=1000)


class UnmarkMinority(BaseModel):
    action: Literal["unmark_minority"]
    view_id: str


class ReviewSentence(BaseModel):
    action: Literal["review_sentence"]
    scope: str = Field(description="'overview' or a theme id.")
    sentence_id: str | None = Field(None, max_length=40, description="The sentence's `id` (stable across edits).")
    index: int | None = Field(None, ge=0, description="Or: its 0-based position in that summary.")
    status: Literal["accepted", "rejected", "draft"] | None = None
    text: str | None = Field(None, min_length=1, max_length=2000, description="New wording; citations are kept.")
    section: int = Field(0, ge=0)


class RevertToRevision(BaseModel):
    action: Literal["revert_to_revision"]
    revision: int | None = Field(
        None, ge=0, le=2**31 - 1, description="The revision to return to; null: the one before the newest (undo)."
    )


class CodeContributions(BaseModel):
    action: Literal["code_contributions"]
    contribution_ids: list[str] = Field(min_length=1)
    code_id: str | None = Field(description="A code of the section's codebook, or null: fits no code.")


Edit = Annotated[
    RenameTheme
    | MergeThemes
    | SplitTheme
    | MoveContributions
    | MarkMinority
    | UnmarkMinority
    | ReviewSentence
    | CodeContributions
    | RevertToRevision,
    Field(discriminator="action"),
]


def _section_of_theme(s: Synthesis, theme_id: str) -> tuple[Section, Theme]:
    for sec in s.sections:
        for t in sec.themes:
            if t.id == theme_id:
                return sec, t
    raise EditError(f"no theme {theme_id!r}")


def _refresh(
    s: Synthesis, sec: Section, theme: Theme, segment_ids: list[str], config: SynthConfig, vectors: Vectors
) -> Theme:
    """Recount a theme whose members changed: counts, cohesion, breadth, representatives still members."""
    segs = {x.id: x for x in s.segments}
    members = [segs[i] for i in segment_ids]
    contributions = {c.id: c for c in s.contributions}
    cids = list(dict.fromkeys(x.contribution_id for x in members))
    people = {c.participant_id or f"contribution:{c.id}" for c in (contributions[i] for i in cids)}
    groups: dict[str, int] = {}
    for _pid, g in {(contributions[i].participant_id or i, contributions[i].group) for i in cids}:
        if g is not None:
            groups[g] = groups.get(g, 0) + 1
    vecs = vectors.of([x.text for x in members]) if members else np.zeros((0, 384))
    centre = unit(vecs.mean(axis=0)) if len(members) else None
    reps = [r for r in theme.representatives if any(x.contribution_id == r.contribution_id for x in members)]
    if not reps and members:
        picked = representatives(vecs, min(3, len(members)), config.mmr_diversity)
        reps = [
            Citation(
                contribution_id=members[i].contribution_id,
                start=members[i].start,
                end=members[i].end,
                quote=members[i].text,
            )
            for i in picked
        ]
    dups = {}
    for e in s.excluded:
        if e.duplicate_of:
            dups[e.duplicate_of] = dups.get(e.duplicate_of, 0) + 1
    return theme.model_copy(
        update={
            "segment_ids": segment_ids,
            "contribution_ids": cids,
            "representatives": reps,
            "n_contributions": len(cids),
            "n_participants": len(people),
            "n_duplicates": sum(dups.get(c, 0) for c in cids),
            "cohesion": round(float((vecs @ centre).mean()), 4) if centre is not None else 0.0,
            "group_counts": dict(sorted(groups.items())),
            "breadth": round(len(groups) / len(sec.groups), 4) if sec.groups else None,
            "joined_segment_ids": [i for i in theme.joined_segment_ids if i in set(segment_ids)],
        }
    )


def _rewrite_section(s: Synthesis, sec: Section, config: SynthConfig) -> None:
    """After a structural edit, everything that depends on the structure is made again: each theme's summary
    (its title, counts, narrower points), the overview (sizes, the largest themes), the minority views' links
    to themes that were merged away, and the breakdowns. A report then never names a theme, title or count
    that no longer holds. Reviewers' decisions on sentences that still read the same are kept."""
    for theme in [t for t in sec.themes if t.parent_id is None]:
        _resummarise(s, sec, theme)
    segs = {x.id: x for x in s.segments}
    ids = {t.id for t in sec.themes}
    in_section = {i for t in sec.themes for i in t.segment_ids} | set(sec.unassigned_segment_ids)
    data = SectionData(
        question=sec.question,
        prefix="",
        segments=[x for x in s.segments if x.id in in_section],
        vectors=np.zeros((0, 0)),
        contributions={c.id: c for c in s.contributions},
        duplicates={},
        lemmas={},
    )
    unassigned = [segs[i] for i in sec.unassigned_segment_ids]
    fresh = overview(data, sec.themes, sec.minority_views, unassigned, segs)
    old = next((x for x in sec.summaries if x.scope == "overview"), None)
    if old is not None:
        decided = {x.original_text or x.text: x for x in old.sentences if x.status != "draft" or x.original_text}
        fresh.sentences = [decided.get(x.text, x) for x in fresh.sentences]
        sec.summaries[sec.summaries.index(old)] = fresh
    else:
        sec.summaries.insert(0, fresh)
    sec.minority_views = [
        v if v.theme_id in ids or v.theme_id is None else v.model_copy(update={"theme_id": None})
        for v in sec.minority_views
    ]
    sec.breakdowns = breakdowns(data, sec.themes, config)
    sec.n_contributions = len({x.contribution_id for x in data.segments})
    sec.n_participants = len({data.participant(x.contribution_id) for x in data.segments})


def _resummarise(s: Synthesis, sec: Section, theme: Theme) -> None:
    """Rebuild the theme's summary (counts change with members); reviewers' decisions on quotes that are
    still members are kept."""
    segs = {x.id: x for x in s.segments}
    subs = [t for t in sec.themes if t.parent_id == theme.id]
    fresh = theme_summary(theme, subs, len(sec.groups), segs)
    old = next((x for x in sec.summaries if x.scope == theme.id), None)
    if old is not None:
        decided = {x.citations[0].quote: x for x in old.sentences if x.kind == "quote" and x.status != "draft"}
        fresh.sentences = [decided.get(x.citations[0].quote, x) if x.kind == "quote" else x for x in fresh.sentences]
        # the other sentences are counts, rewritten when members change: one that reads the same keeps its
        # decision and wording; one a reviewer rejected stays rejected in its new wording
        before = [x for x in old.sentences if x.kind != "quote"]
        slots = [i for i, x in enumerate(fresh.sentences) if x.kind != "quote"]
        if len(before) == len(slots):
            for was, i in zip(before, slots, strict=True):
                now = fresh.sentences[i]
                if now.text in (was.text, was.original_text):
                    fresh.sentences[i] = was
                elif was.status == "rejected":
                    fresh.sentences[i] = now.model_copy(update={"status": "rejected"})
        sec.summaries[sec.summaries.index(old)] = fresh
    else:
        sec.summaries.append(fresh)


def _set_members(
    s: Synthesis, sec: Section, theme: Theme, segment_ids: list[str], config: SynthConfig, vectors: Vectors
) -> Theme:
    new = _refresh(s, sec, theme, segment_ids, config, vectors)
    sec.themes[sec.themes.index(theme)] = new
    for sub in [t for t in sec.themes if t.parent_id == theme.id]:
        keep = [i for i in sub.segment_ids if i in set(segment_ids)]
        idx = sec.themes.index(sub)
        if len(keep) < 2:
            sec.themes.pop(idx)
        else:
            sec.themes[idx] = _refresh(s, sec, sub, keep, config, vectors)
    _resummarise(s, sec, new)
    return new


def _segments_of(s: Synthesis, contribution_ids: list[str]) -> list[str]:
    known = {c.id for c in s.contributions}
    missing = [c for c in contribution_ids if c not in known]
    if missing:
        raise EditError(f"unknown contribution ids: {missing[:5]}")
    wanted = set(contribution_ids)
    return [x.id for x in s.segments if x.contribution_id in wanted]


def _take_out(s: Synthesis, sec: Section, segment_ids: set[str], config: SynthConfig, vectors: Vectors) -> None:
    """Remove segments from whichever top-level theme or unassigned list holds them."""
    for t in [t for t in sec.themes if t.parent_id is None]:
        if segment_ids & set(t.segment_ids):
            current = next(x for x in sec.themes if x.id == t.id)
            _set_members(s, sec, current, [i for i in current.segment_ids if i not in segment_ids], config, vectors)
    sec.unassigned_segment_ids = [i for i in sec.unassigned_segment_ids if i not in segment_ids]


def _drop_empty(sec: Section) -> None:
    empty = {t.id for t in sec.themes if t.parent_id is None and not t.segment_ids}
    sec.themes = [t for t in sec.themes if t.id not in empty and t.parent_id not in empty]
    sec.summaries = [x for x in sec.summaries if x.scope not in empty]


Judge = Callable[[str, list[str]], str | None]


@dataclass(frozen=True)
class _Context:
    config: SynthConfig
    vectors: Vectors
    judge: Judge


def _rename(s: Synthesis, edit: RenameTheme, ctx: _Context) -> None:
    sec, t = _section_of_theme(s, edit.theme_id)
    # the reviewer's name is both what is read (title) and what charts show (label); it cites no member
    sec.themes[sec.themes.index(t)] = t.model_copy(
        update={"label": edit.label, "title": edit.label, "title_citation": None}
    )


def _merge(s: Synthesis, edit: MergeThemes, ctx: _Context) -> None:
    sec, first = _section_of_theme(s, edit.theme_ids[0])
    others = [_section_of_theme(s, i) for i in edit.theme_ids[1:]]
    if any(o[0] is not sec or o[1].parent_id is not None for o in others) or first.parent_id is not None:
        raise EditError("only top-level themes of the same section can be merged")
    members = list(first.segment_ids) + [i for _, o in others for i in o.segment_ids]
    gone = {o.id for _, o in others}
    sec.minority_views = [
        v.model_copy(update={"theme_id": first.id}) if v.theme_id in gone else v for v in sec.minority_views
    ]
    sec.themes = [t for t in sec.themes if t.id not in gone and t.parent_id not in gone]
    sec.summaries = [x for x in sec.summaries if x.scope not in gone]
    _set_members(s, sec, first, members, ctx.config, ctx.vectors)


def _split(s: Synthesis, edit: SplitTheme, ctx: _Context) -> None:
    sec, t = _section_of_theme(s, edit.theme_id)
    if t.parent_id is not None:
        raise EditError("split a top-level theme")
    moving = [i for i in _segments_of(s, edit.contribution_ids) if i in set(t.segment_ids)]
    if not moving or len(moving) == len(t.segment_ids):
        raise EditError("the contributions to split off must be some, not all, of the theme's members")
    existing = {x.id for x in sec.themes}
    n = 1
    while f"{t.id}-s{n}" in existing:
        n += 1
    new = Theme(
        id=f"{t.id}-s{n}",
        label=edit.label,
        title=edit.label,
        keywords=[],
        segment_ids=[],
        contribution_ids=[],
        representatives=[],
        n_contributions=0,
        n_participants=0,
        cohesion=0.0,
    )
    _set_members(s, sec, t, [i for i in t.segment_ids if i not in set(moving)], ctx.config, ctx.vectors)
    sec.themes.append(new)
    _set_members(s, sec, new, moving, ctx.config, ctx.vectors)


def _move(s: Synthesis, edit: MoveContributions, ctx: _Context) -> None:
    moving = _segments_of(s, edit.contribution_ids)
    excluded = {e.contribution_id for e in s.excluded} & set(edit.contribution_ids)
    if excluded:
        raise EditError(f"excluded contributions cannot be moved: {sorted(excluded)[:5]}")
    if edit.to_theme_id is not None:
        sec, target = _section_of_theme(s, edit.to_theme_id)
        if target.parent_id is not None:
            raise EditError("move into a top-level theme")
    else:
        sec = next(
            x
            for x in s.sections
            if set(moving) & ({i for t in x.themes for i in t.segment_ids} | set(x.unassigned_segment_ids))
        )
    in_section = {i for t in sec.themes for i in t.segment_ids} | set(sec.unassigned_segment_ids)
    if not set(moving) <= in_section:
        raise EditError("contributions can move only within their own question's section")
    _take_out(s, sec, set(moving), ctx.config, ctx.vectors)
    if edit.to_theme_id is None:
        sec.unassigned_segment_ids += moving
    else:
        target = next(x for x in sec.themes if x.id == edit.to_theme_id)
        _set_members(s, sec, target, target.segment_ids + moving, ctx.config, ctx.vectors)
    _drop_empty(sec)


def _mark(s: Synthesis, edit: MarkMinority, ctx: _Context) -> None:
    segs = _segments_of(s, edit.contribution_ids)
    sec = next(
        (
            x
            for x in s.sections
            if set(segs) & ({i for t in x.themes for i in t.segment_ids} | set(x.unassigned_segment_ids))
        ),
        None,
    )
    if sec is None:
        raise EditError("excluded contributions cannot be marked")
    n = 1 + sum(v.kind == "marked_by_reviewer" for x in s.sections for v in x.minority_views)
    sec.minority_views.append(
        MinorityView(
            id=f"r{n}",
            kind="marked_by_reviewer",
            contribution_ids=list(dict.fromkeys(edit.contribution_ids)),
            segment_ids=segs,
            reason=edit.reason,
        )
    )


def _unmark(s: Synthesis, edit: UnmarkMinority, ctx: _Context) -> None:
    for sec in s.sections:
        before = len(sec.minority_views)
        sec.minority_views = [v for v in sec.minority_views if v.id != edit.view_id]
        if len(sec.minority_views) < before:
            break
    else:
        raise EditError(f"no minority view {edit.view_id!r}")


def _review_sentence(s: Synthesis, edit: ReviewSentence, ctx: _Context) -> None:
    if edit.section >= len(s.sections):
        raise EditError(f"no section {edit.section}")
    summary = next((x for x in s.sections[edit.section].summaries if x.scope == edit.scope), None)
    index = sentence_index(summary, edit)
    sentence = summary.sentences[index]
    update: dict = {}
    if edit.status is not None:
        update["status"] = edit.status
    if edit.text is not None and edit.text != sentence.text:
        support = ctx.vectors.support(edit.text, [c.quote for c in sentence.citations])
        if support < ctx.config.min_support:
            raise EditError(
                f"the new wording is not supported by what the sentence cites (similarity {support:.2f} < "
                f"{ctx.config.min_support}); keep closer to the cited contributions"
            )
        judged = ctx.judge(edit.text, [c.quote for c in sentence.citations])
        update.update(
            text=edit.text,
            kind="drafted",
            support=round(support, 4),
            original_text=sentence.original_text or sentence.text,
            judged=judged,
            drafted_by=None,
        )
    summary.sentences[index] = sentence.model_copy(update=update)


def _code_edit(s: Synthesis, edit: CodeContributions, ctx: _Context) -> None:
    _code(s, edit)


def _revert(s: Synthesis, edit: RevertToRevision, ctx: _Context) -> None:
    raise EditError("returning to a revision needs the run's history: the service applies it")


APPLY: dict[type, Callable[[Synthesis, Any, _Context], None]] = {
    RenameTheme: _rename,
    MergeThemes: _merge,
    SplitTheme: _split,
    MoveContributions: _move,
    MarkMinority: _mark,
    UnmarkMinority: _unmark,
    ReviewSentence: _review_sentence,
    CodeContributions: _code_edit,
    RevertToRevision: _revert,
}


def apply_edit(
    synthesis: Synthesis,
    edit: Edit,
    config: SynthConfig | None = None,
    vectors: Vectors | None = None,
    judge: Judge | None = None,
) -> Synthesis:
    """A new, verified Synthesis with the edit applied; the input is not modified. `vectors` embeds passages
    and new wording (default: the packaged encoder, a fresh Vectors each call); `judge` checks a reviewer's
    wording of a drafted run (default: the run's language model, if it has one)."""
    config = config or SynthConfig()
    vectors = vectors or Vectors.packaged(default_cache_dir(), config.encoder)
    judge = judge or (lambda text, quotes: _judge_rewording(text, quotes, config))
    s = synthesis.model_copy(deep=True)
    APPLY[type(edit)](s, edit, _Context(config, vectors, judge))
    if not isinstance(edit, ReviewSentence | CodeContributions):
        for sec in s.sections:
            _rewrite_section(s, sec, config)
    s.coverage = coverage_of(s)
    return verify(s, config.min_support, vectors.support)


def sentence_index(summary: Summary | None, edit: ReviewSentence) -> int:
    """The position of the sentence an edit names, by its id (or its position)."""
    if summary is not None and edit.sentence_id is not None:
        for i, x in enumerate(summary.sentences):
            if x.id == edit.sentence_id:
                return i
    elif summary is not None and edit.index is not None and edit.index < len(summary.sentences):
        return edit.index
    which = edit.sentence_id if edit.sentence_id is not None else edit.index
    raise EditError(f"no sentence {which!r} in summary {edit.scope!r}")


def _code(s: Synthesis, edit: CodeContributions) -> None:
    """A reviewer codes passages (all of each contribution's in that section): the machine's codes for them
    are replaced; null puts them with the passages that fit no code."""
    segs = set(_segments_of(s, edit.contribution_ids))
    sections = [x for x in s.sections if x.coding is not None and segs & _passages(x)]
    if not sections:
        raise EditError("these contributions are in no section coded against a codebook")
    for sec in sections:
        coding = sec.coding
        if edit.code_id is not None and edit.code_id not in {c.id for c in coding.codes}:
            raise EditError(f"no code {edit.code_id!r} in this section's codebook")
        mine = segs & _passages(sec)
        coding.assignments = [a for a in coding.assignments if a.segment_id not in mine]
        coding.fits_none = [i for i in coding.fits_none if i not in mine]
        coding.undecided = [i for i in coding.undecided if i not in mine]
        ordered = [x.id for x in s.segments if x.id in mine]
        if edit.code_id is None:
            coding.fits_none += ordered
        else:
            coding.assignments += [
                CodeAssignment(code_id=edit.code_id, segment_id=i, score=None, by="reviewer") for i in ordered
            ]


def _passages(sec: Section) -> set[str]:
    return {i for t in sec.themes for i in t.segment_ids} | set(sec.unassigned_segment_ids)


def _judge_rewording(text: str, quotes: list[str], config: SynthConfig) -> str | None:
    """For a run drafted with an LLM, a reviewer's wording passes the same entailment judge as a drafted
    sentence; an unreachable model refuses the edit rather than letting it through unchecked."""
    if not config.draft:
        return None
    from synth.llm import ChatClient, Endpoint, LLMError
    from synth.pipeline.draft import JUDGE_SCHEMA, judge_message

    endpoint = Endpoint.of(config)
    if endpoint is None:
        return None
    client = ChatClient(endpoint, config.llm_token_budget or 200_000, default_cache_dir(), seed=config.seed)
    try:
        verdict = client.complete_json(judge_message(quotes[:12], text), JUDGE_SCHEMA, 20)
    except LLMError as exc:
        raise EditError(f"the new wording cannot be checked now ({exc}); try again later") from None
    finally:
        client.close()
    if verdict.get("supported") is not True:
        raise EditError("the language model's check found a claim the cited contributions do not support")
    return "supported"


def describe(before: Synthesis, edit: Edit) -> str:
    """What an edit did, in one sentence for the person who made it (names, not ids, where there are names)."""
    names = {t.id: t.label for sec in before.sections for t in sec.themes}

    def name(theme_id: str | None) -> str:
        return f"'{names[theme_id]}'" if theme_id in names else "the unassigned list"

    n = len(getattr(edit, "contribution_ids", []) or [])
    many = f"{n} contribution{'s' if n != 1 else ''}"
    if isinstance(edit, RenameTheme):
        return f"Renamed {name(edit.theme_id)} to '{edit.label}'."
    if isinstance(edit, MergeThemes):
        return f"Merged {', '.join(name(i) for i in edit.theme_ids[1:])} into {name(edit.theme_ids[0])}."
    if isinstance(edit, SplitTheme):
        return f"Split {many} off {name(edit.theme_id)} as '{edit.label}'."
    if isinstance(edit, MoveContributions):
        return f"Moved {many} to {name(edit.to_theme_id)}."
    if isinstance(edit, MarkMinority):
        return f"Marked {many} as a minority view."
    if isinstance(edit, UnmarkMinority):
        return f"Removed minority view {edit.view_id}."
    if isinstance(edit, ReviewSentence):
        return "Reworded a summary sentence." if edit.text is not None else f"Marked a summary sentence {edit.status}."
    if isinstance(edit, CodeContributions):
        return f"Coded {many} as {edit.code_id or 'fitting no code'}."
    return f"Returned to revision {edit.revision}." if edit.revision is not None else "Undid the last edit."
