"""The stages whose algorithm is a choice, behind small interfaces (as BERTopic's sub-models are): a
clusterer, a reducer (used by the UMAP + HDBSCAN clusterer only), a labeller and a drafter. Each is chosen by
name in SynthConfig; the names in use are recorded in `metadata.stages`, and each section records the
parameters its clustering actually used (`sections[].parameters`: e.g. the resolution and the smallest theme
for its size), so a result says how it was made, not only how it was configured.

To add a clusterer: write a class with the Clusterer methods and register it in CLUSTERERS (and in the
`clusterer` setting's choices); the rest of the pipeline (outliers joining, sub-themes, labels, minority
views) is shared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from synth.config import SynthConfig


class Clusterer(Protocol):
    """Finds themes in one section: `fit` sees every passage's unit vector once (a clusterer that lays out
    the whole section, as UMAP does, does it there); `themes` labels a subset (all passages for themes, one
    theme's members for its sub-themes): -1 for none, no group under `smallest`, numbered by size."""

    coords: np.ndarray

    def fit(self, vectors: np.ndarray, config: SynthConfig, cache_dir: Path | None = None) -> None: ...

    def themes(self, idx: np.ndarray, smallest: int, top: bool) -> np.ndarray: ...

    def parameters(self, n: int) -> dict[str, float | int | str]: ...


class GraphClusterer:
    """Louvain communities of the shared-nearest-neighbour graph, cut to mutual-neighbour groups (the default:
    deterministic, no random numbers)."""

    def fit(self, vectors: np.ndarray, config: SynthConfig, cache_dir: Path | None = None) -> None:
        self.vectors = self.coords = vectors
        self.config, self.cache_dir = config, cache_dir

    def themes(self, idx: np.ndarray, smallest: int, top: bool) -> np.ndarray:
        from synth.pipeline.cluster import communities

        return communities(self.vectors[idx], self.config, smallest, self.cache_dir if top else None)

    def parameters(self, n: int) -> dict[str, float | int | str]:
        return {"graph_neighbors": self.config.graph_neighbors, "resolution": round(self.config.resolution_for(n), 4)}


class UmapHdbscanClusterer:
    """UMAP to a few dimensions (seeded), then HDBSCAN: BERTopic's recipe, kept for comparison."""

    def fit(self, vectors: np.ndarray, config: SynthConfig, cache_dir: Path | None = None) -> None:
        from synth.pipeline.cluster import reduce

        self.coords = reduce(vectors, config)
        self.config = config

    def themes(self, idx: np.ndarray, smallest: int, top: bool) -> np.ndarray:
        from synth.pipeline.cluster import _hdbscan, canonical

        method = self.config.cluster_selection if top else "leaf"
        return canonical(_hdbscan(self.coords[idx], smallest, self.config.samples_for(smallest), method))

    def parameters(self, n: int) -> dict[str, float | int | str]:
        size = self.config.cluster_size_for(n)
        neighbours = max(2, min(self.config.umap_neighbors_max, n - 1)) if n else 0
        return {"min_samples": self.config.samples_for(size), "umap_neighbors": neighbours}


CLUSTERERS: dict[str, type] = {"graph": GraphClusterer, "umap-hdbscan": UmapHdbscanClusterer}
LABELLER = "c-tf-idf keywords; key-point titles (a member's own clause)"
REDUCERS = {"graph": "none (cosine kNN on the full vectors)", "umap-hdbscan": "UMAP (cosine)"}


def stage_names(config: SynthConfig) -> dict[str, str]:
    """What made a result, stage by stage, for its metadata."""
    drafter = "extractive (no language model)"
    if config.draft:
        drafter = f"language model {config.llm_model or '(from SYNTH_LLM_MODEL)'}, extractive where checks fail"
    return {
        "clusterer": config.clusterer,
        "reducer": REDUCERS[config.clusterer],
        "labeller": LABELLER,
        "drafter": drafter,
    }
