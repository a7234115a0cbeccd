"""Generic CSV, JSON and JSONL readers with column auto-detection by name."""

from __future__ import annotations

import csv
import json
import re
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

# Names seen in Polis, Decidim, CONSUL, Go Vocal, themefinder, Talk to the City (common/csv-validation/index.ts),
# Sensemaker (src/categorization_runner.py; library/runner-cli/runner_utils.ts before bfbe40b), kouchou-ai and
# survey exports, most specific first.
# Attribute columns by prefix: kouchou-ai's "attribute_<name>", Sensemaker's report viewer "demo:<name>".
ATTRIBUTE_PREFIXES = ("attribute_", "demo:")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": (
        "id",
        "comment_id",
        "contribution_id",
        "response_id",
        "responseid",
        "respondent_id",
        "record_id",
        "row_id",
        "submission_id",
        "arg_id",
        "uuid",
        "key",
    ),  # fmt: skip
    "text": (
        "text",
        "comment-body",
        "comment_body",
        "comment_text",  # Sensemaker (older TypeScript runner)
        "survey_text",  # Sensemaker (current Python runner)
        "comment",  # Talk to the City
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
        "interview",  # Talk to the City (aliases name, speaker-id)
        "speaker-id",
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


def _norm(name: str) -> str:
    """'Response ID', 'response-id' and 'response_id' are one name."""
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _pick(role: str, explicit: str | None, names: list[str], file: str, taken: set[str] = frozenset()) -> str | None:
    if explicit is not None:
        if explicit not in names:
            raise InputError(file, None, explicit, f"the {role} column is not there; columns: {preview(names)}")
        return explicit
    lowered = {_norm(n): n for n in names if n not in taken}
    for cand in CANDIDATES[role]:
        if _norm(cand) in lowered:
            return lowered[_norm(cand)]
    return None


# A header that reads as a question put to respondents: "Q1: ...", "Question 2 - ...", or one ending in "?".
_QUESTION_HEADER = re.compile(r"^\s*(?:q(?:uestion)?\s*\d+\b|.*\?\s*$)", re.IGNORECASE)


def question_columns(names: list[str]) -> list[str]:
    """The columns of a wide file (one row per respondent, one column per question), in file order."""
    return [n for n in names if _QUESTION_HEADER.match(n)]


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon (Excel in much of Europe) or tab, by csv.Sniffer on the start of the file; comma
    when it cannot tell (a one-column file)."""
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = sample.split("\n", 1)[0]
        counts = {d: header.count(d) for d in ",;\t"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


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
    """The columns chosen for each role (None: the file has none). A wide file has `answers` (one column per
    question) instead of one text column."""

    text: str | None
    id: str | None
    participant: str | None
    group: str | None
    question: str | None
    timestamp: str | None
    attributes: tuple[str, ...]
    answers: tuple[str, ...] = ()

    def fields(self) -> dict[str, str]:
        """Contribution field -> column, so a refused value can name its column."""
        roles = {"id": self.id, "text": self.text, "participant_id": self.participant, "group": self.group}
        roles |= {"question": self.question, "timestamp": self.timestamp}
        return {k: v for k, v in roles.items() if v is not None}


def _check_named(names: list[str], wanted: tuple[str, ...], what: str, file: str) -> None:
    for col in wanted:
        if len(col) > MAX_KEY_CHARS:
            raise InputError(file, None, col, f"{what} column name is {len(col):,} characters; at most {MAX_KEY_CHARS}")
        if col not in names:
            raise InputError(file, None, col, f"the {what} column is not there; columns: {preview(names)}")


def _pick_all(names: list[str], columns: ColumnMap, file: str) -> _Picked:
    _check_named(names, columns.texts, "text", file)
    _check_named(names, columns.attributes, "attribute", file)
    text_col = _pick("text", columns.text, names, file) if len(columns.texts) < 2 else None
    if len(columns.texts) == 1:
        text_col = columns.texts[0]
    answers = columns.texts if len(columns.texts) >= 2 else ()
    if text_col is None and not answers and len(question_columns(names)) >= 2:
        answers = tuple(question_columns(names))  # a wide file: its question columns say so
    if text_col is None and not answers:
        raise InputError(
            file,
            None,
            None,
            f"no text column found among {preview(names)}: choose the column(s) holding the answers (the CLI's "
            "--text-col, once per question column of a wide file)",
        )
    roles = {
        "id": _pick("id", columns.id, names, file, set(answers)),
        "participant": _pick("participant", columns.participant, names, file, set(answers)),
        "group": _pick("group", columns.group, names, file, set(answers)),
        "question": None if answers else _pick("question", columns.question, names, file),
        "timestamp": _pick("timestamp", None, names, file, set(answers)),
    }
    attributes = columns.attributes
    if not attributes:
        attributes = tuple(n for n in names if n.lower().startswith(ATTRIBUTE_PREFIXES))
    if answers and not attributes:  # a wide file's other columns describe the respondent: keep them
        used = set(answers) | {c for c in roles.values() if c} | {text_col}
        attributes = tuple(n for n in names if n not in used and n)[:MAX_AUTO_ATTRIBUTES]
    return _Picked(text=text_col, attributes=attributes, answers=answers, **roles)


MAX_AUTO_ATTRIBUTES = 20


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


def _cell(value: Any) -> str:
    """A spreadsheet cell as the text a person sees: 12.0 -> '12', dates in ISO form, empty -> ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _rows_sheet(path: Path, file: str) -> tuple[list[str], Rows]:
    """The first sheet with data of an .xlsx, .xls or .ods workbook (python-calamine); rows are numbered as the
    spreadsheet numbers them, so an error's row is the one a person finds on screen."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own errors for broken zips, XML or passwords
        raise InputError(file, None, None, f"cannot be read as a spreadsheet ({type(exc).__name__})") from None
    for name in book.sheet_names:
        cells = [[_cell(v) for v in row] for row in book.get_sheet_by_name(name).to_python(skip_empty_area=False)]
        first = next((i for i, row in enumerate(cells) if any(v.strip() for v in row)), None)
        if first is None:
            continue
        header = clean_header(cells[first], file)
        while header and not header[-1]:  # trailing empty header cells of a sheet's used range
            header.pop()
        rows: Rows = []
        for i, values in enumerate(cells[first + 1 :], start=first + 2):
            extra = [v for v in values[len(header) :] if v.strip()]
            if extra:
                raise InputError(file, i, None, f"has a value beyond the last named column ({clip(extra[0])!r})")
            values = (values + [""] * len(header))[: len(header)]
            rows.append((i, dict(zip(header, values, strict=True)) if any(v.strip() for v in values) else {}))
        if not rows:
            raise InputError(file, None, None, f"sheet {clip(name)!r} has a header but no data rows")
        if "" in header:
            raise InputError(file, first + 1, None, "a column with values has no name in the header row")
        return header, rows
    raise InputError(file, None, None, "every sheet is empty")


def _read_table(path: Path, data: bytes, fmt: str, file: str) -> tuple[list[str], Rows, str]:
    """Header, rows and (for CSV) the delimiter found."""
    if fmt == "sheet":
        return (*_rows_sheet(path, file), "")
    text = decode_utf8(data, file)
    if fmt == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
        return (*_rows_csv(text, file, delimiter), delimiter)
    if fmt in ("json", "jsonl"):
        return (*_rows_json(text, file, fmt), "")
    raise InputError(file, None, None, f"unknown format {clip(fmt)!r}")


def _roles(cols: _Picked) -> dict:
    """The role each column played (for a preview before import)."""
    return {
        "text": list(cols.answers) if cols.answers else [cols.text],
        "id": cols.id,
        "participant": cols.participant,
        "group": cols.group,
        "question": "(each question column's header)" if cols.answers else cols.question,
        "attributes": list(cols.attributes),
        "wide": bool(cols.answers),
    }


def read_generic(path: Path, fmt: str, columns: ColumnMap, shown: Namer = str) -> LoadedInput:
    """Read CSV/TSV (comma, semicolon or tab), JSON, JSONL or a spreadsheet into Contributions.

    A long file gives one Contribution per row; a wide file (one row per respondent, one column per question)
    one per non-empty answer. `shown` names the file in errors and notes (an upload's own name, never its
    temporary copy).
    """
    file = shown(path)
    data = path.read_bytes()
    names, rows, delimiter = _read_table(path, data, fmt, file)
    cols = _pick_all(names, columns, file)
    if cols.answers:
        loaded = _read_wide(rows, cols, file, sha256_bytes(data), delimiter)
        loaded.columns, loaded.roles = names, _roles(cols)
        return loaded
    notes = [
        f"columns: text={_shown(cols.text)} id={_shown(cols.id)} participant={_shown(cols.participant)} "
        f"group={_shown(cols.group)} question={_shown(cols.question)} attributes={preview(cols.attributes)}"
    ]
    if delimiter and delimiter != ",":
        notes.append(f"fields separated by {_DELIMITERS[delimiter]}")
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
    return LoadedInput(contributions, [], file, sha256_bytes(data), notes, names, _roles(cols))


_DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _read_wide(rows: Rows, cols: _Picked, file: str, digest: str, delimiter: str) -> LoadedInput:
    """One contribution per non-empty answer: id '<respondent>/q<k>', the column header as its question, the
    respondent as its participant. Blank answers are counted in the notes, not invented as contributions."""
    contributions: list[Contribution] = []
    seen: dict[str, int] = {}
    blank = 0
    for row_no, rec in rows:
        if not rec:
            blank += len(cols.answers)
            continue
        respondent = _value(rec, cols.id or cols.participant, file, row_no, "respondent id", MAX_ID_CHARS)
        respondent = respondent or f"row{row_no}"
        if respondent in seen:
            raise InputError(
                file, row_no, cols.id, f"respondent {respondent!r} again (first at row {seen[respondent]})"
            )
        seen[respondent] = row_no
        for k, col in enumerate(cols.answers, start=1):
            body = _text(rec, col, file, row_no)
            if not body.strip():
                blank += 1
                continue
            one = _Picked(
                text=col, id=None, participant=None, group=cols.group, question=None, timestamp=cols.timestamp,
                attributes=cols.attributes,
            )  # fmt: skip
            c = _contribution(rec, row_no, one, f"{respondent}/q{k}", body, file)
            contributions.append(c.model_copy(update={"question": col, "participant_id": respondent}))
    questions = "; ".join(f"q{k} = {clip(c)!r}" for k, c in enumerate(cols.answers, start=1))
    notes = [
        f"wide file: {len(seen)} respondents × {len(cols.answers)} questions ({questions}); respondent="
        f"{_shown(cols.id or cols.participant)} group={_shown(cols.group)} attributes={preview(cols.attributes)}",
        f"{len(contributions)} answers read; {blank} blank answers are not contributions",
    ]
    if delimiter and delimiter != ",":
        notes.append(f"fields separated by {_DELIMITERS[delimiter]}")
    if not contributions:
        raise InputError(file, None, None, "no answers: every question column is empty")
    return LoadedInput(contributions, [], file, digest, notes)
