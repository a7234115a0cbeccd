"""Readers: every input format becomes a list of Contributions plus what was excluded at the door.

`load_contributions` is the one entry point; it picks the reader by the path and its contents.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synth.formats.common import MAX_SHOWN_NAME_CHARS, ColumnMap, InputError, LoadedInput, Namer, clip
from synth.formats.consult import question_folders, read_consult
from synth.formats.generic import read_generic
from synth.formats.polis import VOTES_FILE, is_polis_export, read_polis

__all__ = [
    "ColumnMap", "InputError", "LoadedInput", "load_contributions", "load_uploaded", "preview_uploaded", "upload_name",
]  # fmt: skip

FORMATS = ("auto", "csv", "json", "jsonl", "polis", "sheet")
SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".xlsx": "sheet", ".xlsm": "sheet", ".xls": "sheet", ".ods": "sheet",
}  # fmt: skip
FORMAT_SUFFIXES = {"csv": ".csv", "json": ".json", "jsonl": ".jsonl", "sheet": ".xlsx"}
# Unicode categories removed from a shown file name: controls, format characters (bidi overrides among
# them, which can make a name read backwards), unpaired surrogates, and line / paragraph separators.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def load_contributions(
    path: str | Path, fmt: str = "auto", columns: ColumnMap | None = None, *, shown: Namer = str
) -> LoadedInput:
    """Read a file or a Polis export folder. fmt: auto, csv, json, jsonl, polis or sheet (.xlsx/.xls/.ods).

    `shown` names files in errors and notes; by default the path as given.
    """
    path = Path(path)
    columns = columns or ColumnMap()
    if not path.exists():
        raise InputError(shown(path), None, None, "no such file or folder")
    if fmt == "polis" or (fmt == "auto" and is_polis_export(path)):
        return read_polis(path, shown)
    if path.is_dir() and question_folders(path):
        return read_consult(path, shown)
    if path.is_dir():
        raise InputError(
            shown(path),
            None,
            None,
            "is a folder but neither a Polis export (comments.csv) nor a Consult layout (question.json and "
            "responses.jsonl)",
        )
    if fmt == "auto":
        fmt = SUFFIX_FORMATS.get(path.suffix.lower(), "")
        if not fmt:
            raise InputError(
                shown(path),
                None,
                None,
                "unknown file type: use .csv, .tsv, .json, .jsonl, .xlsx, .xls or .ods, or pass --format",
            )
    return read_generic(path, fmt, columns, shown)


def _base_name(filename: str | None) -> str:
    """The last part of a name a browser or client sent, with characters that hide or fake text removed."""
    base = re.split(r"[/\\]", filename or "")[-1]
    return "".join(ch for ch in base if unicodedata.category(ch) not in _HIDDEN_CATEGORIES).strip()


def upload_name(filename: str | None) -> str:
    """The name people see for an upload (errors, notes, the audit log): never a path, never empty."""
    name = _base_name(filename)[:MAX_SHOWN_NAME_CHARS].strip()
    return name if name.strip(".") else "upload"


def _disk_name(filename: str | None, fmt: str) -> str:
    """The fixed name of the temporary copy: only its extension comes from the client, and only a known one,
    so no name can reach outside the temporary folder or exceed the file system's limits."""
    if fmt == "polis":
        return "comments.csv"
    suffix = os.path.splitext(_base_name(filename))[1].lower()
    return "upload" + (suffix if suffix in SUFFIX_FORMATS else FORMAT_SUFFIXES.get(fmt, ""))


def _without_folder(text: str, folder: Path) -> str:
    """Defence in depth: no message may show the server's temporary folder, whatever a reader wrote."""
    return text.replace(f"{folder}{os.sep}", "").replace(str(folder), "")


@contextmanager
def _stored(filename: str | None, data: bytes, fmt: str, votes: bytes | None) -> Iterator[tuple[Path, str, Namer]]:
    """The upload written to a private temporary folder under a fixed name; yields (path, format, namer) and
    turns any error into one that names the upload as the person called it, never the temporary copy."""
    name = upload_name(filename)
    if fmt not in FORMATS:
        raise InputError(name, None, None, f"format must be one of {', '.join(FORMATS)}, not {clip(fmt)!r}")
    if votes is not None:
        fmt = "polis"
    stored = _disk_name(filename, fmt)

    def shown(path: Path) -> str:
        return VOTES_FILE if path.name == VOTES_FILE else name

    with tempfile.TemporaryDirectory(prefix="synth-upload-") as tmp:
        folder = Path(tmp)
        (folder / stored).write_bytes(data)
        if votes is not None:
            (folder / VOTES_FILE).write_bytes(votes)
        try:
            yield folder / stored, fmt, shown
        except InputError as exc:
            raise InputError(exc.file, exc.row, exc.column, _without_folder(exc.message, folder)) from None


def load_uploaded(
    filename: str | None, data: bytes, fmt: str = "auto", votes: bytes | None = None, columns: ColumnMap | None = None
) -> LoadedInput:
    """Read an uploaded file (and, for Polis, its participants-votes.csv) with the same readers as the CLI.

    Errors and notes name the uploaded file as the person called it, never the temporary copy.
    """
    with _stored(filename, data, fmt, votes) as (path, fmt, shown):
        loaded = load_contributions(path, fmt, columns, shown=shown)
        folder = path.parent
    loaded.source = upload_name(filename)
    loaded.notes = [_without_folder(note, folder) for note in loaded.notes]
    return loaded


def preview_uploaded(
    filename: str | None, data: bytes, fmt: str = "auto", votes: bytes | None = None, columns: ColumnMap | None = None
) -> dict:
    """What an upload would give with this mapping, without storing anything: its columns and the role each
    would play, the first contributions, and how many there would be."""
    columns = columns or ColumnMap()
    with _stored(filename, data, fmt, votes) as (path, fmt, shown):
        loaded = load_contributions(path, fmt, columns, shown=shown)
        folder = path.parent
    return {
        "source": upload_name(filename),
        "columns": loaded.columns,
        "roles": loaded.roles,
        "n_contributions": len(loaded.contributions),
        "n_excluded": len(loaded.excluded),
        "excluded": [e.model_dump() for e in loaded.excluded[:20]],
        "first": [c.model_dump(exclude={"votes", "source_row", "timestamp"}) for c in loaded.contributions[:10]],
        "notes": [_without_folder(n, folder) for n in loaded.notes],
    }
