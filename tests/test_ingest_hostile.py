"""Hostile and broken input: every failure is an InputError that names file, row and column, never an
uncaught exception (the API would answer 500), and never shows the server's temporary folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from synth.formats import ColumnMap, InputError, LoadedInput, load_contributions, load_uploaded
from synth.formats.common import MAX_ID_CHARS, MAX_KEY_CHARS, MAX_SHOWN_NAME_CHARS, MAX_VALUE_CHARS
from synth.schema import Votes
from tests.conftest import POLIS

POLIS_HEADER = "comment-id,author-id,agrees,disagrees,moderated,comment-body\n"
VOTES_HEADER = "participant,group-id,n-comments,n-votes,n-agree,n-disagree"


@pytest.fixture
def upload_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put load_uploaded's temporary folders in a known place, to check nothing leaks out of it or names it."""
    root = tmp_path / "server-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def refused(upload_tmp: Path, name: str, data: bytes, fmt: str = "auto", votes: bytes | None = None) -> InputError:
    """The InputError an upload raises, checked to show no temporary path."""
    with pytest.raises(InputError) as info:
        load_uploaded(name, data, fmt, votes)
    err = info.value
    for shown in (str(err), err.file, err.message, err.column or ""):
        assert str(upload_tmp) not in shown and "/tmp" not in shown and "synth-upload" not in shown
    return err


def polis_comments(*rows: str) -> bytes:
    return (POLIS_HEADER + "".join(r + "\n" for r in rows)).encode()


# 1. nesting


@pytest.mark.parametrize(("name", "row"), [("deep.json", None), ("deep.jsonl", 2)])
def test_deep_nesting_is_refused(upload_tmp: Path, name: str, row: int | None) -> None:
    first = b'{"id": "a", "text": "fine"}\n' if name.endswith("jsonl") else b""
    err = refused(upload_tmp, name, first + b"[" * 100_000)
    assert "nesting too deep" in err.message and err.row == row and err.file == name


# 2. numbers json cannot turn into int, and other ValueErrors


@pytest.mark.parametrize(
    ("name", "data", "row"),
    [
        ("big.jsonl", b'{"id": "a", "text": "x"}\n{"id": ' + b"7" * 5000 + b', "text": "y"}\n', 2),
        ("big.json", b'[{"id": "a", "text": "x"}, {"id": ' + b"7" * 5000 + b', "text": "y"}]', 2),
    ],
)
def test_5000_digit_id_names_row_and_column(upload_tmp: Path, name: str, data: bytes, row: int) -> None:
    err = refused(upload_tmp, name, data)
    assert (err.row, err.column) == (row, "id")
    assert "5,000 characters" in err.message and "4300" not in err.message


def test_5000_digit_number_as_text_or_in_an_unused_column(upload_tmp: Path) -> None:
    err = refused(upload_tmp, "t.jsonl", b'{"id": "a", "text": ' + b"9" * 5000 + b"}\n")
    assert (err.row, err.column) == (1, "text") and "must be a string, got a number" in err.message
    loaded = load_uploaded("u.jsonl", b'{"id": "a", "text": "x", "score": ' + b"9" * 5000 + b"}\n")
    assert [c.id for c in loaded.contributions] == ["a"]


def test_jsonl_rows_are_line_numbers_and_u2028_is_not_a_line_break(upload_tmp: Path) -> None:
    data = '{"id": "a", "text": "one\u2028two"}\n\n{"id": "b", "text": "x"}\n{"id": \n'.encode()
    err = refused(upload_tmp, "l.jsonl", data)
    assert err.row == 4 and "not valid JSON" in err.message
    loaded = load_uploaded("l.jsonl", data.rsplit(b"\n", 2)[0])
    assert [(c.id, c.text, c.source_row) for c in loaded.contributions] == [("a", "one\u2028two", 1), ("b", "x", 3)]


