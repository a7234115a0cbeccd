"""Theme quality against human labels (argkp key points, Banking77 intents), stability under seeds and
subsampling, and faithfulness of summaries; synth, BERTopic and a k-means oracle on the same embeddings.
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from sklearn.metrics import adjusted_rand_score

from eval.common import DATASETS, read_csv
from eval.harness import (
    NOISE,
    Corpus,
    bertopic_run,
    cache,
    embeddings,
    keypoint_match,
    kmeans_run,
    mean_pairwise_ari,
    scores,
    synth_run,
    theme_texts,
)
from synth.config import SynthConfig
from synth.pipeline.embed import embed_texts
from synth.schema import Synthesis

KP_THRESHOLD = 0.6  # cosine between a key point and a theme's label + representatives


def argkp_corpora(split: str) -> list[tuple[Corpus, list[str]]]:
    """One corpus per motion and stance; gold = the single matched key point (None for NONE / MULTI)."""
    rows = read_csv(DATASETS / "argkp" / f"argument_clusters_{split}.csv")
    kps = read_csv(DATASETS / "argkp" / f"key_points_{split}.csv")
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["topic"], r["stance"])].append(r)
    out = []
    for (topic, stance), rs in sorted(by.items()):
        gold = [r["cluster"] if r["cluster"] not in ("NONE", "MULTI") else None for r in rs]
        corpus = Corpus(f"{topic} ({stance})", [r["arg_id"] for r in rs], [r["argument"] for r in rs], gold)
        keypoints = [k["key_point"] for k in kps if k["topic"] == topic and k["stance"] == stance]
        out.append((corpus, keypoints))
    return out


def banking77() -> Corpus:
    rows = read_csv(DATASETS / "banking77" / "test.csv")
    return Corpus(
        "banking77-test", [f"b{i}" for i in range(len(rows))], [r["text"] for r in rows], [r["category"] for r in rows]
    )


def _mean(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


def evaluate_corpus(
    corpus: Corpus, keypoints: list[str] | None, with_bertopic: bool, config: SynthConfig | None = None
):
    """Scores of each method on one corpus, plus synth's Synthesis (for the faithfulness figures)."""
    vectors = embeddings(corpus)
    labels, synthesis = synth_run(corpus, config)
    result = {"synth": scores(corpus.gold, labels)}
    if keypoints is not None:
        result["synth"]["kp_recall"], result["synth"]["theme_precision"] = keypoint_match(
            keypoints, theme_texts(synthesis), KP_THRESHOLD
        )
        none_rows = [lab for lab, r in zip(labels, corpus.gold, strict=True) if r is None]
        result["synth"]["unlabelled_unassigned"] = (
            sum(lab == NOISE for lab in none_rows) / len(none_rows) if none_rows else 0.0
        )
    if with_bertopic:
        b_labels, b_texts = bertopic_run(corpus, vectors)
        result["bertopic"] = scores(corpus.gold, b_labels)
        if keypoints is not None:
            result["bertopic"]["kp_recall"], result["bertopic"]["theme_precision"] = keypoint_match(
                keypoints, b_texts, KP_THRESHOLD
            )
    k = len({g for g in corpus.gold if g is not None})
    result["kmeans (oracle k)"] = scores(corpus.gold, kmeans_run(vectors, k))
    return result, synthesis


def stability(corpus: Corpus, with_bertopic: bool, seeds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict[str, dict]:
    """Mean pairwise ARI between seeds, ARI between the full run and a 90% subsample on the shared part, and
    (synth's clusterers) the lowest ARI between clustering the embeddings and the embeddings + 1e-6 noise."""
    from synth.pipeline.cluster import cluster, unit

    rng = random.Random(0)
    keep = sorted(rng.sample(range(len(corpus.ids)), int(0.9 * len(corpus.ids))))
    sub = corpus.subset(keep)
    vectors = embeddings(corpus)
    out: dict[str, dict] = {}
    for name, clusterer in (("synth", "graph"), ("synth, umap-hdbscan", "umap-hdbscan")):
        config = SynthConfig(clusterer=clusterer)
        runs = [synth_run(corpus, config.model_copy(update={"seed": s}))[0] for s in seeds]
        full, part = runs[0], synth_run(sub, config.model_copy(update={"seed": seeds[0]}))[0]
        base = cluster(vectors, config).labels
        noise = np.random.default_rng(0)
        perturbed = [
            adjusted_rand_score(base, cluster(unit(vectors + noise.normal(0.0, 1e-6, vectors.shape)), config).labels)
            for _ in range(10)
        ]
        out[name] = {
            "seeds": mean_pairwise_ari(runs),
            "subsample": adjusted_rand_score([full[i] for i in keep], part),
            "noise": min(perturbed),
        }
    if with_bertopic:
        b_runs = [bertopic_run(corpus, vectors, s)[0] for s in seeds]
        b_part = bertopic_run(sub, vectors[keep], seeds[0])[0]
        out["bertopic"] = {
            "seeds": mean_pairwise_ari(b_runs),
            "subsample": adjusted_rand_score([b_runs[0][i] for i in keep], b_part),
        }
    return out


def faithfulness(syntheses: list[Synthesis]) -> dict[str, float]:
    """Citation coverage, exact spans, and support = cosine(sentence, mean of what it cites)."""
    sentences = cited = citations = exact = 0
    support: dict[str, list[float]] = defaultdict(list)
    for s in syntheses:
        texts = {c.id: c.text for c in s.contributions}
        batch = []
        for sec in s.sections:
            for summary in sec.summaries:
                for sentence in summary.sentences:
                    sentences += 1
                    cited += bool(sentence.citations)
                    for c in sentence.citations:
                        citations += 1
                        exact += texts[c.contribution_id][c.start : c.end] == c.quote
                    batch.append(sentence)
        vec = embed_texts([x.text for x in batch], cache())
        for sentence, v in zip(batch, vec, strict=True):
            quotes = embed_texts([c.quote for c in sentence.citations[:20]], cache())
            centre = quotes.mean(axis=0)
            support[sentence.kind].append(float(v @ centre / (np.linalg.norm(centre) or 1)))
    out = {
        "sentences": sentences,
        "cited_share": cited / sentences,
        "citations": citations,
        "exact_share": exact / citations,
    }
    for kind, vals in sorted(support.items()):
        out[f"support_{kind}_p10"] = float(np.percentile(vals, 10))
        out[f"support_{kind}_median"] = float(np.median(vals))
    return out
