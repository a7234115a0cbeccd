"""Cluster: themes are communities of the shared-nearest-neighbour graph, sub-themes the communities inside
each theme's own graph.

Why a graph and not UMAP + HDBSCAN (kept as `clusterer="umap-hdbscan"`): UMAP's layout depends on its seed
and on the last bits of every float, so themes changed between seeds (ARI 0.6-0.7 on ArgKP) and between
CPUs. The graph's weights are counts of shared neighbours, which change only when who is a neighbour
changes, and Louvain without shuffling is deterministic, so the themes depend on the data alone
(eval/RESULTS.md, "Stability").

Communities smaller than the smallest theme stay unassigned. Outliers are not thrown away: one close
enough to a theme's centre (by the theme's own spread) joins it and is recorded as joined; the rest stay
unassigned for the minority-view stage.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

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


def neighbours(vectors: np.ndarray, k: int, cache_dir: Path | None = None) -> sparse.csr_matrix:
    """0/1 matrix: row i marks i itself and its k nearest neighbours by cosine. With a cache folder, the
    neighbours of a large section are kept under the hash of its vectors: a re-run (the same vectors) skips
    the exact search, which is most of the cluster stage (10k passages: 1.5 s of 2.4)."""
    n = len(vectors)
    k = max(1, min(k, n - 1))
    store, key = None, ""
    if cache_dir is not None and n >= 2000:
        from synth.cache import Cache

        store = Cache(cache_dir, "knn-brute-v1", "neighbours")
        key = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes() + str(k).encode()).hexdigest()
        found = store.get([key]).get(key)
        if found is not None:
            idx = np.frombuffer(found, dtype=np.int32).reshape(n, k + 1)
            return sparse.csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), k + 1), idx.ravel())), shape=(n, n))
    from sklearn.neighbors import NearestNeighbors

    # on unit vectors the euclidean order is the cosine order, and sklearn's euclidean brute force is fastest
    idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(vectors).kneighbors(return_distance=False)
    idx = np.hstack([np.arange(n)[:, None], idx])  # kneighbors() without X leaves each point out
    if store is not None:
        store.put({key: idx.astype(np.int32).tobytes()})
    return sparse.csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), k + 1), idx.ravel())), shape=(n, n))


def shared_neighbour_graph(member: sparse.csr_matrix) -> sparse.csr_matrix:
    """i and j are linked when one is among the other's nearest, weighted by the Jaccard overlap of their
    neighbourhoods. Counts, not cosines: a weight moves only if a change in the floats changes who is a
    neighbour."""
    size = member[0].sum()
    linked = member.maximum(member.T)
    linked.setdiag(0)
    linked.eliminate_zeros()
    shared = (member @ member.T).multiply(linked > 0).tocoo()
    return sparse.csr_matrix((shared.data / (2 * size - shared.data), (shared.row, shared.col)), shape=member.shape)


def communities(vectors: np.ndarray, config: SynthConfig, smallest: int, cache_dir: Path | None = None) -> np.ndarray:
    """Louvain communities of the shared-neighbour graph, each cut to its groups of mutual neighbours that
    share at least `graph_min_shared` neighbours, numbered by size; groups under `smallest` are -1.

    The cut is what HDBSCAN's noise did: modularity merges a small group into a large community (its
    resolution limit), so a handful of contributions unlike the rest, which are each other's neighbours but
    nobody else's, would vanish into a theme instead of reaching the minority-view stage."""
    from scipy.sparse.csgraph import connected_components
    from sknetwork.clustering import Louvain

    n = len(vectors)
    if n < 2 * smallest:
        return np.full(n, -1)
    member = neighbours(vectors, config.graph_neighbors, cache_dir)
    louvain = Louvain(
        resolution=config.resolution_for(n), shuffle_nodes=False, return_probs=False, return_aggregate=False
    )
    found = np.asarray(louvain.fit_predict(shared_neighbour_graph(member)))
    shared = (member @ member.T).tocsr()
    shared.data = (shared.data >= config.graph_min_shared).astype(float)
    shared.eliminate_zeros()
    mutual = member.multiply(member.T).multiply(shared).tocoo()
    same = found[mutual.row] == found[mutual.col]
    inside = sparse.csr_matrix((np.ones(int(same.sum())), (mutual.row[same], mutual.col[same])), shape=(n, n))
    _, labels = connected_components(inside, directed=False)
    sizes = np.bincount(labels)
    return canonical(np.where(sizes[labels] >= smallest, labels, -1))


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


