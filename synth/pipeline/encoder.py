"""The sentence encoder's runtime: the packaged all-MiniLM-L6-v2 run by ONNX Runtime (default) or PyTorch.

Why ONNX: on this project's 2-core machine it encodes 1.6x as fast as PyTorch with the same weights and the same
vectors (cosine 1.0000 on 4,000 benchmark texts, and a text's vector does not depend on its batch); a warm run
that finds its vectors cached never imports PyTorch at all. The ONNX file is exported from the packaged weights
on first use (about 1 s, with PyTorch), kept in the cache folder under the weights' hash, the PyTorch version
and the recipe, and its own sha256 is recorded in every result. Nothing is downloaded.

`onnx-int8` (dynamic int8 quantisation, per-channel weights) is 3.3x as fast as PyTorch but not the default:
its activations are quantised per batch, so a text's vector depends on the other texts in its batch (cosine
0.986 at worst between a text alone and in a batch of 64) and drifts from fp32 (mean cosine 0.993).
`torch` is the sentence-transformers path the project used before; same vectors as `onnx`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np

from synth.models import model_dir, weights_sha256

RECIPE = "opset17-v1"  # bump when the export changes
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
Encode = Callable[[list[str], int], np.ndarray]


def _threads() -> int:
    """ONNX Runtime's threads: SYNTH_ENCODER_THREADS (a Ray actor uses 1), else the cores, at most 4."""
    if os.environ.get("SYNTH_ENCODER_THREADS"):
        return max(1, int(os.environ["SYNTH_ENCODER_THREADS"]))
    return max(1, min(4, os.cpu_count() or 1))


def _folder(cache_dir: Path | None) -> Path:
    folder = (cache_dir or Path(tempfile.gettempdir()) / "synth-encoders") / "encoders"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def onnx_file(runtime: str, cache_dir: Path | None) -> Path:
    """The ONNX file for `runtime` ("onnx" or "onnx-int8"), exported (and quantised) on first use."""
    import importlib.metadata

    torch_version = importlib.metadata.version("torch").split("+")[0]  # not imported: a warm run never needs it
    stem = f"all-MiniLM-L6-v2-{weights_sha256('embedding')[:16]}-torch{torch_version}-{RECIPE}"
    fp32 = _folder(cache_dir) / f"{stem}.onnx"
    if not fp32.exists():
        _export(fp32)
    if runtime == "onnx":
        return fp32
    int8 = fp32.with_name(f"{stem}-int8pc.onnx")
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = int8.with_suffix(f".{os.getpid()}.tmp")
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
        os.replace(tmp, int8)
    return int8


def _export(path: Path) -> None:
    """torch.onnx.export of the packaged BERT (token embeddings out; pooling is done here, in numpy)."""
    import warnings

    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_dir("embedding"))).eval()

    class Tokens(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 8, dtype=torch.long)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # written whole, then renamed: another process never reads half
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's Python-side checks: nothing to act on
        torch.onnx.export(
            Tokens().eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(tmp),
            input_names=names,
            output_names=["tokens"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "tokens"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The file's sha256, remembered beside it (hashing 90 MB on every run would cost 0.2 s)."""
    side = path.with_name(path.name + ".sha256")
    stamp = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
    if side.exists():
        known_stamp, _, digest = side.read_text().partition(" ")
        if known_stamp == stamp:
            return digest.strip()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    side.write_text(f"{stamp} {digest}\n")
    return digest


class OnnxEncoder:
    """Tokenise with the model's own tokenizer.json, run the ONNX graph, mean-pool over real tokens, normalise:
    what sentence-transformers does for this model, without PyTorch."""

    def __init__(self, path: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_dir("embedding") / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        self.path = path

    def __call__(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = []
        for lo in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(texts[lo : lo + batch_size])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            tokens = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
            weight = mask[..., None].astype(np.float32)
            pooled = (tokens * weight).sum(axis=1) / np.clip(weight.sum(axis=1), 1e-9, None)
            out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, 384), dtype=np.float32)


class TorchEncoder:
    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_dir("embedding")), device="cpu")

    def __call__(self, texts: list[str], batch_size: int) -> np.ndarray:
        vecs = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return vecs.astype(np.float32)


@cache
def encoder(runtime: str, cache_dir: Path | None) -> Encode:
    """One encoder per runtime and process (loading costs about a second)."""
    if runtime == "torch":
        return TorchEncoder()
    return OnnxEncoder(onnx_file(runtime, cache_dir))


def cache_key(runtime: str) -> str:
    """What embedding-cache entries are keyed by: the weights and the runtime. Runtimes never share entries:
    torch and ONNX fp32 agree to about 1e-7, but a run must give the same bytes whatever the cache holds."""
    weights = weights_sha256("embedding")
    if runtime == "torch":
        return weights  # the key caches had before the ONNX runtime existed
    return hashlib.sha256(f"{weights}:{runtime}:{RECIPE}".encode()).hexdigest()


def describe(runtime: str, cache_dir: Path | None) -> str:
    """For metadata: the runtime, its version, and the sha256 of the ONNX file the vectors came from."""
    import importlib.metadata

    if runtime == "torch":
        return f"torch {importlib.metadata.version('torch')} (sentence-transformers)"
    path = onnx_file(runtime, cache_dir)
    kind = "int8 dynamic, per-channel" if runtime == "onnx-int8" else "fp32"
    version = importlib.metadata.version("onnxruntime")
    return f"onnxruntime {version}, {kind} export ({RECIPE}) sha256 {file_sha256(path)}"
