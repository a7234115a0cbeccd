"""The measuring instrument: run synth, BERTopic and k-means on the same texts and the same embeddings,
and score them against human labels. Used by eval/quality.py, eval/minority.py and the harness test.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

from synth.config import SynthConfig, default_cache_dir
from synth.formats import LoadedInput
from synth.pipeline import run
from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from synth.schema import Contribution, Synthesis

NOISE = "-1"


@dataclass
class Corpus:
    """Texts with ids, optional gold labels (None = not scored), optional group."""

    name: str
    ids: list[str]
    texts: list[str]
    gold: list[str | None]
    groups: list[str | None] | None = None

    def loaded(self) -> LoadedInput:
        groups = self.groups or [None] * len(self.ids)
        contributions = [
            Contribution(id=i, text=t, group=g) for i, t, g in zip(self.ids, self.texts, groups, strict=True)
        ]
        return LoadedInput(contributions, [], self.name, self.name)

    def subset(self, keep: list[int]) -> Corpus:
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        return Corpus(
            self.name, pick(self.ids), pick(self.texts), pick(self.gold), pick(self.groups) if self.groups else None
        )


def cache() -> Path:
    return default_cache_dir()


def embeddings(corpus: Corpus) -> np.ndarray:
    """Whole-contribution vectors from synth's own model and cache: what BERTopic and k-means are fed."""
    return embed_texts([normalise(t) for t in corpus.texts], cache())


def synth_run(corpus: Corpus, config: SynthConfig | None = None) -> tuple[list[str], Synthesis]:
    """synth's theme per contribution (the majority theme of its segments; NOISE if none is themed)."""
    s = run(corpus.loaded(), config or SynthConfig(), cache_dir=cache()).synthesis
    return labels_of(s, corpus.ids), s


def labels_of(s: Synthesis, ids: list[str]) -> list[str]:
    """Per contribution id: the top-level theme holding most of its passages (ties to the smaller id), NOISE
    when none is themed, 'excluded' when it has no passage."""
    theme_of = {x: t.id for sec in s.sections for t in sec.themes if t.parent_id is None for x in t.segment_ids}
    votes: dict[str, Counter] = {}
    for seg in s.segments:
        votes.setdefault(seg.contribution_id, Counter())[theme_of.get(seg.id, NOISE)] += 1
    labels = []
    for cid in ids:
        v = votes.get(cid)
        if not v:
            labels.append("excluded")
            continue
        themed = Counter({k: n for k, n in v.items() if k != NOISE})
        labels.append(min(themed, key=lambda k: (-themed[k], k)) if themed else NOISE)
    return labels


def bertopic_run(corpus: Corpus, vectors: np.ndarray, seed: int = 42) -> tuple[list[str], list[str]]:
    """BERTopic with its documented defaults (UMAP 15 neighbours / 5 components / min_dist 0, HDBSCAN
    min_cluster_size 10, c-TF-IDF), seeded UMAP so runs repeat, fed synth's embeddings.
    Returns labels and, per topic id, a text (top words + representative docs) for key-point matching."""
    from bertopic import BERTopic
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(umap_model=umap_model, calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform(corpus.texts, embeddings=vectors)
    texts = {}
    for topic in sorted(set(topics) - {-1}):
        words = " ".join(w for w, _ in (model.get_topic(topic) or [])[:4])
        reps = model.get_representative_docs(topic) or []
        texts[str(topic)] = " ".join([words, *reps[:3]])
    return [str(t) for t in topics], texts


def kmeans_run(vectors: np.ndarray, k: int, seed: int = 42) -> list[str]:
    """Oracle reference: k-means told the true number of clusters."""
    return [str(x) for x in KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)]


def scores(gold: list[str | None], pred: list[str]) -> dict[str, float]:
    """ARI / NMI / V-measure over the rows with a gold label; unassigned rows count as one more cluster."""
    pairs = [(g, p) for g, p in zip(gold, pred, strict=True) if g is not None]
    y, p = [g for g, _ in pairs], [q for _, q in pairs]
    return {
        "ari": adjusted_rand_score(y, p),
        "nmi": normalized_mutual_info_score(y, p),
        "v": v_measure_score(y, p),
        "unassigned": sum(q == NOISE for q in pred) / len(pred),
        "themes": len(set(pred) - {NOISE, "excluded"}),
        "gold_clusters": len(set(y)),
    }


def theme_texts(s: Synthesis) -> dict[str, str]:
    """Per top-level theme: its label and representatives, the text matched against key points."""
    return {
        t.id: " ".join([t.label.replace(" · ", " "), *(r.quote for r in t.representatives)])
        for sec in s.sections
        for t in sec.themes
        if t.parent_id is None
    }


def keypoint_match(keypoints: list[str], themes: dict[str, str], threshold: float) -> tuple[float, float]:
    """Key-point recall (share of key points some theme matches) and theme precision (share of themes
    matching some key point); a match is a cosine of at least `threshold` between the two texts."""
    if not keypoints or not themes:
        return 0.0, 0.0
    kp = embed_texts(keypoints, cache())
    th = embed_texts(list(themes.values()), cache())
    sims = kp @ th.T
    return float((sims.max(axis=1) >= threshold).mean()), float((sims.max(axis=0) >= threshold).mean())


def mean_pairwise_ari(runs: list[list[str]]) -> float:
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]]
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs])) if pairs else math.nan
