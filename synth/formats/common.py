"""What all readers share: the error type that names file, row and column, byte decoding, CSV records,
and the limits every value must keep to before it reaches the database or a page.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from synth.schema import Contribution, Excluded

# The database stores a contribution's id in a String(200) column.
MAX_ID_CHARS = 200
# Group, participant, question, timestamp and attribute values are labels, not prose: a longer one is a
# wrong column choice or a hostile file, and would flood every table and chart that shows it.
MAX_VALUE_CHARS = 1_000
# Attribute keys become column headings in reports.
MAX_KEY_CHARS = 200
# An uploaded file's name as people see it (in errors, the audit log and the upload report).
MAX_SHOWN_NAME_CHARS = 120
# Python's csv refuses fields over 128 KiB; a long contribution is legitimate (the caller applies its own
# text-length limit with a clearer message), so the reader allows fields up to what a C long holds.
CSV_FIELD_LIMIT = 2**31 - 1
# How many names or ids a message lists before it says "and N more".
MAX_LISTED = 10

# Names a file for people: the path itself on the command line, the uploaded name for an upload.
Namer = Callable[[Path], str]
M = TypeVar("M", bound=BaseModel)


def printable(text: str) -> str:
    """Escape what UTF-8 cannot carry (unpaired surrogates), so a message can always be sent as JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def clip(text: str, limit: int = 60) -> str:
    """Shorten a value quoted in a message: a message must stay readable whatever the file holds."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(names: Iterable[str], limit: int = MAX_LISTED) -> str:
    """A bounded list of names for a message, e.g. of a header with a million columns."""
    items = list(names)
    shown = ", ".join(repr(clip(n, 40)) for n in items[:limit])
    more = f", … and {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"


class InputError(ValueError):
    """Bad input, located precisely enough that a person can open the file and fix it."""

    def __init__(self, file: str, row: int | None, column: str | None, message: str):
        file, message = printable(file), printable(message)
        column = None if column is None else clip(printable(column), MAX_KEY_CHARS)
        self.file, self.row, self.column, self.message = file, row, column, message
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(frozen=True)
class ColumnMap:
    """Explicit column choices; None means auto-detect by name. `texts` (two or more columns) reads a wide
    file: one contribution per non-empty answer, the column header as its question."""

    id: str | None = None
    text: str | None = None
    texts: tuple[str, ...] = ()
    participant: str | None = None
    group: str | None = None
    question: str | None = None
    attributes: tuple[str, ...] = ()


MAPPING_ROLES = ("id", "question", "participant", "group")  # one column each; text and attributes take several


def column_map(values: Callable[[str], list[str]]) -> ColumnMap:
    """A mapping sent by a form or a multipart request (`<role>_column` fields; `text_column` and
    `attribute_column` repeatable), read the same way for every door. A one-column role given twice, or one
    column given two roles, is an InputError naming it: never a silent choice."""
    one: dict[str, str | None] = {}
    for role in MAPPING_ROLES:
        name = f"{role}_column"
        given = [str(v) for v in values(name) if str(v)]
        if len(given) > 1:
            raise InputError("mapping", None, name, f"{name} was given {len(given)} times; give it once")
        one[role] = given[0] if given else None
    texts = tuple(str(v) for v in values("text_column") if str(v))
    used = [c for c in (*one.values(), *texts) if c]
    twice = sorted({c for c in used if used.count(c) > 1})
    if twice:
        raise InputError("mapping", None, twice[0], f"column {twice[0]!r} is mapped to two roles")
    return ColumnMap(
        id=one["id"],
        text=texts[0] if len(texts) == 1 else None,
        texts=texts if len(texts) > 1 else (),
        participant=one["participant"],
        group=one["group"],
        question=one["question"],
        attributes=tuple(str(v) for v in values("attribute_column") if str(v)),
    )


@dataclass
class LoadedInput:
    """Every row read, in file order; `excluded` names rows kept out of the analysis and why."""

    contributions: list[Contribution]
    excluded: list[Excluded]
    source: str
    sha256: str
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # a table's header, for a preview
    roles: dict = field(default_factory=dict)  # role -> the column(s) read for it, for a preview


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n")  # the header is line 1, so this is the 1-based data row


def decode_utf8(data: bytes, file: str) -> str:
    """Decode UTF-8 (a BOM is allowed) or UTF-16 with a BOM; on failure say which row holds the bad byte.

    NUL bytes are refused too: no text format holds them, and PostgreSQL cannot store them.
    """
    if not data.strip():
        raise InputError(file, None, None, "the file is empty")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte-order mark, as Excel's "Unicode text" saves
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                file, None, None, f"not valid UTF-16 at byte {err.start}: save the file as UTF-8"
            ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad = data[err.start : err.start + 1].hex()
        raise InputError(
            file,
            _line_of(data, err.start),
            None,
            f"byte 0x{bad} at offset {err.start} is not UTF-8 (nor UTF-16 with a byte-order mark); save the "
            "file as UTF-8 and retry",
        ) from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(
            file, _line_of(data, nul), None, f"NUL byte at offset {nul}: this is not a text file; save it as UTF-8"
        )
    return text


def check_value(value: str, file: str, row: int | None, column: str | None, what: str, limit: int | None) -> str:
    """Return `value` unchanged if the database and the pages can hold it; else say what is wrong with it."""
    if limit is not None and len(value) > limit:
        raise InputError(file, row, column, f"{what} is {len(value):,} characters long; at most {limit:,} are allowed")
    if "\x00" in value:
        raise InputError(file, row, column, f"{what} contains a NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(value[err.start])
        raise InputError(file, row, column, f"{what} contains an unpaired surrogate U+{code:04X}: not text") from None
    return value


def _allow_long_fields() -> None:
    """Raise csv's process-wide field limit, never lower it: lowering it back could break a reader in another
    thread that is halfway through a long field."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def csv_records(text: str, file: str, delimiter: str = ",") -> Iterator[tuple[int, int, list[str]]]:
    """Yield (row, line, fields): row 0 is the header, data rows count from 1 (blank lines included), `line`
    is where the record ends. A malformed record is an InputError naming its row."""
    _allow_long_fields()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    row = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            what = "CSV header" if row == 0 else "CSV"
            raise InputError(file, row, None, f"malformed {what} (line {reader.line_num}): {err}") from None
        yield row, reader.line_num, values
        row += 1


def clean_header(names: list[str], file: str) -> list[str]:
    """Header names without surrounding space or stray BOMs (files joined after saving with one);
    a name given twice is an error, since a row could then hold two different values for it."""
    header = [n.replace("\ufeff", "").strip() for n in names]
    dupes = sorted(n for n, k in Counter(header).items() if k > 1)
    if dupes:
        raise InputError(file, 0, dupes[0], "the header names this column twice")
    return header


def build(model: type[M], file: str, row: int, columns: Mapping[str, str], **fields: Any) -> M:
    """Construct a schema model; a value it refuses becomes an InputError naming the source column
    (`columns` maps field names to the file's column names)."""
    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        got = clip(repr(first.get("input")))
        raise InputError(file, row, columns.get(name, name or None), f"{first['msg']} (got {got})") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_id(text: str, seen: dict[str, int]) -> str:
    """An id for rows that have none: a hash of the text, numbered when the same text repeats."""
    base = "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"
