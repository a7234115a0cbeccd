"""The Polis export: comments.csv, and participants-votes.csv when present (opinion groups, votes).

Comments a Polis moderator rejected (moderated = -1) are excluded with that reason, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synth.formats.common import (
    MAX_ID_CHARS,
    MAX_LISTED,
    MAX_VALUE_CHARS,
    InputError,
    LoadedInput,
    Namer,
    build,
    check_value,
    clean_header,
    clip,
    csv_records,
    decode_utf8,
    sha256_bytes,
)
from synth.schema import Contribution, Excluded, Votes

COMMENT_COLUMNS = ("comment-id", "author-id", "agrees", "disagrees", "moderated", "comment-body")
VOTES_FILE = "participants-votes.csv"
# Where each of a comment's vote counts comes from, for errors that name the column.
VOTE_COLUMNS = {"agree": "agrees", "disagree": "disagrees"}

Row = dict[str, str]


def _comments_path(path: Path) -> Path:
    return path / "comments.csv" if path.is_dir() else path


def is_polis_export(path: Path) -> bool:
    """A folder with comments.csv, or a comments.csv, whose header has the Polis columns."""
    comments = _comments_path(path)
    if not comments.is_file():
        return False
    with comments.open("rb") as fh:
        head = fh.readline(64 * 1024).decode("utf-8-sig", errors="replace")  # a header, not a 10 MB line
    return all(col in head for col in ("comment-id", "comment-body", "moderated"))


def group_name(group_id: str) -> str:
    """Polis numbers opinion groups from 0; people read them as letters (A, B, ...), as Polis shows them."""
    digits = group_id.lstrip("0") or group_id[-1:]  # "00" is group 0; "" stays ""
    small = len(digits) <= 2 and digits.isascii() and digits.isdigit() and int(digits) < 26
    return f"opinion group {chr(ord('A') + int(digits))}" if small else group_id


def _read_table(path: Path, file: str) -> tuple[list[str], list[tuple[int, Row]], str]:
    """Header, (row, values) per data row, and the file's sha256. Rows may be short or long, as Polis
    files sometimes are: a missing field reads as absent, an extra one is ignored."""
    data = path.read_bytes()
    records = csv_records(decode_utf8(data, file), file)
    first = next(records, None)
    if first is None:
        raise InputError(file, None, None, "the file is empty")
    header = clean_header(first[2], file)
    rows = [(row, dict(zip(header, values, strict=False))) for row, _, values in records if values]
    return header, rows, sha256_bytes(data)


def _int(value: str | None, file: str, row: int, column: str) -> int:
    text = (value or "").strip() or "0"
    try:
        return int(text)
    except ValueError:
        digits = text.lstrip("+-")
        kind = "too many digits" if digits.isascii() and digits.isdigit() else "not a whole number"
        raise InputError(file, row, column, f"expected a whole number, got {clip(text)!r} ({kind})") from None


@dataclass
class _VoteTable:
    """What participants-votes.csv says, and what in it could not be used."""

    group_of: dict[str, str] = field(default_factory=dict)  # participant -> opinion group
    group_votes: dict[str, dict[str, Votes]] = field(default_factory=dict)  # comment -> group -> votes
    passes: dict[str, int] = field(default_factory=dict)  # comment -> pass votes
    columns: list[str] = field(default_factory=list)  # comment ids with a vote column
    odd_values: int = 0  # integers other than -1, 0, 1: ignored, and reported
    digest: str = ""


def _participant_group(row: Row, file: str, i: int) -> tuple[str, str]:
    pid = (row.get("participant") or "").strip()
    if not pid:
        raise InputError(file, i, "participant", "participant id is empty")
    gid = check_value((row.get("group-id") or "").strip(), file, i, "group-id", "group id", MAX_VALUE_CHARS)
    return pid, group_name(gid) if gid else ""


def _read_votes(path: Path, file: str) -> _VoteTable:
    """Per participant: opinion group. Per comment: votes split by opinion group, and pass counts."""
    header, rows, digest = _read_table(path, file)
    table = _VoteTable(columns=[c for c in header if c.isascii() and c.isdigit()], digest=digest)
    by_group: dict[str, dict[str, list[int]]] = {}
    for i, row in rows:
        pid, group = _participant_group(row, file, i)
        if group:
            table.group_of[pid] = group
        for col in table.columns:
            val = row.get(col)
            if val is None or not val.strip():
                continue
            vote = _int(val, file, i, col)  # text that is not a number is an error, as it always was
            if vote not in (-1, 0, 1):
                table.odd_values += 1
                continue
            if vote == 0:
                table.passes[col] = table.passes.get(col, 0) + 1
            if group:
                counts = by_group.setdefault(col, {}).setdefault(group, [0, 0, 0])
                counts[{1: 0, -1: 1, 0: 2}[vote]] += 1
    table.group_votes = {
        cid: {g: Votes(agree=c[0], disagree=c[1], passed=c[2]) for g, c in sorted(groups.items())}
        for cid, groups in by_group.items()
    }
    return table


def _vote_notes(table: _VoteTable, ids: dict[str, int], file: str, comments_file: str) -> list[str]:
    """Say what of participants-votes.csv was not used, rather than drop it silently."""
    notes = [f"votes and opinion groups from {file} ({len(table.group_of)} participants in groups)"]
    unknown = [c for c in table.columns if c not in ids]
    if unknown:
        listed = ", ".join(clip(c, 40) for c in unknown[:MAX_LISTED]) + (", …" if len(unknown) > MAX_LISTED else "")
        notes.append(
            f"{file}: {len(unknown)} vote columns name comments that are not in {comments_file}; "
            f"their votes were ignored: {listed}"
        )
    if table.odd_values:
        notes.append(f"{file}: {table.odd_values} votes were not -1, 0 or 1 and were ignored")
    return notes


def _comment(row: Row, i: int, file: str, table: _VoteTable) -> Contribution:
    cid = check_value((row.get("comment-id") or "").strip(), file, i, "comment-id", "comment id", MAX_ID_CHARS)
    author = (row.get("author-id") or "").strip() or None
    if author is not None:
        check_value(author, file, i, "author-id", "author id", MAX_VALUE_CHARS)
    stamp = check_value((row.get("timestamp") or "").strip(), file, i, "timestamp", "timestamp", MAX_VALUE_CHARS)
    votes = build(
        Votes,
        file,
        i,
        VOTE_COLUMNS,
        agree=_int(row.get("agrees"), file, i, "agrees"),
        disagree=_int(row.get("disagrees"), file, i, "disagrees"),
        passed=table.passes.get(cid, 0),
    )
    return Contribution(
        id=cid,
        text=row.get("comment-body") or "",
        participant_id=author,
        group=table.group_of.get(author) if author else None,
        timestamp=stamp or None,
        votes=votes,
        group_votes=table.group_votes.get(cid, {}),
        source_row=i,
    )


def read_polis(path: Path, shown: Namer = str) -> LoadedInput:
    """Read a Polis export folder (or its comments.csv) into Contributions.

    `shown` names files in errors and notes (for an upload: the uploaded name, never the temporary copy).
    """
    comments = _comments_path(path)
    file = shown(comments)
    header, rows, digest = _read_table(comments, file)
    if not rows:
        raise InputError(file, None, None, "has a header but no comments")
    missing = [c for c in COMMENT_COLUMNS if c not in header]
    if missing:
        raise InputError(file, None, missing[0], f"Polis comments.csv lacks columns {missing}")
    notes = [f"Polis export: {file}"]
    votes_path = comments.parent / VOTES_FILE
    table = _VoteTable()
    if votes_path.is_file():
        table = _read_votes(votes_path, shown(votes_path))
        digest = sha256_bytes((digest + table.digest).encode())
    else:
        notes.append(f"no {VOTES_FILE}: no opinion groups or vote splits")

    contributions: list[Contribution] = []
    excluded: list[Excluded] = []
    seen: dict[str, int] = {}
    for i, row in rows:
        c = _comment(row, i, file, table)
        if not c.id:
            raise InputError(file, i, "comment-id", "comment id is empty")
        if c.id in seen:
            raise InputError(file, i, "comment-id", f"duplicate id {c.id!r} (first seen at row {seen[c.id]})")
        seen[c.id] = i
        contributions.append(c)
        if _int(row.get("moderated"), file, i, "moderated") == -1:
            excluded.append(Excluded(contribution_id=c.id, reason="moderated out in Polis (moderated = -1)"))
    if votes_path.is_file():
        notes += _vote_notes(table, seen, shown(votes_path), file)
    return LoadedInput(contributions, excluded, file, digest, notes)