# 3. lengths


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("ids.csv", lambda cid: f"id,text\nok,fine\n{cid},hello\n"),
        ("ids.json", lambda cid: json.dumps([{"id": "ok", "text": "fine"}, {"id": cid, "text": "hello"}])),
        ("ids.jsonl", lambda cid: f'{{"id": "ok", "text": "fine"}}\n{{"id": "{cid}", "text": "hello"}}\n'),
    ],
)
def test_ids_over_200_characters_are_refused(upload_tmp: Path, name: str, build) -> None:  # noqa: ANN001
    assert load_uploaded(name, build("x" * MAX_ID_CHARS).encode()).contributions[1].id == "x" * MAX_ID_CHARS
    err = refused(upload_tmp, name, build("x" * (MAX_ID_CHARS + 1)).encode())
    assert (err.row, err.column) == (2, "id") and "201 characters" in err.message


def test_polis_comment_id_over_200_characters_is_refused(upload_tmp: Path) -> None:
    err = refused(upload_tmp, "comments.csv", polis_comments("1,p,0,0,0,a", "x" * 201 + ",p,0,0,0,b"), "polis")
    assert (err.file, err.row, err.column) == ("comments.csv", 2, "comment-id") and "at most 200" in err.message


@pytest.mark.parametrize("column", ["group", "participant_id", "question"])
def test_long_labels_are_refused_and_1000_is_kept(upload_tmp: Path, column: str) -> None:
    ok = f"id,text,{column}\n1,hello,{'g' * MAX_VALUE_CHARS}\n".encode()
    assert len(load_uploaded("v.csv", ok).contributions[0].model_dump()[column]) == 1000
    err = refused(upload_tmp, "v.csv", f"id,text,{column}\n1,hello,short\n2,hi,{'g' * 1001}\n".encode())
    assert (err.row, err.column) == (2, column) and "1,001 characters" in err.message


def test_polis_author_and_group_id_limits(upload_tmp: Path) -> None:
    err = refused(upload_tmp, "comments.csv", polis_comments("1," + "a" * 1001 + ",0,0,0,x"), "polis")
    assert (err.row, err.column) == (1, "author-id")
    votes = f"{VOTES_HEADER},1\n7,{'1' * 5000},0,0,0,0,1\n".encode()  # int() of this once raised ValueError
    err = refused(upload_tmp, "comments.csv", polis_comments("1,7,0,0,0,x"), "polis", votes)
    assert (err.file, err.row, err.column) == ("participants-votes.csv", 1, "group-id")


def test_attribute_values_and_keys(tmp_path: Path) -> None:
    long_key = "k" * (MAX_KEY_CHARS + 1)
    path = tmp_path / "a.csv"
    path.write_text(f"id,text,age,{long_key}\n1,hi,{'9' * 1001},x\n")
    with pytest.raises(InputError) as info:
        load_contributions(path, columns=ColumnMap(attributes=("age",)))
    assert (info.value.row, info.value.column) == (1, "age") and "attribute value" in info.value.message
    with pytest.raises(InputError) as info:
        load_contributions(path, columns=ColumnMap(attributes=(long_key,)))
    assert "attribute column name is 201 characters" in info.value.message
    assert info.value.column is not None and len(info.value.column) <= MAX_KEY_CHARS


# 4. upload names


@pytest.mark.parametrize(
    ("filename", "fmt", "shown"),
    [
        (".", "csv", "upload"),
        ("..", "csv", "upload"),
        ("", "csv", "upload"),
        (None, "csv", "upload"),
        ("../../../etc/passwd.csv", "auto", "passwd.csv"),
        ("..\\..\\windows\\evil.csv", "auto", "evil.csv"),
        ("/abs/path/x.tsv", "auto", "x.tsv"),
        ("\x1b[31mred\x00\n\r.csv", "auto", "[31mred.csv"),
        ("\u202ecod.csv", "auto", "cod.csv"),
        ("a" * 300 + ".csv", "auto", "a" * MAX_SHOWN_NAME_CHARS),
    ],
)
def test_upload_names_stay_inside_the_temp_folder(upload_tmp: Path, filename: str | None, fmt: str, shown: str) -> None:
    sep = "\t" if (filename or "").endswith(".tsv") else ","
    loaded = load_uploaded(filename, f"id{sep}text\n1{sep}hello\n".encode(), fmt)  # type: ignore[arg-type]
    assert loaded.source == shown and [c.text for c in loaded.contributions] == ["hello"]
    assert list(upload_tmp.iterdir()) == [] and sorted(p.name for p in upload_tmp.parent.iterdir()) == ["server-tmp"]


