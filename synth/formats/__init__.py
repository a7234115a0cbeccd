"""Readers: every input format becomes a list of Contributions plus what was excluded at the door.

`load_contributions` is the one entry point; it picks the reader by the path and its contents.
"""

from __future__ import annotations

from pathlib import Path

from synth.formats.common import ColumnMap, InputError, LoadedInput
from synth.formats.generic import read_generic
from synth.formats.polis import is_polis_export, read_polis

__all__ = ["ColumnMap", "InputError", "LoadedInput", "load_contributions"]


def load_contributions(path: str | Path, fmt: str = "auto", columns: ColumnMap | None = None) -> LoadedInput:
    """Read a file or a Polis export folder. fmt: auto, csv, json, jsonl or polis."""
    path = Path(path)
    columns = columns or ColumnMap()
    if not path.exists():
        raise InputError(str(path), None, None, "no such file or folder")
    if fmt == "polis" or (fmt == "auto" and is_polis_export(path)):
        return read_polis(path)
    if path.is_dir():
        raise InputError(str(path), None, None, "is a folder but not a Polis export (no comments.csv in it)")
    if fmt == "auto":
        fmt = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(
            path.suffix.lower(), ""
        )
        if not fmt:
            raise InputError(str(path), None, None, "unknown file type: use .csv, .json or .jsonl, or pass --format")
    return read_generic(path, fmt, columns)
