"""Cluster: UMAP to a few dimensions, HDBSCAN into themes, HDBSCAN again inside each theme for sub-themes.

Outliers are not thrown away: one close enough to a theme's centre (by the theme's own spread)
joins it and is recorded as joined; the rest stay unassigned for the minority-view stage.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from synth.config import SynthConfig


@dataclass
class Clustering:
    """Per segment: top-level theme index (-1 = unassigned), whether it joined as an outlier, sub-theme."""

    labels: np.ndarray
    joined: np.ndarray
    sub_labels: np.ndarray
    coords: np.ndarray
    params: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def n_themes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm == 0, 1, norm)


def centroids(vectors: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Unit-length mean vector of each label 0..k-1."""
    return unit(np.vstack([vectors[labels == i].mean(axis=0) for i in range(k)])) if k else np.zeros((0, 1))


def _import_umap():  # noqa: ANN202 - the umap module
    """Import UMAP with numba's on-disk cache on for its kernels.

    UMAP compiles its kernels on first use in every process (about 8 s here) because they are not declared
    cacheable; turning numba's cache on while UMAP defines them makes later processes load the compiled code.
    """
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    import numba

    original = numba.njit

    def njit_cached(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        kwargs.setdefault("cache", True)
        return original(*args, **kwargs)

    numba.njit = njit_cached
    try:
        import umap
    finally:
        numba.njit = original
    return umap


def reduce(vectors: np.ndarray, config: SynthConfig) -> np.ndarray:
    """UMAP to `umap_components` dimensions; deterministic under the seed (single-threaded)."""
    n = len(vectors)
    if n <= config.umap_components + 2:
        return vectors.astype(np.float64)
    k = max(2, min(config.umap_neighbors_max, n - 1))
    if config.reducer == "spectral":
        from sklearn.manifold import SpectralEmbedding

        spectral = SpectralEmbedding(
            config.umap_components, affinity="nearest_neighbors", n_neighbors=k, random_state=0
        )
        return np.asarray(spectral.fit_transform(vectors), dtype=np.float64)
    umap = _import_umap()
    from sklearn.neighbors import NearestNeighbors

    # Exact neighbours, faster than UMAP's NN-descent and with no JIT compile. On unit vectors the euclidean
    # order is the cosine order, and sklearn's euclidean path is 4x faster; cosine distance = d^2 / 2.
    dists, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(vectors).kneighbors(vectors)
    dists = dists**2 / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": wanted, for determinism
        reducer = umap.UMAP(
            n_neighbors=k,
            n_components=config.umap_components,
            min_dist=0.0,
            metric="cosine",
            random_state=config.seed,
            init="spectral" if n > 50 else "random",
            n_epochs=config.umap_epochs,
            precomputed_knn=(idx, dists, None),
        )
        return np.asarray(reducer.fit_transform(vectors), dtype=np.float64)


def _hdbscan(coords: np.ndarray, size: int, samples: int, method: str) -> np.ndarray:
    import hdbscan

    if len(coords) < 2 * size:
        return np.full(len(coords), -1)
    model = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=min(samples, size), cluster_selection_method=method).fit(
        coords
    )
    return model.labels_


def canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by size (largest first), ties by first member: ids do not depend on HDBSCAN's order."""
    found = [c for c in np.unique(labels) if c >= 0]
    order = sorted(found, key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    out = np.full_like(labels, -1)
    for new, old in enumerate(order):
        out[labels == old] = new
    return out


def join_outliers(vectors: np.ndarray, labels: np.ndarray, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Give an outlier to its nearest theme if it is as close as that theme's own members mostly are."""
    k = int(labels.max()) + 1 if len(labels) else 0
    joined = np.zeros(len(labels), dtype=bool)
    if k == 0:
        return labels, joined
    cents = centroids(vectors, labels, k)
    member_sims = (vectors * cents[np.maximum(labels, 0)]).sum(axis=1)
    bars = np.array(
        [
            max(config.outlier_join_floor, float(np.quantile(member_sims[labels == i], config.outlier_join_quantile)))
            for i in range(k)
        ]
    )
    out = labels.copy()
    for i in np.flatnonzero(labels < 0):
        sims = cents @ vectors[i]
        best = int(np.argmax(sims))
        if sims[best] >= bars[best]:
            out[i] = best
            joined[i] = True
    return out, joined


def cluster(vectors: np.ndarray, config: SynthConfig) -> Clustering:
    """Themes and sub-themes for one section's segment vectors.

    BLAS and OpenMP run single-threaded here: a threaded sum can round differently from run to run, and a
    flipped neighbour changes UMAP's layout. It costs nothing measurable (kNN on 11k: 2.4 s either way).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _cluster(vectors, config)


def _cluster(vectors: np.ndarray, config: SynthConfig) -> Clustering:
    n = len(vectors)
    size = config.cluster_size_for(n)
    samples = config.samples_for(size)
    coords = reduce(vectors, config)
    labels = canonical(_hdbscan(coords, size, samples, config.cluster_selection))
    labels, joined = join_outliers(vectors, labels, config)
    sub_labels = np.full(n, -1)
    for theme in range(int(labels.max()) + 1 if n else 0):
        idx = np.flatnonzero(labels == theme)
        if len(idx) < config.min_subtheme_parent:
            continue
        sub_size = config.cluster_size_for(len(idx))
        sub = canonical(_hdbscan(coords[idx], sub_size, config.samples_for(sub_size), "leaf"))
        if sub.max() >= 1:  # a single sub-theme says nothing the theme does not
            sub_labels[idx] = sub
    params = {
        "n_segments": n,
        "min_cluster_size": size,
        "min_samples": samples,
        "umap_neighbors": max(2, min(config.umap_neighbors_max, n - 1)) if n else 0,
    }
    return Clustering(labels, joined, sub_labels, coords, params)