def test_errors_name_the_shown_upload_name(upload_tmp: Path) -> None:
    err = refused(upload_tmp, "x/" + "b" * 300 + ".csv", b"id,text\n1,a\n1,b\n")
    assert err.file == "b" * MAX_SHOWN_NAME_CHARS and (err.row, err.column) == (2, "id")
    err = refused(upload_tmp, "..", b"id,text\n1,a\n")  # no extension left: auto cannot tell the format
    assert err.file == "upload" and "unknown file type" in err.message
    err = refused(upload_tmp, "in.csv", b"id,text\n1,a\n", fmt="x" * 10_000)
    assert len(str(err)) < 200


def test_polis_notes_name_only_the_uploaded_files(upload_tmp: Path) -> None:
    comments = (POLIS / "comments.csv").read_bytes()
    votes = (POLIS / "participants-votes.csv").read_bytes()
    loaded = load_uploaded("my export.csv", comments, "auto", votes)
    assert loaded.source == "my export.csv" and len(loaded.contributions) == 50
    assert loaded.notes[0] == "Polis export: my export.csv"
    assert loaded.notes[1].startswith("votes and opinion groups from participants-votes.csv (")
    assert all("/" not in note for note in loaded.notes)
    err = refused(upload_tmp, "my export.csv", comments, votes=votes.replace(b"\n0,1,", b"\n,1,", 1))
    assert (err.file, err.row, err.column) == ("participants-votes.csv", 1, "participant")


# 5. format=polis with any file name


def test_polis_format_reads_any_uploaded_name_as_comments(upload_tmp: Path) -> None:
    data = (POLIS / "comments.csv").read_bytes()
    loaded = load_uploaded("brexit-export.txt", data, "polis")
    assert loaded.source == "brexit-export.txt" and len(loaded.contributions) == 50
    assert loaded.notes == [
        "Polis export: brexit-export.txt",
        "no participants-votes.csv: no opinion groups or vote splits",
    ]
    err = refused(upload_tmp, "wrong.json", b'[{"id": 1}]\n[{"id": 2}]\n', "polis")
    assert err.file == "wrong.json" and "lacks columns" in err.message


# 6. long CSV fields


def test_a_10_mb_csv_field_is_read_whole(upload_tmp: Path) -> None:
    text = "word " * 2_000_000
    loaded = load_uploaded("long.csv", f'id,text\n1,"{text}"\n2,short\n'.encode())
    assert [len(c.text) for c in loaded.contributions] == [len(text), 5]
    loaded = load_uploaded("long.csv", polis_comments(f'1,p,0,0,0,"{text}"'), "polis")
    assert len(loaded.contributions[0].text) == len(text)


@pytest.mark.parametrize(
    ("data", "row"),
    [(b'id,text\n1,a\n2,"never closed\n', 2), (b'id,text\n1,"a"b\n', 1), (b'"id,text\n', 0)],
)
def test_csv_errors_name_the_row(upload_tmp: Path, data: bytes, row: int) -> None:
    err = refused(upload_tmp, "bad.csv", data)
    assert err.row == row and "malformed CSV" in err.message
    err = refused(upload_tmp, "comments.csv", POLIS_HEADER.encode() + data, "polis")
    assert err.row == row + 1 and "malformed CSV" in err.message  # the Polis header comes first


# 7. vote counts


@pytest.mark.parametrize("count", [-1, 10**9 + 1, 10**30])
def test_votes_model_refuses_impossible_counts(count: int) -> None:
    with pytest.raises(ValidationError):
        Votes(agree=count)
    assert Votes(agree=0, disagree=10**9, passed=5).disagree == 10**9