def join_bars(vectors: np.ndarray, labels: np.ndarray, k: int, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Each theme's centre, and how close a passage must be to join it: as close as the theme's own members
    mostly are (the `outlier_join_quantile` of their similarity), and never below `outlier_join_floor`."""
    cents = centroids(vectors, labels, k)
    member_sims = (vectors * cents[np.maximum(labels, 0)]).sum(axis=1)
    bars = np.array(
        [
            max(config.outlier_join_floor, float(np.quantile(member_sims[labels == i], config.outlier_join_quantile)))
            for i in range(k)
        ]
    )
    return cents, bars


def join_outliers(
    vectors: np.ndarray, labels: np.ndarray, config: SynthConfig, candidates: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Give an outlier to its nearest theme if it is as close as that theme's own members mostly are.
    `candidates` (a mask) limits who may join: an incremental run offers only the new passages."""
    k = int(labels.max()) + 1 if len(labels) else 0
    joined = np.zeros(len(labels), dtype=bool)
    if k == 0:
        return labels, joined
    cents, bars = join_bars(vectors, labels, k, config)
    out = labels.copy()
    for i in np.flatnonzero((labels < 0) & (True if candidates is None else candidates)):
        sims = cents @ vectors[i]
        best = int(np.argmax(sims))
        if sims[best] >= bars[best]:
            out[i] = best
            joined[i] = True
    return out, joined


def cluster(vectors: np.ndarray, config: SynthConfig, cache_dir: Path | None = None) -> Clustering:
    """Themes and sub-themes for one section's segment vectors.

    BLAS and OpenMP run single-threaded here: a threaded sum can round differently from run to run, and a
    flipped neighbour changes UMAP's layout. It costs nothing measurable (kNN on 11k: 2.4 s either way).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _cluster(vectors, config, cache_dir)


def sample_rows(vectors: np.ndarray, m: int) -> np.ndarray:
    """A deterministic sample of m rows, in row order: those whose bytes hash lowest. The same passages are
    drawn whatever order the input came in, and a re-run draws the same ones."""
    digests = [hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in np.ascontiguousarray(vectors)]
    order = sorted(range(len(digests)), key=digests.__getitem__)
    return np.sort(np.array(order[:m], dtype=np.int64))


def assign_rest(
    vectors: np.ndarray, labels: np.ndarray, sub_labels: np.ndarray, rest: np.ndarray, config: SynthConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place the passages left out of the sample by the rule outliers follow: the nearest theme, if the passage
    is as close to its centre as the theme's sampled members mostly are (else unassigned); inside a theme with
    sub-themes, the nearest sub-theme. Vectorised in chunks: 100k passages take about a second."""
    labels, sub_labels = labels.copy(), sub_labels.copy()
    joined = np.zeros(len(labels), dtype=bool)
    k = int(labels.max()) + 1 if len(labels) else 0
    if k == 0:
        return labels, sub_labels, joined
    cents, bars = join_bars(vectors, labels, k, config)
    subs = {}
    for theme in range(k):
        mask = (labels == theme) & (sub_labels >= 0)
        if mask.any():
            s = int(sub_labels[mask].max()) + 1
            subs[theme] = centroids(vectors[mask], sub_labels[mask], s)
    todo = np.flatnonzero(rest)
    for lo in range(0, len(todo), 8192):
        idx = todo[lo : lo + 8192]
        sims = vectors[idx] @ cents.T
        best = sims.argmax(axis=1)
        ok = sims[np.arange(len(idx)), best] >= bars[best]
        labels[idx[ok]] = best[ok]
        joined[idx[ok]] = True
        for i, theme in zip(idx[ok], best[ok], strict=True):
            if theme in subs:
                sub_labels[i] = int(np.argmax(subs[theme] @ vectors[i]))
    return labels, sub_labels, joined


def _cluster(vectors: np.ndarray, config: SynthConfig, cache_dir: Path | None = None) -> Clustering:
    from synth.pipeline.stages import CLUSTERERS

    n = len(vectors)
    if n > config.cluster_sample_above:
        # A section too large to cluster whole: themes from a deterministic sample, the rest placed after
        sample = sample_rows(vectors, config.cluster_sample_size)
        inner = _cluster(vectors[sample], config, cache_dir)
        labels, sub_labels = np.full(n, -1), np.full(n, -1)
        labels[sample], sub_labels[sample] = inner.labels, inner.sub_labels
        rest = np.ones(n, dtype=bool)
        rest[sample] = False
        labels, sub_labels, joined = assign_rest(vectors, labels, sub_labels, rest, config)
        joined[sample] = inner.joined
        params = inner.params | {"n_segments": n, "clustered_sample": len(sample)}
        return Clustering(labels, joined, sub_labels, vectors, params)
    size = config.cluster_size_for(n)
    clusterer = CLUSTERERS[config.clusterer]()
    clusterer.fit(vectors, config, cache_dir)
    labels = clusterer.themes(np.arange(n), size, top=True) if n else np.full(0, -1)
    labels, joined = join_outliers(vectors, labels, config)
    sub_labels = np.full(n, -1)
    for theme in range(int(labels.max()) + 1 if n else 0):
        idx = np.flatnonzero(labels == theme)
        if len(idx) < config.min_subtheme_parent:
            continue
        sub = clusterer.themes(idx, config.cluster_size_for(len(idx)), top=False)
        if sub.max() >= 1:  # a single sub-theme says nothing the theme does not
            sub_labels[idx] = sub
    params: dict[str, float | int | str] = {"clusterer": config.clusterer, "n_segments": n, "min_cluster_size": size}
    return Clustering(labels, joined, sub_labels, clusterer.coords, params | clusterer.parameters(n))
