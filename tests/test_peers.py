"""Peers' formats in and out, on real data: every export's quotes are verbatim spans of their sources, every
contribution is accounted for, and what a peer reads back (its input columns) is what synth read."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from synth.cli import app
from synth.formats import load_contributions
from synth.formats.peers import export_files, kouchou_result, themefinder_mapping, tttc_report
from synth.pipeline import RunResult


def test_tttc_report_quotes_point_into_their_sources(planted_run: RunResult) -> None:
    s = planted_run.synthesis
    report = tttc_report(s, "Uniforms")
    assert report["data"][0] == "v0.2" and report["metadata"][0] == "v0.2"
    data = report["data"][1]
    sources = {x["id"]: x["data"][1]["text"] for x in data["sources"]}
    assert set(sources) == {c.id for c in s.contributions}
    quotes = [q for t in data["topics"] for st in t["subtopics"] for c in st["claims"] for q in c["quotes"]]
    assert quotes
    for q in quotes:
        ref = q["reference"]
        kind, span = ref["data"]
        assert kind == "text" and sources[ref["sourceId"]][span["startIdx"] : span["endIdx"]] == q["text"]
    themed = sum(len(t.segment_ids) for sec in s.sections for t in sec.themes if t.parent_id is None)
    assert len(quotes) == themed  # each themed passage once


def test_sensemaker_csv_reads_back_as_the_same_contributions(planted_run: RunResult, tmp_path: Path) -> None:
    s = planted_run.synthesis
    files = export_files(s, "sensemaker", "Uniforms")
    rows = list(csv.DictReader(io.StringIO(files["categorized.csv"])))
    assert {"participant_id", "survey_text", "topic", "opinion", "quote"} <= set(rows[0])
    texts = {c.id: c.text for c in s.contributions}
    assert all(r["quote"] in texts[r["comment_id"]] for r in rows)
    assert len(rows) == len(s.segments)  # every analysed passage, themed or 'Other'
    # Sensemaker's own input columns are read by synth: one contribution per distinct comment
    first = {r["comment_id"]: r for r in rows}
    path = tmp_path / "sensemaker-input.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["comment_id", "participant_id", "survey_text"])
        w.writerows([[cid, r["participant_id"], r["survey_text"]] for cid, r in first.items()])
    back = load_contributions(path)
    assert {c.id: c.text for c in back.contributions} == {cid: texts[cid] for cid in first}
    report = json.loads(files["report_data.json"])
    assert report["text"] and len(report["sub_contents"]) == len([t for t in s.sections[0].themes if not t.parent_id])


def test_themefinder_and_kouchou_account_for_everything(planted_run: RunResult) -> None:
    s = planted_run.synthesis
    mapping, themes = themefinder_mapping(s)
    lines = [json.loads(x) for x in mapping.splitlines()]
    analysed = {x.contribution_id for x in s.segments}
    assert {x["themefinder_id"] for x in lines} == analysed
    keys = {t["theme_key"] for t in themes}
    assert all(set(x["theme_keys"]) <= keys for x in lines) and [t["theme_key"] for t in themes][:2] == ["A", "B"]
    result = kouchou_result(s)
    assert len(result["arguments"]) == len(s.segments) and result["comment_num"] == len(s.contributions)
    ids = {c["id"] for c in result["clusters"]}
    for a in result["arguments"]:
        assert a["argument"] in result["comments"][a["comment_id"]]["comment"] and set(a["cluster_ids"]) <= ids


def test_peer_input_columns_are_read(tmp_path: Path) -> None:
    tttc = tmp_path / "tttc.csv"
    tttc.write_text("id,comment,interview\n1,Uniforms are expensive,Alice\n2,They help,Bob\n", "utf-8")
    kouchou = tmp_path / "kouchou.csv"
    kouchou.write_text("comment-id,comment-body,attribute_age\nk1,Uniforms are expensive,30s\n", "utf-8")
    a, b = load_contributions(tttc), load_contributions(kouchou)
    assert [(c.id, c.participant_id) for c in a.contributions] == [("1", "Alice"), ("2", "Bob")]
    assert b.contributions[0].attributes == {"attribute_age": "30s"}


def test_cli_and_api_exports(planted_run: RunResult, tmp_path: Path, api) -> None:  # noqa: ANN001
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "synthesis.json").write_text(planted_run.synthesis.model_dump_json(), "utf-8")
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "run"), "--to", "themefinder", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "mapping.jsonl").exists() and (tmp_path / "x" / "themes.json").exists()
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--to", "nope", "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "must be one of" in bad.output

    from tests.conftest import h, make_project, upload_polis, work

    pid, keys = make_project(api, "Export")
    upload_polis(api, pid, keys["platform"])
    rid = api.post(f"/v1/projects/{pid}/runs", json={}, headers=h(keys["platform"])).json()["id"]
    work(api)
    r = api.get(f"/v1/projects/{pid}/runs/{rid}/export/tttc", headers=h(keys["reader"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        report = json.loads(z.read("tttc-report.json"))
    assert report["data"][1]["title"].startswith("Export: synthesis")
    missing = api.get(f"/v1/projects/{pid}/runs/{rid}/export/pdf", headers=h(keys["reader"]))
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_consult_layout_is_read(planted_run: RunResult, tmp_path: Path) -> None:
    """A Consult input folder built from the planted fixture: two question parts, respondents' demographics."""
    s = planted_run.synthesis
    folder = tmp_path / "inputs"
    for n, group in ((1, "pro"), (2, "con")):
        part = folder / f"question_part_{n}"
        part.mkdir(parents=True)
        (part / "question.json").write_text(json.dumps({"question_number": n, "question_text": f"Q{n} {group}?"}))
        rows = [c for c in s.contributions if c.group == group][:5]
        (part / "responses.jsonl").write_text(
            "".join(json.dumps({"themefinder_id": k, "text": c.text}) + "\n" for k, c in enumerate(rows, start=1))
        )
    (folder / "respondents.jsonl").write_text(
        "".join(json.dumps({"themefinder_id": k, "demographic_data": {"region": f"R{k}"}}) + "\n" for k in range(1, 6))
    )
    loaded = load_contributions(folder)
    assert len(loaded.contributions) == 10 and loaded.contributions[0].id == "q1-1"
    assert {c.question for c in loaded.contributions} == {"Q1 pro?", "Q2 con?"}
    assert loaded.contributions[6].attributes == {"region": "R2"} and loaded.contributions[6].participant_id == "2"