@pytest.mark.parametrize(("column", "value"), [("agrees", "-5"), ("disagrees", str(10**30)), ("agrees", "9" * 5000)])
def test_polis_impossible_counts_name_row_and_column(upload_tmp: Path, column: str, value: str) -> None:
    agrees, disagrees = (value, "0") if column == "agrees" else ("0", value)
    err = refused(upload_tmp, "c.csv", polis_comments("1,p,0,0,0,ok", f"2,p,{agrees},{disagrees},0,bad"), "polis")
    assert (err.file, err.row, err.column) == ("c.csv", 2, column)
    assert len(err.message) < 300


# 8. what participants-votes.csv says that cannot be used


def test_votes_for_unknown_comments_and_odd_values_are_reported(upload_tmp: Path) -> None:
    unknown = [str(100 + i) for i in range(12)]
    header = ",".join([VOTES_HEADER, "1", "2", *unknown])
    votes = f"{header}\n7,0,0,0,0,0,1,2,{','.join(['1'] * 12)}\n8,0,0,0,0,0,-1,5,{','.join([''] * 12)}\n"
    loaded = load_uploaded("comments.csv", polis_comments("1,7,1,1,0,one", "2,8,0,0,0,two"), "polis", votes.encode())
    note = next(n for n in loaded.notes if "vote columns" in n)
    assert note.startswith("participants-votes.csv: 12 vote columns name comments that are not in comments.csv")
    assert ", ".join(unknown[:10]) in note and unknown[10] not in note
    assert "participants-votes.csv: 2 votes were not -1, 0 or 1 and were ignored" in loaded.notes
    one, two = loaded.contributions
    assert one.group_votes["opinion group A"] == Votes(agree=1, disagree=1, passed=0)
    assert two.group_votes == {} and two.votes == Votes(agree=0, disagree=0, passed=0)  # 2 and 5 count nowhere


def test_a_clean_votes_file_gets_no_warning_notes() -> None:
    loaded = load_contributions(POLIS)
    assert not any("ignored" in n for n in loaded.notes)


def test_a_vote_that_is_not_a_number_is_still_an_error(upload_tmp: Path) -> None:
    votes = f"{VOTES_HEADER},1\n7,0,0,0,0,0,yes\n".encode()
    err = refused(upload_tmp, "comments.csv", polis_comments("1,7,0,0,0,x"), "polis", votes)
    assert (err.file, err.row, err.column) == ("participants-votes.csv", 1, "1") and "whole number" in err.message


# 9. other hostile input


@pytest.mark.parametrize(
    ("name", "data", "fmt", "row", "column", "words"),
    [
        ("nul.csv", b"id,text\n1,a\x00b\n", "auto", 1, None, "NUL byte"),
        ("nul.json", b'[{"id": "1", "text": "a\\u0000b"}]', "auto", 1, "text", "NUL character"),
        ("nul.csv", b"comment-id,comment-body,moderated\x00\n", "polis", 0, None, "NUL byte"),
        ("bad16.csv", b"\xff\xfei\x00d\x00\x00\xd8", "csv", None, None, "not valid UTF-16 at byte"),
        ("latin1.csv", "id,text\n1,caf\u00e9\n".encode("latin-1"), "csv", 1, None, "byte 0xe9"),
        ("n.json", b"5", "auto", None, None, "not a number"),
        ("s.json", b'"contributions"', "auto", None, None, "not a string"),
        ("t.json", b"true", "auto", None, None, "not true/false"),
        ("o.json", b'{"items": []}', "auto", None, None, 'no "contributions" key'),
        ("c.json", b'{"contributions": 5}', "auto", None, None, '"contributions" must be a list'),
        ("e.json", b"[]", "auto", None, None, "no records"),
        ("r.jsonl", b'{"id": "a", "text": "x"}\n"just a string"\n', "auto", 2, None, "record is a string"),
        ("h.csv", b"id,text\n", "auto", None, None, "no data rows"),
        ("h.csv", POLIS_HEADER.encode(), "polis", None, None, "no comments"),
        ("d.csv", b"id,text,text\n1,a,b\n", "auto", 0, "text", "names this column twice"),
        ("d.csv", POLIS_HEADER.strip().encode() + b",agrees\n1,p,0,0,0,x,5\n", "polis", 0, "agrees", "twice"),
        ("id.json", b'[{"id": {"a": 1}, "text": "x"}]', "auto", 1, "id", "string or a number"),
        ("s.json", b'[{"id": "\\udc00", "text": "x"}]', "auto", 1, "id", "unpaired surrogate"),
        ("bom.csv", b"\xef\xbb\xbf", "auto", None, None, "empty"),
    ],
)
def test_hostile_input_is_a_located_input_error(
    upload_tmp: Path, name: str, data: bytes, fmt: str, row: int | None, column: str | None, words: str
) -> None:
    err = refused(upload_tmp, name, data, fmt)
    assert (err.file, err.row, err.column) == (name, row, column)
    assert words in err.message
    json.dumps({"detail": str(err)}).encode("utf-8")  # the HTTP layer can always send it


