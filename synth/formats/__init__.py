"""Readers: every input format becomes a list of Contributions plus what was excluded at the door.

`load_contributions` is the one entry point; it picks the reader by the path and its contents.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from synth.formats.common import ColumnMap, InputError, LoadedInput
from synth.formats.generic import read_generic
from synth.formats.polis import is_polis_export, read_polis

__all__ = ["ColumnMap", "InputError", "LoadedInput", "load_contributions", "load_uploaded"]


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


def load_uploaded(filename: str, data: bytes, fmt: str = "auto", votes: bytes | None = None) -> LoadedInput:
    """Read an uploaded file (and, for Polis, its participants-votes.csv) with the same readers as the CLI.

    Errors name the uploaded file as the person called it, not the temporary copy.
    """
    name = Path(filename or "upload.csv").name
    if fmt not in ("auto", "csv", "json", "jsonl", "polis"):
        raise InputError(name, None, None, f"format must be auto, csv, json, jsonl or polis, not {fmt!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stored = name
        if votes is not None:
            stored, fmt = "comments.csv", "polis"
            (folder / "participants-votes.csv").write_bytes(votes)
        (folder / stored).write_bytes(data)
        try:
            loaded = load_contributions(folder if fmt == "polis" else folder / stored, fmt)
        except InputError as exc:
            shown = Path(exc.file).name
            raise InputError(name if shown == stored else shown, exc.row, exc.column, exc.message) from None
    loaded.source = name
    return loaded
