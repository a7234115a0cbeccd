"""Embed: segment texts to unit vectors with the packaged all-MiniLM-L6-v2, cached on disk.

The cache is keyed by the weights' sha256 (with the runtime, synth.pipeline.encoder) and the text's sha256, so
a re-run, or a run that shares texts with an earlier one, does not embed them again; a different model or
runtime never reads another's vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from synth.cache import Cache, text_key
from synth.pipeline.distributed import ray_address
from synth.pipeline.encoder import cache_key, encoder

Progress = Callable[[str, int, int], None]
DIM = 384


def embed_texts(
    texts: list[str],
    cache_dir: Path | None,
    batch_size: int = 16,
    progress: Progress | None = None,
    runtime: str = "onnx",
) -> np.ndarray:
    """Unit-length float32 vectors for texts, in order. Each distinct text is embedded once, ever."""
    store = Cache(cache_dir, cache_key(runtime), "embeddings")
    keys = [text_key(t) for t in texts]
    known = {k: np.frombuffer(v, dtype=np.float32) for k, v in store.get(sorted(set(keys))).items()}
    # Sorted by length (then text): batches hold texts of like length, so little padding, and depend only
    # on the set of new texts, not on their order.
    todo = sorted({t for t, k in zip(texts, keys, strict=True) if k not in known}, key=lambda t: (len(t), t))
    address = ray_address()
    if todo and address:
        from synth.pipeline.distributed import embed_on_ray

        fresh = {text_key(t): v for t, v in zip(todo, embed_on_ray(todo, batch_size, runtime, address), strict=True)}
        store.put({k: v.tobytes() for k, v in fresh.items()})
        known.update(fresh)
        if progress:
            progress("embed", len(todo), len(todo))
    elif todo:
        encode = encoder(runtime, cache_dir)
        step = max(batch_size * 4, 256)
        for lo in range(0, len(todo), step):
            chunk = todo[lo : lo + step]
            vecs = encode(chunk, batch_size)
            fresh = {text_key(t): v.astype(np.float32) for t, v in zip(chunk, vecs, strict=True)}
            store.put({k: v.tobytes() for k, v in fresh.items()})
            known.update(fresh)
            if progress:
                progress("embed", min(lo + step, len(todo)), len(todo))
    elif progress:
        progress("embed", len(texts), len(texts))
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.vstack([known[k] for k in keys]).astype(np.float32)
