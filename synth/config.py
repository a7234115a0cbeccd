"""One settings object: every threshold of the pipeline lives here, with why it has its value.

The config is recorded in every Synthesis, so a result can always be reproduced from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def default_cache_dir() -> Path:
    """Embedding cache location: ``$SYNTH_CACHE_DIR``, else ``$XDG_CACHE_HOME/synth``, else ``~/.cache/synth``."""
    import os

    if os.environ.get("SYNTH_CACHE_DIR"):
        return Path(os.environ["SYNTH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synth"


class SynthConfig(BaseModel):
    """Settings of one synthesis run. Defaults are the evaluated ones (see eval/RESULTS.md)."""

    # Every value is bounded (and the bounds show in the API's OpenAPI document): a run's settings come from
    # callers of the API, and an unbounded one (umap_epochs=10**8) would hold the worker indefinitely.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for UMAP and every other random choice.")

    # prepare
    min_segment_chars: int = Field(
        25,
        ge=1,
        le=1000,
        description="A sentence shorter than this is merged into its neighbour: too short to stand alone.",
    )
    max_text_chars: int = Field(
        100_000,
        ge=100,
        le=1_000_000,
        description="A contribution longer than this is excluded with the reason: a text of a million characters "
        "is a document, not a contribution, and would exhaust the sentence splitter (spaCy refuses 1M+).",
    )
    near_duplicate_similarity: float = Field(
        0.92,
        ge=0.5,
        le=1.0,
        description="Cosine of character-trigram TF-IDF above which two contributions are near duplicates.",
    )

    # embed
    shared_phrase_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Two- or three-word phrases found in this share of a section's passages (the conversation's "
        "or motion's own name, e.g. 'bowling green') are left out of what is embedded, so that themes form on "
        "what is said; 0 turns it off.",
    )
    batch_size: int = Field(
        16,
        ge=1,
        le=1024,
        description="Encoder batch size (texts sorted by length): with ONNX Runtime on 2 cores, 16 was fastest (613 "
        "passages/s, against 489 at 64 and 457 at 256); the vectors do not depend on it.",
    )
    encoder: Literal["onnx", "onnx-int8", "torch"] = Field(
        "onnx",
        description="How the packaged MiniLM runs: onnx (default; ONNX Runtime, fp32, 1.6x PyTorch's speed here, "
        "the same vectors), onnx-int8 (3.3x, but a text's vector depends on its batch), torch "
        "(sentence-transformers). See synth.pipeline.encoder.",
    )

    # cluster
    clusterer: Literal["graph", "umap-hdbscan"] = Field(
        "graph",
        description="graph (default): Louvain communities of the shared-nearest-neighbour graph; seed-free, and "
        "the same themes when embeddings differ in their last bits. umap-hdbscan: the BERTopic-style pipeline "
        "(seeded; changes with the CPU). See eval/RESULTS.md, 'Stability'.",
    )
    cluster_sample_above: int = Field(
        30_000,
        ge=100,
        le=10_000_000,
        description="A section with more passages than this is clustered on a deterministic sample of "
        "`cluster_sample_size`, and the rest placed by the outlier rule (nearest theme, if as close as its "
        "members): exact neighbour search grows with the square of the passages. See eval/RESULTS.md, 'Scale'.",
    )
    cluster_sample_size: int = Field(20_000, ge=100, le=10_000_000, description="See cluster_sample_above.")
    graph_neighbors: int = Field(
        15, ge=2, le=200, description="Neighbours per contribution in the graph (shared-neighbour weights)."
    )
    graph_min_shared: int = Field(
        5,
        ge=0,
        le=200,
        description="Within a community, two mutual neighbours stay linked only if they share at least this many "
        "neighbours (counting themselves): a few passages unlike the rest, reached through one or two stragglers, "
        "are then cut off instead of joining a theme. 5 brought planted-minority recall on ArgKP back to 0.75.",
    )
    resolution_base: float = Field(
        100.0,
        gt=0.0,
        le=1e7,
        description="Modularity resolution = max(1, (n / base) ** exponent): larger sections need a higher "
        "resolution for themes of the same size (modularity's resolution limit).",
    )
    resolution_exponent: float = Field(
        0.45, ge=0.0, le=1.0, description="The exponent in the resolution rule; chosen on ArgKP and Banking77."
    )
    reducer: Literal["umap", "spectral"] = Field(
        "umap", description="umap (default: best ARI) or spectral (seed-free, lower ARI; see eval/RESULTS.md)."
    )
    umap_epochs: int | None = Field(
        None, ge=10, le=2000, description="UMAP n_epochs; None = UMAP's own rule (200 or 500)."
    )
    umap_components: int = Field(5, ge=2, le=50, description="Dimensions UMAP reduces to before HDBSCAN.")
    umap_neighbors_max: int = Field(15, ge=2, le=200, description="UMAP n_neighbors, lowered for tiny corpora.")
    min_cluster_size: int | None = Field(
        None,
        ge=2,
        le=100_000,
        description="Smallest theme (HDBSCAN min_cluster_size; smaller graph communities stay unassigned); "
        "None = rule: max(3, round(factor * n_segments ** exponent)).",
    )
    min_cluster_size_factor: float = Field(
        1.0, gt=0.0, le=100.0, description="The factor in the min_cluster_size rule."
    )
    min_cluster_size_exponent: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="The exponent in the min_cluster_size rule: n^0.35 gives 5 for 100 segments, 16 for 3,000 and "
        "25 for 10,000 (themes grow slower than the corpus); chosen on argkp + Banking77 (eval/RESULTS.md).",
    )
    min_samples: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="HDBSCAN min_samples; None = max(2, int(min_samples_factor * min_cluster_size)).",
    )
    min_samples_factor: float = Field(
        1.0,
        gt=0.0,
        le=10.0,
        description="The factor in the min_samples rule; 1.0 raised seed stability on argkp 0.51 -> 0.69.",
    )
    cluster_selection: Literal["eom", "leaf"] = Field(
        "leaf", description="HDBSCAN cluster_selection_method: eom or leaf."
    )
    outlier_join_floor: float = Field(
        0.45,
        ge=-1.0,
        le=1.0,
        description="An HDBSCAN outlier joins its nearest theme only if its cosine to the centre is at least this",
    )
    outlier_join_quantile: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="... and at least this quantile of the theme's own members' cosines to the centre.",
    )
    min_subtheme_parent: int = Field(12, ge=2, le=100_000, description="Themes smaller than this get no sub-themes.")

    # label
    n_keywords: int = Field(8, ge=1, le=50, description="Keywords kept per theme (c-TF-IDF over lemmas).")
    n_representatives_max: int = Field(
        5, ge=1, le=20, description="Representative quotes per theme (3 for small themes)."
    )
    mmr_diversity: float = Field(
        0.3, ge=0.0, le=1.0, description="Weight of diversity against centrality when picking quotes."
    )

    # minority
    small_theme_share: float = Field(
        0.05, ge=0.0, le=1.0, description="A theme under this share of the section's contributions is small."
    )
    distinct_max_similarity: float = Field(
        0.45,
        ge=-1.0,
        le=1.0,
        description="A small theme is distinct if its centre's cosine to every large theme is below this.",
    )
    dissent_max_similarity: float = Field(
        0.5,
        ge=-1.0,
        le=1.0,
        description="A sub-theme whose centre's cosine to the rest of its theme is below this is dissent.",
    )
    lone_voice_max_similarity: float = Field(
        0.35,
        ge=-1.0,
        le=1.0,
        description="An unassigned segment whose cosine to every theme centre is below this is a lone voice.",
    )
    lone_group_similarity: float = Field(
        0.4, ge=-1.0, le=1.0, description="Lone voices at least this close (average link) form a small distinct group."
    )
    privacy_floor: int = Field(
        5,
        ge=1,
        le=1000,
        description="Breakdowns withhold any cell with fewer participants than this, so no table singles out a few.",
    )
    min_group_participants: int = Field(
        5, ge=1, le=100_000, description="Group over-representation is tested only for groups this big."
    )
    group_fdr: float = Field(
        0.05, gt=0.0, le=1.0, description="Benjamini-Hochberg false discovery rate for group over-representation."
    )
    vote_min_voters: int = Field(
        5, ge=1, le=1_000_000, description="Votes of an opinion group count only with at least this many voters."
    )
    vote_split_agree: float = Field(
        0.6, ge=0.0, le=1.0, description="An opinion group agrees when its agree share is at least this..."
    )
    vote_split_disagree: float = Field(
        0.6, ge=0.0, le=1.0, description="...and another disagrees with a disagree share at least this."
    )

    # deductive coding against a codebook (synth.pipeline.code); left out of the recorded config while unused
    code_assign: float | None = Field(
        None,
        exclude_if=lambda v: v is None,
        ge=-1.0,
        le=1.0,
        description="Code a passage from this score; default 0.35.",
    )
    code_none: float | None = Field(
        None,
        exclude_if=lambda v: v is None,
        ge=-1.0,
        le=1.0,
        description="Below this best score: fits none; default 0.15.",
    )
    code_margin: float | None = Field(
        None,
        exclude_if=lambda v: v is None,
        ge=0.0,
        le=1.0,
        description="Other codes this close to the best too; 0.05.",
    )

    # optional LLM drafting (synth.pipeline.draft); left out of the recorded config while unused
    draft: bool = Field(
        False,
        exclude_if=lambda v: not v,
        description="Draft titles, summaries, overviews and minority statements with an LLM over an "
        "OpenAI-compatible endpoint; every drafted sentence is checked against what it cites and dropped if not "
        "supported. Off by default.",
    )
    llm_base_url: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        description="The endpoint, e.g. http://127.0.0.1:11434/v1 (default: $SYNTH_LLM_BASE_URL). The API key "
        "comes only from $SYNTH_LLM_API_KEY and is never recorded.",
    )
    llm_model: str | None = Field(
        None, exclude_if=lambda v: v is None, max_length=200, description="Model name (default: $SYNTH_LLM_MODEL)."
    )
    llm_timeout_seconds: float | None = Field(
        None, exclude_if=lambda v: v is None, gt=0, le=3600, description="Per request; default 120."
    )
    llm_token_budget: int | None = Field(
        None, exclude_if=lambda v: v is None, ge=100, le=10**8, description="Tokens per run; default 200,000."
    )
    llm_evidence_segments: int | None = Field(
        None, exclude_if=lambda v: v is None, ge=2, le=100, description="Evidence segments per theme; default 12."
    )
    draft_min_support: float | None = Field(
        None,
        exclude_if=lambda v: v is None,
        ge=-1.0,
        le=1.0,
        description="Cosine a drafted text needs with what it cites, besides the entailment judge; default 0.5.",
    )

    # summarize / verify
    min_support: float = Field(
        0.3, ge=-1.0, le=1.0, description="A drafted sentence must have this cosine to what it cites."
    )

    def resolution_for(self, n: int) -> float:
        """Louvain resolution for n segments: 1 up to `resolution_base`, then growing slowly with n."""
        return max(1.0, (n / self.resolution_base) ** self.resolution_exponent)

    def cluster_size_for(self, n: int) -> int:
        """HDBSCAN min_cluster_size for n segments: grows with sqrt(n) so themes scale with the corpus."""
        if self.min_cluster_size is not None:
            return self.min_cluster_size
        return max(3, round(self.min_cluster_size_factor * n**self.min_cluster_size_exponent))

    def samples_for(self, cluster_size: int) -> int:
        """HDBSCAN min_samples: as large as the cluster size, which made themes steadier across seeds."""
        if self.min_samples is not None:
            return self.min_samples
        return max(2, int(self.min_samples_factor * cluster_size))
