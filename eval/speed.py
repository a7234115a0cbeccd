"""Wall time and peak memory of synth and BERTopic end to end on the same inputs, each in a new process
with nothing cached (both embed with the same packaged model)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval.common import DATASETS, ROOT, read_csv

DATASETS_FOR_SPEED = ("banking77-test", "argkp-all")


def texts(name: str) -> list[str]:
    if name == "banking77-test":
        return [r["text"] for r in read_csv(DATASETS / "banking77" / "test.csv")]
    return [r["argument"] for s in ("train", "dev") for r in read_csv(DATASETS / "argkp" / f"arguments_{s}.csv")]


def child(method: str, name: str, cache: str) -> None:
    start = time.perf_counter()
    docs = texts(name)
    if method == "synth":
        from synth.formats import LoadedInput
        from synth.pipeline import run
        from synth.schema import Contribution

        loaded = LoadedInput([Contribution(id=str(i), text=t) for i, t in enumerate(docs)], [], name, name)
        run(loaded, cache_dir=Path(cache))
    else:
        from bertopic import BERTopic
        from sentence_transformers import SentenceTransformer
        from umap import UMAP

        from synth.models import model_dir

        encoder = SentenceTransformer(str(model_dir("embedding")), device="cpu")
        umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42)
        BERTopic(embedding_model=encoder, umap_model=umap_model).fit_transform(docs)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": round(wall, 1), "peak_mb": round(peak), "n": len(docs)}))


def measure(method: str, name: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run(
            [sys.executable, "-m", "eval.speed", method, name, cache],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3])
