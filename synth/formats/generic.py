"""Generic CSV, JSON and JSONL readers with column auto-detection by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.formats.common import (
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_VALUE_CHARS,
    ColumnMap,
    InputError,
    LoadedInput,
    Namer,
    build,
    check_value,
    clean_header,
    clip,
    csv_records,
    decode_utf8,
    preview,
    sha256_bytes,
    stable_id,
)
from synth.schema import Contribution

# Names seen in Polis, Decidim, CONSUL, Go Vocal, themefinder and survey exports, most specific first.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "comment-id", "comment_id", "contribution_id", "response_id", "arg_id", "uuid", "key"),
    "text": (
        "text",
        "comment-body",
        "comment_body",
        "comment",
        "body",
        "contribution",
        "response",
        "answer",
        "argument",
        "content",
        "message",
        "statement",
    ),
    "participant": (
        "participant_id",
        "participant",
        "author-id",
        "author_id",
        "author",
        "respondent_id",
        "respondent",
        "user_id",
        "user",
    ),
    "group": ("group", "table", "session", "group-id", "group_id", "stratum", "cohort"),
    "question": ("question", "question_id", "question_text", "prompt", "topic"),
    "timestamp": ("timestamp", "datetime", "created_at", "date", "time"),
}


Rows = list[tuple[int, dict[str, Any]]]


def _pick(role: str, explicit: str | None, names: list[str], file: str) -> str | None:
    if explicit is not None:
        if explicit not in names:
            raise InputError(
                file, None, explicit, f"--{role}-col names a column that is not there; columns: {preview(names)}"
            )
        return explicit
    lowered = {n.lower().strip(): n for n in names}
    for cand in CANDIDATES[role]:
        if cand in lowered:
            return lowered[cand]
    return None


def _rows_csv(text: str, file: str, delimiter: str) -> tuple[list[str], Rows]:
    records = csv_records(text, file, delimiter)
    first = next(records, None)
    if first is None:
        raise InputError(file, None, None, "the file is empty")
    header = clean_header(first[2], file)
    rows: Rows = []
    for row_no, line, values in records:
        if not values or all(not v.strip() for v in values):
            rows.append((row_no, {}))  # a blank line is still a row: it is reported as empty, not dropped
            continue
        if len(values) != len(header):
            raise InputError(
                file, row_no, None, f"has {len(values)} fields but the header has {len(header)} (line {line})"
            )
        rows.append((row_no, dict(zip(header, values, strict=True))))
    if not rows:
        raise InputError(file, None, None, "has a header but no data rows")
    return header, rows


class _LongNumber:
    """A JSON integer too long for int() (over 4,300 digits). Kept as its digits so that the error names the
    row and column it sits in (an id that long is refused there), instead of failing the whole parse."""

    __slots__ = ("digits",)

    def __init__(self, digits: str) -> None:
        self.digits = digits


def _parse_int(digits: str) -> int | _LongNumber:
    try:
        return int(digits)
    except ValueError:  # json has checked the syntax already, so only the digit limit refuses it
        return _LongNumber(digits)


def _loads(text: str, file: str, row: int | None) -> Any:
    """Parse JSON (`row` is the JSONL line, None for a whole JSON file); every failure is an InputError."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as err:
        if row is None:
            raise InputError(
                file, None, None, f"not valid JSON: {err.msg} (line {err.lineno}, char {err.colno})"
            ) from None
        raise InputError(file, row, None, f"line is not valid JSON: {err.msg} (char {err.colno})") from None
    except RecursionError:
        raise InputError(file, row, None, "JSON nesting too deep (lists or objects inside each other)") from None
    except ValueError as err:  # anything json.loads refuses that is not a syntax error
        raise InputError(file, row, None, f"not valid JSON: {clip(str(err), 200)}") from None


def _kind(value: Any) -> str:
    """A JSON value's type in the words of JSON, for messages."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, _LongNumber)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else "an object"


def _json_records(text: str, file: str) -> list[tuple[int, Any]]:
    data = _loads(text, file, None)
    if isinstance(data, dict):
        if "contributions" not in data:
            raise InputError(
                file, None, None, 'expected a list of objects, or {"contributions": [...]}; no "contributions" key'
            )
        data = data["contributions"]
        if not isinstance(data, list):
            raise InputError(file, None, None, f'"contributions" must be a list of objects, not {_kind(data)}')
    if not isinstance(data, list):
        expected = 'expected a list of objects, or {"contributions": [...]}'
        raise InputError(file, None, None, f"{expected}, not {_kind(data)}")
    return list(enumerate(data, start=1))


def _jsonl_records(text: str, file: str) -> list[tuple[int, Any]]:
    """One JSON value per line, numbered by line as the errors are. Lines end at \\n only: JSON strings may
    hold U+2028 and other characters that str.splitlines() would break a record at."""
    return [(n, _loads(line, file, n)) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _rows_json(text: str, file: str, fmt: str) -> tuple[list[str], Rows]:
    records = _jsonl_records(text, file) if fmt == "jsonl" else _json_records(text, file)
    if not records:
        raise InputError(file, None, None, "contains no records")
    names: dict[str, None] = {}  # an ordered set: keys in first-seen order, without a quadratic scan
    rows: Rows = []
    for i, rec in records:
        if not isinstance(rec, dict):
            raise InputError(file, i, None, f"record is {_kind(rec)}, expected an object")
        names.update(dict.fromkeys(rec))
        rows.append((i, rec))
    return list(names), rows


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=lambda v: v.digits)
    s = (value.digits if isinstance(value, _LongNumber) else str(value)).strip()
    return s or None


def _value(rec: dict[str, Any], col: str | None, file: str, row: int, what: str, limit: int) -> str | None:
    """The cell at `col` as checked text (JSON objects and lists as JSON), or None when absent or blank."""
    if col is None:
        return None
    try:
        text = _str(rec.get(col))
    except RecursionError:
        raise InputError(file, row, col, f"{what} is nested too deeply to read") from None
    return None if text is None else check_value(text, file, row, col, what, limit)


def _text(rec: dict[str, Any], col: str, file: str, row: int) -> str:
    raw = rec.get(col)
    if raw is not None and not isinstance(raw, str):
        raise InputError(file, row, col, f"text must be a string, got {_kind(raw)}")
    return check_value(raw or "", file, row, col, "text", None)  # its length limit is the caller's


def _id(rec: dict[str, Any], col: str | None, file: str, row: int, body: str, generated: dict[str, int]) -> str:
    """The row's id; a row without an id column gets a stable hash of its text, a blank row too."""
    if col is not None and isinstance(rec.get(col), (dict, list)):
        raise InputError(file, row, col, f"id must be a string or a number, not {_kind(rec[col])}")
    cid = _value(rec, col, file, row, "id", MAX_ID_CHARS)
    if cid is not None:
        return cid
    if col and rec:
        raise InputError(file, row, col, "id is empty")
    return stable_id(body, generated)


