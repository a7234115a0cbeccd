"""Spreadsheets as a secretariat has them: a wide .xlsx (one row per respondent, one column per question), a
semicolon CSV with a BOM, UTF-16, 'Response ID'; built from the real fixtures (ArgKP arguments, Polis comments)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from synth.cli import app
from synth.config import SynthConfig
from synth.formats import ColumnMap, InputError, load_contributions
from synth.pipeline import run
from tests.conftest import PLANTED, POLIS

Q1 = "Q1: What should the school do about uniforms?"
Q2 = "Q2: What worries you most about uniforms?"
HEADER = ["Response ID", Q1, Q2, "Age band", "Region"]


def wide_rows() -> list[list[str]]:
    """40 respondents: Q1 answered by the 'con' arguments, Q2 by the 'pro' ones; every 7th Q2 left blank."""
    rows = list(csv.DictReader(PLANTED.open()))
    con = [r["text"] for r in rows if r["group"] == "con"][:40]
    pro = [r["text"] for r in rows if r["group"] == "pro"][:40]
    bands, regions = ["16-24", "25-44", "45-64", "65+"], ["North", "South", "East"]
    return [[f"R{n + 1:03d}", con[n], "" if n % 7 == 3 else pro[n], bands[n % 4], regions[n % 3]] for n in range(40)]


@pytest.fixture
def wide_xlsx(tmp_path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in wide_rows():
        sheet.append(row)
    path = tmp_path / "assembly.xlsx"
    book.save(path)
    return path


def test_wide_xlsx_is_one_contribution_per_answer(wide_xlsx: Path) -> None:
    loaded = load_contributions(wide_xlsx)
    rows = wide_rows()
    answers = [(r[0], k, r[k]) for r in rows for k in (1, 2) if r[k]]
    assert len(loaded.contributions) == len(answers) == 80 - 6
    first = loaded.contributions[0]
    assert (first.id, first.question, first.participant_id) == ("R001/q1", Q1, "R001")
    assert first.attributes == {"Age band": "16-24", "Region": "North"}
    assert [c.text for c in loaded.contributions] == [
        a[2] for a in sorted(answers, key=lambda a: (int(a[0][1:]), a[1]))
    ]
    assert any("6 blank answers are not contributions" in n for n in loaded.notes)
    # one section per question, themes in each
    s = run(loaded, SynthConfig(), cache_dir=None).synthesis
    assert [sec.question for sec in s.sections] == [Q1, Q2]
    assert all(any(t.parent_id is None for t in sec.themes) for sec in s.sections)


def test_semicolon_csv_with_bom_and_utf16_read_like_the_comma_file(tmp_path: Path) -> None:
    comma = load_contributions(POLIS / "comments.csv", "csv")
    rows = list(csv.DictReader((POLIS / "comments.csv").open(encoding="utf-8")))
    for name, encoding in (("semi.csv", "utf-8-sig"), ("semi16.csv", "utf-16")):
        path = tmp_path / name
        with path.open("w", encoding=encoding, newline="") as f:
            writer = csv.writer(f, delimiter=";")
            writer.writerow(["Response ID", "Comment", "Votes for"])  # as a secretariat's Excel in Europe saves
            writer.writerows([[r["comment-id"], r["comment-body"], r["agrees"]] for r in rows])
        loaded = load_contributions(path)
        assert [(c.id, c.text) for c in loaded.contributions] == [(c.id, c.text) for c in comma.contributions]
        assert "fields separated by semicolons" in loaded.notes


def test_response_id_and_respondent_columns_are_found(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("Response ID;Respondent;Answer\nA-1;p1;Uniforms cost too much\nA-2;p2;They help\n", "utf-8")
    loaded = load_contributions(path)
    assert [(c.id, c.participant_id) for c in loaded.contributions] == [("A-1", "p1"), ("A-2", "p2")]


def test_bad_spreadsheets_are_located_errors(tmp_path: Path, wide_xlsx: Path) -> None:
    empty = tmp_path / "empty.xlsx"
    Workbook().save(empty)
    with pytest.raises(InputError, match="every sheet is empty"):
        load_contributions(empty)
    with pytest.raises(InputError, match="column 'Q3: missing': the text column is not there"):
        load_contributions(wide_xlsx, columns=ColumnMap(texts=(Q1, "Q3: missing")))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(InputError, match="cannot be read as a spreadsheet"):
        load_contributions(broken)


def test_cli_reads_a_wide_file_and_refuses_an_option_given_twice(
    tmp_path: Path, wide_xlsx: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_CACHE_DIR", str(cache_dir))
    twice = CliRunner().invoke(
        app, ["run", str(wide_xlsx), "--out", str(tmp_path / "x"), "--id-col", "a", "--id-col", "b"]
    )
    assert twice.exit_code == 2 and "--id-col was given 2 times" in twice.output
    result = CliRunner().invoke(
        app, ["run", str(wide_xlsx), "--out", str(tmp_path / "o"), "--text-col", Q1, "--text-col", Q2]
    )
    assert result.exit_code == 0, result.output
    assert "74 contributions" in result.output


def test_api_preview_then_mapped_upload(api, wide_xlsx: Path) -> None:  # noqa: ANN001
    """Preview with a mapping (nothing stored), then the same body imports; bad mappings are 422s naming the
    column."""
    from tests.conftest import h, make_project

    pid, keys = make_project(api, "Wide")
    data = wide_xlsx.read_bytes()
    files = {"file": ("assembly.xlsx", data, "application/octet-stream")}
    mapping = {"id_column": "Response ID", "text_column": [Q1, Q2], "attribute_column": ["Region"]}
    r = api.post(f"/v1/projects/{pid}/contributions/preview", files=files, data=mapping, headers=h(keys["platform"]))
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["columns"] == HEADER and preview["roles"]["text"] == [Q1, Q2] and preview["roles"]["wide"]
    assert preview["roles"]["attributes"] == ["Region"] and preview["n_contributions"] == 74
    assert preview["first"][0]["attributes"] == {"Region": "North"}
    stored = api.get(f"/v1/projects/{pid}/contributions", headers=h(keys["reader"])).json()["items"]
    assert stored == []  # a preview stores nothing
    r = api.post(f"/v1/projects/{pid}/contributions", files=files, data=mapping, headers=h(keys["platform"]))
    assert r.status_code == 200 and r.json()["created"] == 74
    one = api.get(f"/v1/projects/{pid}/contributions/R001%2Fq2", headers=h(keys["reader"])).json()
    assert one["question"] == Q2 and one["participant_id"] == "R001"

    for bad, column in (
        ({"text_column": "Q9: not there"}, "Q9: not there"),
        ({"id_column": ["Response ID", "Region"]}, "id_column"),
        ({"id_column": "Response ID", "text_column": "Response ID"}, "Response ID"),
    ):
        r = api.post(f"/v1/projects/{pid}/contributions", files=files, data=bad, headers=h(keys["platform"]))
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (bad, r.text)
        assert r.json()["column"] == column
