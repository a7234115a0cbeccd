"""The nouns every part of synth shares, as pydantic models; the Synthesis is the product.

Versioned: bump SCHEMA_VERSION whenever a field changes meaning. The JSON Schema is exported
with ``synth schema``.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.3"  # 1.1: proposals, metadata.extends (incremental); 1.2: drafting (optional LLM);
# 1.3: stable sentence ids, metadata.redactions (erasure)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _empty(value: object) -> bool:
    """Fields with `exclude_if=_empty` are left out of the output while unused: features that are off
    (incremental runs, LLM drafting) leave the JSON byte for byte as it was without them."""
    return value is None or value == []


class Votes(_Model):
    """Vote counts on a contribution (Polis agree / disagree / pass), bounded so that an impossible count is
    refused at the door rather than skewing every vote split computed from it."""

    # No conversation has a billion voters: a count outside 0..10**9 is a broken or hostile export.
    agree: int = Field(0, ge=0, le=10**9)
    disagree: int = Field(0, ge=0, le=10**9)
    passed: int = Field(0, ge=0, le=10**9)


class Contribution(_Model):
    """One free-text contribution exactly as it arrived; `text` is never altered."""

    id: str
    text: str
    participant_id: str | None = None
    group: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    timestamp: str | None = None
    question: str | None = None
    votes: Votes | None = None
    group_votes: dict[str, Votes] = Field(
        default_factory=dict, description="Votes split by the voters' opinion group (Polis)."
    )
    source_row: int | None = Field(None, description="1-based data row in the input file, for error messages.")


class Segment(_Model):
    """A sentence-sized piece of a contribution: `text == contribution.text[start:end]`."""

    id: str
    contribution_id: str
    start: int
    end: int
    text: str


class Citation(_Model):
    """A pointer to a verbatim span of a contribution: `contribution.text[start:end] == quote`."""

    contribution_id: str
    start: int
    end: int
    quote: str

    @classmethod
    def of(cls, segment: Segment, start: int = 0, end: int | None = None) -> Citation:
        """A segment, or the part of it from `start` to `end` (offsets within the segment's text)."""
        end = len(segment.text) if end is None else end
        return cls(
            contribution_id=segment.contribution_id,
            start=segment.start + start,
            end=segment.start + end,
            quote=segment.text[start:end],
        )


class SummarySentence(_Model):
    id: str = Field(
        "",
        description="Stable within its summary: made from the machine's wording, so a reviewer's rewording or "
        "decision keeps it. Review edits address sentences by it.",
    )
    text: str
    citations: list[Citation]
    kind: Literal["quote", "count", "drafted"]
    support: float | None = Field(None, description="Cosine of the sentence with what it cites (drafted sentences).")
    status: Literal["draft", "accepted", "rejected"] = Field("draft", description="A reviewer's decision.")
    original_text: str | None = Field(None, description="The machine's text, when a reviewer edited it.")
    drafted_by: str | None = Field(
        None, exclude_if=_empty, description="LLM drafting: 'model (prompt version)' that wrote it."
    )
    judged: str | None = Field(
        None, exclude_if=_empty, description="LLM drafting: the entailment judge's verdict on the citations."
    )


class DraftedText(_Model):
    """A title or statement an LLM drafted, kept because it passed every check; never shown as a quote."""

    text: str
    citations: list[Citation] = Field(description="The evidence segments it rests on, as the model cited them.")
    support: float = Field(description="Cosine of the text with the mean of what it cites.")
    judged: str = Field(description="The entailment judge's verdict.")
    drafted_by: str = Field(description="'model (prompt version)'.")


class DraftDropped(_Model):
    scope: str = Field(description="Theme id, minority view id, or 'overview' (with the section index).")
    part: Literal["title", "summary", "overview", "statement"]
    text: str = Field(description="What the model wrote (for the record; never shown as synth's).")
    reason: str


class Drafting(_Model):
    """What the LLM drafter did in this run: where it sent contributions, what it kept, what it dropped."""

    model: str
    base_url: str
    loopback: bool = Field(description="False: contributions were sent to a host off this machine.")
    prompt_version: str
    warnings: list[str] = Field(default_factory=list)
    prompt_tokens: int = Field(0, description="As the model counted them (cached answers count as first paid).")
    completion_tokens: int = 0
    kept: int = 0
    dropped: list[DraftDropped] = Field(default_factory=list)


class Summary(_Model):
    scope: str = Field(description="'overview' for a section, else the theme id.")
    sentences: list[SummarySentence]

    @model_validator(mode="after")
    def _sentence_ids(self) -> Summary:
        """Sentences made without an id get one from their scope and original wording (a suffix keeps two
        sentences that read the same apart)."""
        used = {x.id for x in self.sentences if x.id}
        for x in self.sentences:
            if not x.id:
                base = "s" + hashlib.sha256(f"{self.scope}\n{x.original_text or x.text}".encode()).hexdigest()[:10]
                sid, n = base, 1
                while sid in used:
                    n += 1
                    sid = f"{base}-{n}"
                x.id = sid
                used.add(sid)
        return self


class Theme(_Model):
    id: str
    label: str = Field(description="A short noun phrase for tables and charts.")
    title: str = Field("", description="What the members say, as a short statement: a member's words, or a reviewer's.")
    title_citation: Citation | None = Field(
        None, description="The member span the title comes from (None when a reviewer wrote it)."
    )
    keywords: list[str]
    parent_id: str | None = None
    segment_ids: list[str]
    contribution_ids: list[str]
    joined_segment_ids: list[str] = Field(
        default_factory=list, description="Members the clustering left unassigned and that joined as near enough."
    )
    representatives: list[Citation]
    n_contributions: int
    n_participants: int
    n_duplicates: int = Field(0, description="Duplicates of members, excluded but counted here.")
    cohesion: float = Field(description="Mean cosine of members to the theme centre.")
    group_counts: dict[str, int] = Field(default_factory=dict, description="Participants per group.")
    breadth: float | None = Field(None, description="Share of the section's groups with a participant here.")
    drafted_title: DraftedText | None = Field(
        None, exclude_if=_empty, description="LLM drafting: a title that passed the checks."
    )


class MinorityView(_Model):
    id: str
    kind: Literal[
        "small_distinct_theme", "dissent_in_theme", "concentrated_in_group", "lone_voices", "marked_by_reviewer"
    ]
    theme_id: str | None = None
    contribution_ids: list[str]
    segment_ids: list[str] = Field(default_factory=list)
    statement: str = Field("", description="What the view says, in a member's words (empty for lone voices).")
    statement_citation: Citation | None = Field(None, description="The member span the statement comes from.")
    quotes: list[Citation] = Field(default_factory=list, description="Verbatim quotes from other members.")
    reason: str = Field(description="Why it is flagged, in plain words; the figures are in `stats`.")
    stats: dict[str, float | int | str] = Field(default_factory=dict)
    drafted_statement: DraftedText | None = Field(
        None, exclude_if=_empty, description="LLM drafting: what the view is, drafted."
    )


class Excluded(_Model):
    contribution_id: str
    reason: str
    duplicate_of: str | None = None


class BreakdownCell(_Model):
    value: str
    participants: int | None = Field(description="None: fewer than the privacy floor, withheld.")
    share: float | None = Field(None, description="Of the theme's participants with a value for the dimension.")
    flag: Literal["over", "under"] | None = Field(
        None, description="Over- or under-represented against the section (two-sided Fisher, BH-corrected)."
    )
    q_value: float | None = None


class ThemeBreakdown(_Model):
    theme_id: str
    participants: int = Field(description="The theme's participants with a value for the dimension.")
    cells: list[BreakdownCell]


class Breakdown(_Model):
    """Per theme, how its participants spread over one group column or attribute."""

    dimension: str = Field(description="'group', or an attribute's name.")
    values: list[str]
    participants: int
    overall: dict[str, int | None]
    overall_share: dict[str, float | None]
    floor: int = Field(description="Cells under this many participants are withheld.")
    themes: list[ThemeBreakdown]


class Proposal(_Model):
    """A change the new data suggests to a reviewed theme, left to a facilitator (an incremental run never
    splits or merges a theme a person may have checked)."""

    kind: Literal["split", "merge"]
    theme_ids: list[str] = Field(description="The theme to split, or the themes to merge.")
    parts: list[list[str]] = Field(
        default_factory=list, description="For a split: the contribution ids of each part a fresh clustering finds."
    )
    reason: str


class Code(_Model):
    """One theme of a codebook given with the input (deductive coding)."""

    id: str
    name: str
    description: str = ""
    examples: list[str] = Field(default_factory=list)


class CodeAssignment(_Model):
    code_id: str
    segment_id: str
    score: float | None = Field(
        description="Cosine of passage and code, the section's mean vector taken out of both (None: a reviewer's)."
    )
    by: Literal["machine", "reviewer"] = "machine"


class CodeCandidate(_Model):
    """A group among the passages that fit no code: a candidate new code, titled in a member's words."""

    title: str
    title_citation: Citation
    segment_ids: list[str]


class Coding(_Model):
    """Deductive coding of a section against a codebook; every passage is coded, fits none, or is undecided."""

    codes: list[Code]
    assignments: list[CodeAssignment] = Field(default_factory=list)
    fits_none: list[str] = Field(default_factory=list, description="Passages no code is close to.")
    undecided: list[str] = Field(default_factory=list, description="Passages between the thresholds: a person decides.")
    candidates: list[CodeCandidate] = Field(default_factory=list)


class Section(_Model):
    """The synthesis of one question (or of the whole input when there is no question column)."""

    question: str | None
    n_contributions: int
    n_participants: int
    themes: list[Theme]
    minority_views: list[MinorityView]
    summaries: list[Summary]
    unassigned_segment_ids: list[str]
    groups: list[str] = Field(default_factory=list)
    breakdowns: list[Breakdown] = Field(default_factory=list)
    coding: Coding | None = Field(None, exclude_if=_empty, description="Deductive coding, when a codebook was given.")
    proposals: list[Proposal] = Field(
        default_factory=list,
        exclude_if=_empty,
        description="Incremental runs: splits and merges the new data suggests.",
    )
    parameters: dict[str, float | int | str] = Field(
        default_factory=dict,
        description="What the clustering of this section actually used (the smallest theme, the resolution, ...).",
    )


class ModelInfo(_Model):
    name: str
    package: str
    version: str
    sha256: str
    runtime: str | None = Field(
        None, exclude_if=_empty, description="How it ran: the runtime, its version and the exported file's sha256."
    )


class Extends(_Model):
    """The earlier synthesis an incremental run kept: its themes' ids, titles and reviewers' edits."""

    synthesis_sha256: str = Field(description="sha256 of the earlier synthesis JSON, as read.")
    run_id: str | None = None
    revision: int | None = None
    n_contributions: int = Field(description="Contributions in the earlier run.")
    n_new: int = Field(description="Contributions this run added.")


class RunMetadata(_Model):
    """Everything needed to reproduce the run. No clock times: those go in timings.json."""

    synth_version: str
    input_sha256: str
    config: dict
    embedding_model: ModelInfo
    nlp_model: ModelInfo
    seed: int
    libraries: dict[str, str]
    extends: Extends | None = Field(
        None, exclude_if=_empty, description="For an incremental run: the run it started from."
    )
    drafting: Drafting | None = Field(None, exclude_if=_empty, description="LLM drafting, when it was on.")
    stages: dict[str, str] = Field(
        default_factory=dict, description="The algorithm of each stage that is a choice (synth.pipeline.stages)."
    )
    redactions: list[Redaction] = Field(
        default_factory=list, exclude_if=_empty, description="Erasures applied to this result after it was made."
    )


class Redaction(_Model):
    """Contributions erased after the run: their text, and every quote, title or sentence drawn from it, is
    replaced by as many █ as it had characters (so every citation still resolves); counts stand as they were."""

    at: str = Field(description="When (UTC, ISO 8601).")
    contribution_ids: list[str]
    reason: str


class Coverage(_Model):
    n_input: int
    n_themed: int
    n_unassigned: int
    n_excluded: int
    n_segments: int
    n_segments_themed: int


class Synthesis(_Model):
    schema_version: str = SCHEMA_VERSION
    metadata: RunMetadata
    contributions: list[Contribution]
    segments: list[Segment]
    sections: list[Section]
    excluded: list[Excluded]
    coverage: Coverage
