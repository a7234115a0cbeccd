"""Generic CSV, JSON and JSONL readers with column auto-detection by name."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from synth.formats.common import ColumnMap, InputError, LoadedInput, decode_utf8, sha256_bytes, stable_id
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


def _pick(role: str, explicit: str | None, names: list[str], file: str) -> str | None:
    if explicit is not None:
        if explicit not in names:
            raise InputError(file, None, explicit, f"--{role}-col names a column that is not there; columns: {names}")
        return explicit
    lowered = {n.lower().strip(): n for n in names}
    for cand in CANDIDATES[role]:
        if cand in lowered:
            return lowered[cand]
    return None


def _rows_csv(text: str, file: str, delimiter: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(file, None, None, "the file is empty") from None
    except csv.Error as err:
        raise InputError(file, 0, None, f"malformed CSV header: {err}") from None
    header = [h.strip() for h in header]
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise InputError(file, 0, sorted(dupes)[0], "the header names this column twice")
    rows: list[tuple[int, dict[str, Any]]] = []
    row_no = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise InputError(file, row_no + 1, None, f"malformed CSV (line {reader.line_num}): {err}") from None
        row_no += 1
        if not values or all(not v.strip() for v in values):
            rows.append((row_no, {}))  # a blank line is still a row: it is reported as empty, not dropped
            continue
        if len(values) != len(header):
            raise InputError(
                file,
                row_no,
                None,
                f"has {len(values)} fields but the header has {len(header)} (line {reader.line_num})",
            )
        rows.append((row_no, dict(zip(header, values, strict=True))))
    if not rows:
        raise InputError(file, None, None, "has a header but no data rows")
    return header, rows


def _rows_json(text: str, file: str, fmt: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    records: list[Any]
    if fmt == "jsonl":
        records = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InputError(file, line_no, None, f"line is not valid JSON: {err.msg} (char {err.colno})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(
                file, None, None, f"not valid JSON: {err.msg} (line {err.lineno}, char {err.colno})"
            ) from None
        if isinstance(data, dict) and isinstance(data.get("contributions"), list):
            data = data["contributions"]
        if not isinstance(data, list):
            raise InputError(file, None, None, 'expected a list of objects, or {"contributions": [...]}')
        records = data
    if not records:
        raise InputError(file, None, None, "contains no records")
    names: list[str] = []
    rows = []
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise InputError(file, i, None, f"record is a {type(rec).__name__}, expected an object")
        for key in rec:
            if key not in names:
                names.append(key)
        rows.append((i, rec))
    return names, rows


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    s = str(value).strip()
    return s or None


def read_generic(path: Path, fmt: str, columns: ColumnMap) -> LoadedInput:
    """Read CSV/TSV, JSON or JSONL into Contributions; every row becomes one Contribution."""
    file = str(path)
    data = path.read_bytes()
    text = decode_utf8(data, file)
    if fmt == "csv":
        names, rows = _rows_csv(text, file, "\t" if path.suffix.lower() == ".tsv" else ",")
    elif fmt in ("json", "jsonl"):
        names, rows = _rows_json(text, file, fmt)
    else:
        raise InputError(file, None, None, f"unknown format {fmt!r}")

    notes: list[str] = []
    text_col = _pick("text", columns.text, names, file)
    if text_col is None:
        raise InputError(file, None, None, f"no text column found among {names}; name it with --text-col")
    id_col = _pick("id", columns.id, names, file)
    part_col = _pick("participant", columns.participant, names, file)
    group_col = _pick("group", columns.group, names, file)
    question_col = _pick("question", columns.question, names, file)
    time_col = _pick("timestamp", None, names, file)
    for attr in columns.attributes:
        if attr not in names:
            raise InputError(file, None, attr, f"--attr-cols names a column that is not there; columns: {names}")
    notes.append(
        f"columns: text={text_col!r} id={id_col!r} participant={part_col!r} group={group_col!r} "
        f"question={question_col!r} attributes={list(columns.attributes)}"
    )

    contributions: list[Contribution] = []
    seen_ids: dict[str, int] = {}
    generated: dict[str, int] = {}
    for row_no, rec in rows:
        raw_text = rec.get(text_col)
        if raw_text is not None and not isinstance(raw_text, str):
            raise InputError(file, row_no, text_col, f"text must be a string, got {type(raw_text).__name__}")
        body = raw_text or ""
        cid = _str(rec.get(id_col)) if id_col else None
        if cid is None:
            if id_col and rec:
                raise InputError(file, row_no, id_col, "id is empty")
            cid = stable_id(body, generated)
        if cid in seen_ids:
            raise InputError(file, row_no, id_col, f"duplicate id {cid!r} (first seen at row {seen_ids[cid]})")
        seen_ids[cid] = row_no
        contributions.append(
            Contribution(
                id=cid,
                text=body,
                participant_id=_str(rec.get(part_col)) if part_col else None,
                group=_str(rec.get(group_col)) if group_col else None,
                question=_str(rec.get(question_col)) if question_col else None,
                timestamp=_str(rec.get(time_col)) if time_col else None,
                attributes={a: v for a in columns.attributes if (v := _str(rec.get(a))) is not None},
                source_row=row_no,
            )
        )
    return LoadedInput(contributions, [], file, sha256_bytes(data), notes)
