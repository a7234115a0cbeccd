"""Shared fixtures: real-data runs made once per session (the model loads and UMAP compiles once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth.config import SynthConfig
from synth.formats import load_contributions
from synth.pipeline import RunResult, run

FIXTURES = Path(__file__).parent / "fixtures"
POLIS = FIXTURES / "polis-brexit"
PLANTED = FIXTURES / "argkp-uniform-planted.csv"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def polis_run(cache_dir: Path) -> RunResult:
    return run(load_contributions(POLIS), SynthConfig(), cache_dir=cache_dir)


@pytest.fixture(scope="session")
def planted_run(cache_dir: Path) -> RunResult:
    return run(load_contributions(PLANTED), SynthConfig(), cache_dir=cache_dir)
