"""Both registered clusterers through the one interface (synth.pipeline.stages) on well-separated groups of real
sentences: each finds the groups and records the parameters it actually used."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from synth.config import SynthConfig
from synth.pipeline.cluster import cluster
from synth.pipeline.embed import embed_texts
from synth.pipeline.stages import CLUSTERERS, stage_names

TOPICS = {
    "buses": "The {} bus route should run more often in the evening.",
    "parks": "The {} park needs more benches and cleaner paths.",
    "rents": "Rents in the {} district are too high for young families.",
}
PLACES = ["north", "south", "east", "west", "old", "new", "river", "hill", "market", "station", "harbour", "castle"]


@pytest.mark.parametrize("name", sorted(CLUSTERERS))
def test_each_clusterer_finds_separate_topics(name: str, tmp_path) -> None:  # noqa: ANN001
    texts = [template.format(p) for template in TOPICS.values() for p in PLACES]
    truth = np.repeat(np.arange(len(TOPICS)), len(PLACES))
    vectors = embed_texts(texts, tmp_path)
    found = cluster(vectors, SynthConfig(clusterer=name))
    assigned = found.labels >= 0
    assert assigned.mean() >= 0.9
    assert adjusted_rand_score(truth[assigned], found.labels[assigned]) >= 0.9
    assert found.params["clusterer"] == name and found.params["n_segments"] == len(texts)
    assert {"graph": "resolution", "umap-hdbscan": "umap_neighbors"}[name] in found.params
    assert stage_names(SynthConfig(clusterer=name))["clusterer"] == name
