"""Readers: column detection, overrides, Polis with votes, and a clear located error for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth.formats import ColumnMap, InputError, load_contributions
from tests.conftest import POLIS


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_csv_autodetects_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "response_id,answer,table\nr1,More buses please,3\nr2,Fewer cars,4\n")
    loaded = load_contributions(path)
    assert [(c.id, c.text, c.group, c.source_row) for c in loaded.contributions] == [
        ("r1", "More buses please", "3", 1),
        ("r2", "Fewer cars", "4", 2),
    ]


def test_explicit_columns_override_detection(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,text,note,age\n1,a,The real text,30-39\n2,b,Another one,40-49\n")
    loaded = load_contributions(path, columns=ColumnMap(text="note", attributes=("age",)))
    assert loaded.contributions[0].text == "The real text"
    assert loaded.contributions[1].attributes == {"age": "40-49"}


def test_json_and_jsonl(tmp_path: Path) -> None:
    records = [{"id": "a", "text": "one"}, {"id": "b", "text": "two", "question": "Q1"}]
    j = load_contributions(write(tmp_path, "in.json", json.dumps({"contributions": records})))
    jl = load_contributions(write(tmp_path, "in.jsonl", "\n".join(json.dumps(r) for r in records)))
    assert [c.model_dump() for c in j.contributions] == [c.model_dump() for c in jl.contributions]
    assert j.contributions[1].question == "Q1"


def test_missing_ids_get_stable_hashes(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "text\nsame words\nsame words\nother\n")
    ids = [c.id for c in load_contributions(path).contributions]
    assert len(set(ids)) == 3 and ids == [c.id for c in load_contributions(path).contributions]


def test_empty_text_is_kept_not_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,text\n1,hello\n2,\n")
    assert [c.id for c in load_contributions(path).contributions] == ["1", "2"]


@pytest.mark.parametrize(
    ("name", "content", "row", "column", "words"),
    [
        ("none.csv", "id,body_text\n1,hi\n", None, None, "no text column"),
        ("enc.csv", b"id,text\n1,fine\n2,caf\xe9 au lait\n", 2, None, "not UTF-8"),
        ("empty.csv", b"", None, None, "empty"),
        ("header.csv", "id,text\n", None, None, "no data rows"),
        ("dup.csv", "id,text\n7,a\n8,b\n7,c\n", 3, "id", "duplicate id '7' (first seen at row 1)"),
        ("ragged.csv", "id,text\n1,a\n2,b,extra\n", 2, None, "3 fields but the header has 2"),
        ("bad.jsonl", '{"id": 1, "text": "a"}\n{"id": 2, "text": \n', 2, None, "not valid JSON"),
        ("bad.json", '[{"id": 1, "text": 5}]', 1, "text", "must be a string"),
        ("cols.csv", "a,b,a\n1,2,3\n", 0, "a", "names this column twice"),
    ],
)
def test_bad_input_names_file_row_and_column(
    tmp_path: Path, name: str, content: str | bytes, row: int | None, column: str | None, words: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        load_contributions(path)
    err = info.value
    assert err.file == str(path) and err.row == row and err.column == column
    assert words in str(err) and name in str(err)


def test_unknown_override_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,text\n1,a\n")
    with pytest.raises(InputError, match="the text column is not there"):
        load_contributions(path, columns=ColumnMap(text="comment"))


def test_polis_export_with_votes_and_groups() -> None:
    loaded = load_contributions(POLIS)
    assert len(loaded.contributions) == 50 and loaded.excluded == []
    c = next(c for c in loaded.contributions if c.id == "36")
    assert c.votes is not None and (c.votes.agree, c.votes.disagree) == (38, 7)
    # the per-group split sums to the comment's own totals (every voter here is in a group or not)
    assert sum(v.agree for v in c.group_votes.values()) <= c.votes.agree
    assert set(c.group_votes) == {"opinion group A", "opinion group B"}
    assert c.group in {"opinion group A", "opinion group B"}


def test_polis_moderated_out_is_excluded_with_reason(tmp_path: Path) -> None:
    folder = tmp_path / "conv"
    folder.mkdir()
    lines = (POLIS / "comments.csv").read_text().splitlines()
    header, first, second = lines[0], lines[1], lines[2]
    cols = header.split(",")
    mod = cols.index("moderated")
    parts = second.split(",")
    parts[mod] = "-1"
    (folder / "comments.csv").write_text("\n".join([header, first, ",".join(parts)]) + "\n")
    loaded = load_contributions(folder)
    assert len(loaded.contributions) == 2
    assert [e.reason for e in loaded.excluded] == ["moderated out in Polis (moderated = -1)"]
