"""The nouns every part of synth shares, as pydantic models; the Synthesis is the product.

Versioned: bump SCHEMA_VERSION whenever a field changes meaning. The JSON Schema is exported
with ``synth schema``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.1"  # 1.1: sections[].proposals and metadata.extends (incremental runs)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    text: str
    citations: list[Citation]
    kind: Literal["quote", "count", "drafted"]
    support: float | None = Field(None, description="Cosine of the sentence with what it cites (drafted sentences).")
    status: Literal["draft", "accepted", "rejected"] = Field("draft", description="A reviewer's decision.")
    original_text: str | None = Field(None, description="The machine's text, when a reviewer edited it.")


class Summary(_Model):
    scope: str = Field(description="'overview' for a section, else the theme id.")
    sentences: list[SummarySentence]


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
    proposals: list[Proposal] = Field(
        default_factory=list, description="Incremental runs: splits and merges the new data suggests."
    )


class ModelInfo(_Model):
    name: str
    package: str
    version: str
    sha256: str


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
    extends: Extends | None = Field(None, description="For an incremental run: the run it started from.")


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
