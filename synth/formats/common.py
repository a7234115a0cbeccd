"""What all readers share: the error type that names file, row and column, and byte decoding."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from synth.schema import Contribution, Excluded


class InputError(ValueError):
    """Bad input, located precisely enough that a person can open the file and fix it."""

    def __init__(self, file: str, row: int | None, column: str | None, message: str):
        self.file, self.row, self.column, self.message = file, row, column, message
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(frozen=True)
class ColumnMap:
    """Explicit column choices; None means auto-detect by name."""

    id: str | None = None
    text: str | None = None
    participant: str | None = None
    group: str | None = None
    question: str | None = None
    attributes: tuple[str, ...] = ()


@dataclass
class LoadedInput:
    """Every row read, in file order; `excluded` names rows kept out of the analysis and why."""

    contributions: list[Contribution]
    excluded: list[Excluded]
    source: str
    sha256: str
    notes: list[str] = field(default_factory=list)


def decode_utf8(data: bytes, file: str) -> str:
    """Decode UTF-8 (a BOM is allowed); on failure say which row holds the bad byte."""
    if not data.strip():
        raise InputError(file, None, None, "the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        row = data[: err.start].count(b"\n")  # the header is line 1, so this is the 1-based data row
        bad = data[err.start : err.start + 1].hex()
        raise InputError(
            file, row, None, f"byte 0x{bad} at offset {err.start} is not UTF-8; save the file as UTF-8 and retry"
        ) from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_id(text: str, seen: dict[str, int]) -> str:
    """An id for rows that have none: a hash of the text, numbered when the same text repeats."""
    base = "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"