def test_bom_in_the_middle(upload_tmp: Path) -> None:
    # two files saved with a BOM each and then joined: the second BOM sits in a header name or the text
    loaded = load_uploaded("b.csv", b"id,\xef\xbb\xbftext\n1,a\xef\xbb\xbfb\n")
    assert [(c.id, c.text) for c in loaded.contributions] == [("1", "a\ufeffb")]


def test_a_million_columns_give_a_short_message_quickly(upload_tmp: Path) -> None:
    header = ",".join(f"c{i}" for i in range(1_000_000)).encode()
    err = refused(upload_tmp, "wide.csv", header + b"\n" + b"," * 999_999 + b"x\n")
    assert "no text column" in err.message and "999990 more" in err.message and len(err.message) < 400
    err = refused(upload_tmp, "wide.csv", b"text," + b",".join([b"x"] * 100_000) + b"\nhi\n")
    assert (err.row, err.column) == (0, "x") and "twice" in err.message


def test_very_long_column_names_are_clipped_in_errors(upload_tmp: Path) -> None:
    name = "q" * 100_000
    err = refused(upload_tmp, "q.csv", f"{name},{name}\n1,2\n".encode())
    assert err.column is not None and len(err.column) == MAX_KEY_CHARS and len(str(err)) < 400


FORMATS = ["auto", "csv", "json", "jsonl", "polis"]
NAMES = ["in.csv", "in.json", "in.jsonl", "in.tsv", "", "comments.csv"]


def _loads_or_refuses(name: str, data: bytes, fmt: str, votes: bytes | None = None) -> None:
    try:
        loaded = load_uploaded(name, data, fmt, votes)
    except InputError as err:
        assert "synth-upload" not in str(err)
        json.dumps({"detail": str(err)}).encode("utf-8")
    else:
        assert isinstance(loaded, LoadedInput)


FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
HEADS = [b"", b"id,text\n", b"[", b'{"id": 1, "text": ', POLIS_HEADER.encode()]
# Bytes that make up the formats' syntax, so that the fuzzing gets past decoding and into the readers.
SYNTAX = st.lists(
    st.sampled_from([b",", b"\n", b"\r", b'"', b"{", b"}", b"[", b"]", b":", b"\\u0000", b"\\ud800", b"\xef\xbb\xbf"])
    | st.sampled_from([b"id", b"text", b"comment-id", b"comment-body", b"moderated", b"agrees", b"-1", b"1e999"])
    | st.sampled_from([b"9" * 4400, b"x" * 201, b"\x00", b"\xff", b"\t", b" ", b"null", b"true", b'"contributions"'])
    | st.binary(max_size=8),
    max_size=40,
).map(b"".join)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(fmt: str, name: str, data: bytes) -> None:
    _loads_or_refuses(name, data, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(name=st.sampled_from(NAMES), head=st.sampled_from(HEADS), data=SYNTAX)
def test_fuzz_format_syntax(fmt: str, name: str, head: bytes, data: bytes) -> None:
    _loads_or_refuses(name, head + data, fmt)


@FUZZ
@given(votes=st.just(VOTES_HEADER.encode() + b",1,2\n") | st.just(b""), data=SYNTAX)
def test_fuzz_polis_votes(votes: bytes, data: bytes) -> None:
    _loads_or_refuses("comments.csv", polis_comments("1,7,0,0,0,x", "2,8,1,1,0,y"), "polis", votes + data)
