"""What a Synthesis records about how it was made, and its coverage figures."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from synth.config import SynthConfig
from synth.formats import LoadedInput
from synth.models import info
from synth.pipeline.stages import stage_names
from synth.schema import Coverage, RunMetadata, Section, Segment, Synthesis

LIBRARIES = (
    "sentence-transformers",
    "torch",
    "transformers",
    "spacy",
    "umap-learn",
    "hdbscan",
    "scikit-network",
    "scikit-learn",
    "numpy",
)


def metadata(loaded: LoadedInput, config: SynthConfig, cache_dir: Path | None = None) -> RunMetadata:
    """What made the result: input hash, settings, models (with the encoder's runtime and file hash)."""
    from synth.pipeline.encoder import describe

    return RunMetadata(
        synth_version=importlib.metadata.version("synth"),
        input_sha256=loaded.sha256,
        config=config.model_dump(mode="json"),
        embedding_model=info("embedding").model_copy(update={"runtime": describe(config.encoder, cache_dir)}),
        nlp_model=info("nlp"),
        seed=config.seed,
        libraries={name: importlib.metadata.version(name) for name in LIBRARIES},
        stages=stage_names(config),
    )


def coverage(contributions: list, segments: list[Segment], excluded: list, sections: list[Section]) -> Coverage:
    """Coverage figures from the parts of a Synthesis: what is themed, unassigned and excluded."""
    themed_segments = {x for sec in sections for t in sec.themes if t.parent_id is None for x in t.segment_ids}
    themed = {x.contribution_id for x in segments if x.id in themed_segments}
    analysed = {x.contribution_id for x in segments}
    return Coverage(
        n_input=len(contributions),
        n_themed=len(themed),
        n_unassigned=len(analysed - themed),
        n_excluded=len(excluded),
        n_segments=len(segments),
        n_segments_themed=len(themed_segments),
    )


def coverage_of(s: Synthesis) -> Coverage:
    """The coverage figures recomputed from a Synthesis (after a review edit moved members)."""
    return coverage(s.contributions, s.segments, s.excluded, s.sections)