def _shown(col: str | None) -> str:
    return repr(None if col is None else clip(col))


@dataclass(frozen=True)
class _Picked:
    """The columns chosen for each role (None: the file has none)."""

    text: str
    id: str | None
    participant: str | None
    group: str | None
    question: str | None
    timestamp: str | None
    attributes: tuple[str, ...]

    def fields(self) -> dict[str, str]:
        """Contribution field -> column, so a refused value can name its column."""
        roles = {"id": self.id, "text": self.text, "participant_id": self.participant, "group": self.group}
        roles |= {"question": self.question, "timestamp": self.timestamp}
        return {k: v for k, v in roles.items() if v is not None}


def _pick_all(names: list[str], columns: ColumnMap, file: str) -> _Picked:
    text_col = _pick("text", columns.text, names, file)
    if text_col is None:
        raise InputError(file, None, None, f"no text column found among {preview(names)}; name it with --text-col")
    for attr in columns.attributes:
        if len(attr) > MAX_KEY_CHARS:
            raise InputError(
                file, None, attr, f"attribute column name is {len(attr):,} characters; at most {MAX_KEY_CHARS}"
            )
        if attr not in names:
            raise InputError(
                file, None, attr, f"--attr-cols names a column that is not there; columns: {preview(names)}"
            )
    return _Picked(
        text=text_col,
        id=_pick("id", columns.id, names, file),
        participant=_pick("participant", columns.participant, names, file),
        group=_pick("group", columns.group, names, file),
        question=_pick("question", columns.question, names, file),
        timestamp=_pick("timestamp", None, names, file),
        attributes=columns.attributes,
    )


def _contribution(rec: dict[str, Any], row: int, cols: _Picked, cid: str, body: str, file: str) -> Contribution:
    def value(col: str | None, what: str) -> str | None:
        return _value(rec, col, file, row, what, MAX_VALUE_CHARS)

    return build(
        Contribution,
        file,
        row,
        cols.fields(),
        id=cid,
        text=body,
        participant_id=value(cols.participant, "participant"),
        group=value(cols.group, "group"),
        question=value(cols.question, "question"),
        timestamp=value(cols.timestamp, "timestamp"),
        attributes={a: v for a in cols.attributes if (v := value(a, "attribute value")) is not None},
        source_row=row,
    )


def read_generic(path: Path, fmt: str, columns: ColumnMap, shown: Namer = str) -> LoadedInput:
    """Read CSV/TSV, JSON or JSONL into Contributions; every row becomes one Contribution.

    `shown` names the file in errors and notes (an upload's own name, never its temporary copy).
    """
    file = shown(path)
    data = path.read_bytes()
    text = decode_utf8(data, file)
    if fmt == "csv":
        names, rows = _rows_csv(text, file, "\t" if path.suffix.lower() == ".tsv" else ",")
    elif fmt in ("json", "jsonl"):
        names, rows = _rows_json(text, file, fmt)
    else:
        raise InputError(file, None, None, f"unknown format {clip(fmt)!r}")
    cols = _pick_all(names, columns, file)
    notes = [
        f"columns: text={_shown(cols.text)} id={_shown(cols.id)} participant={_shown(cols.participant)} "
        f"group={_shown(cols.group)} question={_shown(cols.question)} attributes={preview(cols.attributes)}"
    ]
    contributions: list[Contribution] = []
    seen_ids: dict[str, int] = {}
    generated: dict[str, int] = {}
    for row_no, rec in rows:
        body = _text(rec, cols.text, file, row_no)
        cid = _id(rec, cols.id, file, row_no, body, generated)
        if cid in seen_ids:
            raise InputError(file, row_no, cols.id, f"duplicate id {cid!r} (first seen at row {seen_ids[cid]})")
        seen_ids[cid] = row_no
        contributions.append(_contribution(rec, row_no, cols, cid, body, file))
    return LoadedInput(contributions, [], file, sha256_bytes(data), notes)
