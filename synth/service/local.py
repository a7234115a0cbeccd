"""Synthesis of a file on disk, for the CLI (`synth run`) and scripts: read, synthesise, write the outputs."""

from __future__ import annotations

import json
from pathlib import Path

from synth.config import SynthConfig
from synth.formats import ColumnMap, InputError, load_contributions
from synth.incremental import extend
from synth.pipeline import Progress, RunResult, run
from synth.pipeline.code import read_codebook
from synth.report import render_html, render_markdown
from synth.schema import Synthesis


def synthesize_file(
    path: str | Path,
    fmt: str = "auto",
    columns: ColumnMap | None = None,
    config: SynthConfig | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None | bool = True,
    previous: Path | None = None,
    codebook: Path | None = None,
) -> RunResult:
    """Read a file and synthesise it; with `previous` (an earlier output folder or its synthesis.json), add
    its new contributions to that synthesis incrementally (synth.incremental) instead of starting afresh; with
    `codebook` (CSV or JSON), code every passage against it too (synth.pipeline.code)."""
    loaded = load_contributions(path, fmt, columns)
    codes = read_codebook(codebook) if codebook is not None else None
    if previous is None:
        return run(loaded, config, progress, cache_dir, codes)
    return extend(read_synthesis(previous), loaded, config, progress, cache_dir)


def read_synthesis(path: Path) -> Synthesis:
    """An earlier run's synthesis.json (or the folder holding it), checked against the schema."""
    file = path / "synthesis.json" if path.is_dir() else path
    try:
        return Synthesis.model_validate_json(file.read_bytes())
    except FileNotFoundError:
        raise InputError(str(file), None, None, "no earlier synthesis here (give the --out folder of a run)") from None
    except ValueError as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(str(file), None, None, f"not a synthesis.json synth can read: {reason}") from None


def write_outputs(result: RunResult, out_dir: Path, title: str) -> dict[str, Path]:
    """synthesis.json (deterministic), its JSON Schema, report.html, report.md and timings.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "synthesis.json": result.synthesis.model_dump_json(indent=2) + "\n",
        "synthesis.schema.json": json.dumps(Synthesis.model_json_schema(), indent=2) + "\n",
        "report.html": render_html(result.synthesis, result.timings, title),
        "report.md": render_markdown(result.synthesis, result.timings, title),
        "timings.json": json.dumps(result.timings, indent=2) + "\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = out_dir / name
        paths[name].write_text(text, encoding="utf-8")
    return paths
