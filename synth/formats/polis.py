"""The Polis export: comments.csv, and participants-votes.csv when present (opinion groups, votes).

Comments a Polis moderator rejected (moderated = -1) are excluded with that reason, never dropped.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from synth.formats.common import InputError, LoadedInput, decode_utf8, sha256_bytes
from synth.schema import Contribution, Excluded, Votes

COMMENT_COLUMNS = ("comment-id", "author-id", "agrees", "disagrees", "moderated", "comment-body")


def _comments_path(path: Path) -> Path:
    return path / "comments.csv" if path.is_dir() else path


def is_polis_export(path: Path) -> bool:
    """A folder with comments.csv, or a comments.csv, whose header has the Polis columns."""
    comments = _comments_path(path)
    if not comments.is_file():
        return False
    with comments.open("rb") as fh:
        head = fh.readline().decode("utf-8-sig", errors="replace")
    return all(col in head for col in ("comment-id", "comment-body", "moderated"))


def group_name(group_id: str) -> str:
    """Polis numbers opinion groups from 0; people read them as letters (A, B, ...), as Polis shows them."""
    return f"opinion group {chr(ord('A') + int(group_id))}" if group_id.isdigit() and int(group_id) < 26 else group_id


def _read_csv(path: Path) -> tuple[list[dict[str, str]], str]:
    data = path.read_bytes()
    text = decode_utf8(data, str(path))
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as err:
        raise InputError(str(path), reader.line_num, None, f"malformed CSV: {err}") from None
    return rows, sha256_bytes(data)


def _int(value: str | None, file: str, row: int, column: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise InputError(file, row, column, f"expected a whole number, got {value!r}") from None


def _read_votes(path: Path) -> tuple[dict[str, str], dict[str, dict[str, Votes]], dict[str, int]]:
    """Per participant: opinion group. Per comment: votes split by opinion group, and pass counts."""
    rows, _ = _read_csv(path)
    file = str(path)
    group_of: dict[str, str] = {}
    by_group: dict[str, dict[str, list[int]]] = {}
    passes: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        pid = (row.get("participant") or "").strip()
        if not pid:
            raise InputError(file, i, "participant", "participant id is empty")
        gid = (row.get("group-id") or "").strip()
        if gid:
            group_of[pid] = group_name(gid)
        for col, val in row.items():
            if col is None or not col.isdigit() or val in ("", None):
                continue
            vote = _int(val, file, i, col)
            if vote == 0:
                passes[col] = passes.get(col, 0) + 1
            if not gid:
                continue
            counts = by_group.setdefault(col, {}).setdefault(group_of[pid], [0, 0, 0])
            counts[0 if vote == 1 else 1 if vote == -1 else 2] += 1
    group_votes = {
        cid: {g: Votes(agree=c[0], disagree=c[1], passed=c[2]) for g, c in sorted(groups.items())}
        for cid, groups in by_group.items()
    }
    return group_of, group_votes, passes


def read_polis(path: Path) -> LoadedInput:
    """Read a Polis export folder (or its comments.csv) into Contributions."""
    comments = _comments_path(path)
    folder = comments.parent
    rows, digest = _read_csv(comments)
    file = str(comments)
    if not rows:
        raise InputError(file, None, None, "has a header but no comments")
    missing = [c for c in COMMENT_COLUMNS if c not in rows[0]]
    if missing:
        raise InputError(file, None, missing[0], f"Polis comments.csv lacks columns {missing}")
    notes = [f"Polis export: {file}"]
    votes_path = folder / "participants-votes.csv"
    group_of: dict[str, str] = {}
    group_votes: dict[str, dict[str, Votes]] = {}
    passes: dict[str, int] = {}
    if votes_path.is_file():
        group_of, group_votes, passes = _read_votes(votes_path)
        digest = sha256_bytes((digest + sha256_bytes(votes_path.read_bytes())).encode())
        notes.append(f"votes and opinion groups from {votes_path} ({len(group_of)} participants in groups)")
    else:
        notes.append("no participants-votes.csv: no opinion groups or vote splits")

    contributions: list[Contribution] = []
    excluded: list[Excluded] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        cid = (row.get("comment-id") or "").strip()
        if not cid:
            raise InputError(file, i, "comment-id", "comment id is empty")
        if cid in seen:
            raise InputError(file, i, "comment-id", f"duplicate id {cid!r} (first seen at row {seen[cid]})")
        seen[cid] = i
        author = (row.get("author-id") or "").strip() or None
        contributions.append(
            Contribution(
                id=cid,
                text=row.get("comment-body") or "",
                participant_id=author,
                group=group_of.get(author) if author else None,
                timestamp=(row.get("timestamp") or "").strip() or None,
                votes=Votes(
                    agree=_int(row.get("agrees"), file, i, "agrees"),
                    disagree=_int(row.get("disagrees"), file, i, "disagrees"),
                    passed=passes.get(cid, 0),
                ),
                group_votes=group_votes.get(cid, {}),
                source_row=i,
            )
        )
        if _int(row.get("moderated"), file, i, "moderated") == -1:
            excluded.append(Excluded(contribution_id=cid, reason="moderated out in Polis (moderated = -1)"))
    return LoadedInput(contributions, excluded, file, digest, notes)
