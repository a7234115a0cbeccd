"""A synthesis in the peers' own formats, so their viewers and pipelines can show or continue a synth run.

Shapes follow each peer's source as listed in ../shared/PEER-FORMATS.md (studied 2026-11-27):
- Talk to the City report JSON v0.2: AIObjectives/tttc-light-js, common/schema/index.ts (pipelineOutput,
  reportDataObj, topic, subtopic, claim, quote, reference, source; checked against commit 08bffb7c);
- Sensemaker categorized CSV and report_data.json: Jigsaw-Code/sensemaking-tools, src/categorization_runner.py and
  src/generate_report_text/generate_report_text.py;
- themefinder / Consult mapping.jsonl and themes.json: i-dot-ai/consult, pipeline-mapping/assign_themes_script.py;
- kouchou-ai hierarchical_result.json: digitaldemocracy2030/kouchou-ai, packages/report-schema/src/index.ts.
Every quote is a verbatim span of its source with its character offsets, as synth's own output.
"""

from __future__ import annotations

import csv
import io
import json
import string

from synth.schema import Section, Synthesis, Theme

EXPORTS = ("tttc", "sensemaker", "themefinder", "kouchou")
# Talk to the City's topicColors (common/schema/index.ts): its viewer knows these names
_COLOURS = ("violet", "blueSea", "blueSky", "greenLeaf", "greenLime", "yellow", "red", "purple", "brown")


def _tops(sec: Section) -> list[Theme]:
    return sorted((t for t in sec.themes if t.parent_id is None), key=lambda t: (-t.n_contributions, t.id))


def _subs(sec: Section, theme: Theme) -> list[Theme]:
    return [t for t in sec.themes if t.parent_id == theme.id]


def _summary_text(sec: Section, scope: str) -> str:
    summary = next((x for x in sec.summaries if x.scope == scope), None)
    return " ".join(x.text for x in summary.sentences if x.status != "rejected") if summary else ""


def _title(t: Theme) -> str:
    return t.drafted_title.text if t.drafted_title else (t.title or t.label)


def tttc_report(s: Synthesis, title: str) -> dict:
    """Talk to the City v0.2: topics (themes) -> subtopics (sub-themes, or the theme itself) -> claims (one per
    member passage, its words as the claim and its quote, with startIdx/endIdx in the source)."""
    segs = {x.id: x for x in s.segments}
    people = {c.id: c.participant_id or "Anonymous" for c in s.contributions}
    topics = []
    number = 0
    for sec in s.sections:
        for k, theme in enumerate(_tops(sec)):
            subs = _subs(sec, theme)
            in_subs = {sid for sub in subs for sid in sub.segment_ids}
            rest = [sid for sid in theme.segment_ids if sid not in in_subs]
            parts = [(sub.id, _title(sub), sub.segment_ids) for sub in subs]
            if rest or not subs:  # members in no sub-theme are claims too
                parts.append(
                    (f"{theme.id}.other" if subs else theme.id, "Other points" if subs else _title(theme), rest)
                )
            subtopics = []
            for part_id, part_title, members in parts:
                claims = []
                for sid in members:
                    seg = segs[sid]
                    number += 1
                    quote = {
                        "id": f"q{number}",
                        "text": seg.text,
                        "reference": {
                            "id": f"r{number}",
                            "sourceId": seg.contribution_id,
                            "interview": people[seg.contribution_id],
                            "data": ["text", {"startIdx": seg.start, "endIdx": seg.end}],
                        },
                    }
                    claims.append({"id": f"c{number}", "title": seg.text, "number": number, "quotes": [quote],
                                   "similarClaims": []})  # fmt: skip
                subtopics.append({"id": part_id, "title": part_title, "description": "", "claims": claims})
            topics.append(
                {
                    "id": theme.id,
                    "title": _title(theme),
                    "description": _summary_text(sec, theme.id),
                    "topicColor": _COLOURS[k % len(_COLOURS)],
                    "subtopics": subtopics,
                }
            )
    sources = [{"id": c.id, "interview": people[c.id], "data": ["text", {"text": c.text}]} for c in s.contributions]
    overview = " ".join(_summary_text(sec, "overview") for sec in s.sections).strip()
    data = {
        "title": title,
        "description": overview,
        "questionAnswers": [
            {"question": sec.question, "answer": _summary_text(sec, "overview")} for sec in s.sections if sec.question
        ],  # fmt: skip
        "topics": topics,
        "sources": sources,
        "date": "",
    }
    meta = {"startTimestamp": 0, "duration": 0, "totalCost": "", "author": f"synth {s.metadata.synth_version}"}
    return {"data": ["v0.2", data], "metadata": ["v0.2", meta]}


def sensemaker_categorized(s: Synthesis) -> str:
    """Sensemaker's categorized CSV: the input columns (participant_id, survey_text) then topic, opinion and
    quote, one row per passage; passages in no theme are topic and opinion 'Other'."""
    texts = {c.id: c for c in s.contributions}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["participant_id", "survey_text", "topic", "opinion", "quote", "comment_id"])
    for sec in s.sections:
        place: dict[str, tuple[str, str]] = {}
        for theme in _tops(sec):
            for sid in theme.segment_ids:
                place[sid] = (_title(theme), _title(theme))
            for sub in _subs(sec, theme):
                for sid in sub.segment_ids:
                    place[sid] = (_title(theme), _title(sub))
        unassigned = set(sec.unassigned_segment_ids)
        for seg in s.segments:
            if seg.id in place or seg.id in unassigned:
                c = texts[seg.contribution_id]
                topic, opinion = place.get(seg.id, ("Other", "Other"))
                writer.writerow([c.participant_id or c.id, c.text, topic, opinion, seg.text, c.id])
    return out.getvalue()


def sensemaker_report(s: Synthesis) -> dict:
    """report_data.json: {text, sub_contents: [{title, text, sub_contents: [{title, text}]}]}."""
    subs = []
    for sec in s.sections:
        for theme in _tops(sec):
            children = [{"title": _title(x), "text": f"{x.n_contributions} contributions."} for x in _subs(sec, theme)]
            entry = {"title": _title(theme), "text": _summary_text(sec, theme.id)}
            subs.append({**entry, "sub_contents": children} if children else entry)
    return {"text": " ".join(_summary_text(sec, "overview") for sec in s.sections).strip(), "sub_contents": subs}


def _keys(n: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ...: themefinder's topic ids."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(n)]


def themefinder_mapping(s: Synthesis) -> tuple[str, list[dict]]:
    """Consult's mapping.jsonl ({themefinder_id, theme_keys[]} for every analysed contribution; no theme: []) and
    themes.json ([{theme_key, theme_name, theme_description}])."""
    themes: list[dict] = []
    keys_of: dict[str, list[str]] = {}
    tops = [(sec, t) for sec in s.sections for t in _tops(sec)]
    for key, (sec, theme) in zip(_keys(len(tops)), tops, strict=True):
        themes.append(
            {"theme_key": key, "theme_name": _title(theme), "theme_description": _summary_text(sec, theme.id)}
        )
        for cid in theme.contribution_ids:
            keys_of.setdefault(cid, []).append(key)
    analysed = list(dict.fromkeys(x.contribution_id for x in s.segments))
    lines = [json.dumps({"themefinder_id": cid, "theme_keys": keys_of.get(cid, [])}) for cid in analysed]
    return "\n".join(lines) + "\n", themes


def kouchou_result(s: Synthesis) -> dict:
    """kouchou-ai hierarchical_result.json: arguments (passages) with their cluster path, clusters at levels 1
    (themes) and 2 (sub-themes) under the root '0'. Coordinates are 0: synth draws its own map."""
    arguments, clusters = [], [{"level": 0, "id": "0", "label": "all", "takeaway": "", "value": 0, "parent": ""}]
    path: dict[str, list[str]] = {}
    k = 0
    for sec in s.sections:
        for theme in _tops(sec):
            k += 1
            tid = f"1_{k}"
            clusters.append({"level": 1, "id": tid, "label": _title(theme), "takeaway": _summary_text(sec, theme.id),
                             "value": len(theme.segment_ids), "parent": "0"})  # fmt: skip
            for sid in theme.segment_ids:
                path[sid] = ["0", tid]
            for j, sub in enumerate(_subs(sec, theme), start=1):
                clusters.append({"level": 2, "id": f"2_{k}_{j}", "label": _title(sub), "takeaway": "",
                                 "value": len(sub.segment_ids), "parent": tid})  # fmt: skip
                for sid in sub.segment_ids:
                    path[sid] = ["0", tid, f"2_{k}_{j}"]
    texts = {c.id: c for c in s.contributions}
    for seg in s.segments:
        c = texts[seg.contribution_id]
        arguments.append(
            {
                "arg_id": seg.id,
                "argument": seg.text,
                "comment_id": seg.contribution_id,
                "x": 0.0,
                "y": 0.0,
                "p": 0,
                "cluster_ids": path.get(seg.id, ["0"]),
                "attributes": dict(c.attributes) or None,
            }  # fmt: skip
        )
    clusters[0]["value"] = len(arguments)
    return {
        "arguments": arguments,
        "clusters": clusters,
        "comments": {c.id: {"comment": c.text} for c in s.contributions},
        "propertyMap": {},
        "translations": {},
        "overview": " ".join(_summary_text(sec, "overview") for sec in s.sections).strip(),
        "config": {"synth_version": s.metadata.synth_version},
        "comment_num": len(s.contributions),
    }


def export_files(s: Synthesis, to: str, title: str) -> dict[str, str]:
    """File name -> content for one peer format (see EXPORTS)."""
    if to == "tttc":
        return {"tttc-report.json": json.dumps(tttc_report(s, title), ensure_ascii=False, indent=1)}
    if to == "sensemaker":
        return {
            "categorized.csv": sensemaker_categorized(s),
            "report_data.json": json.dumps(sensemaker_report(s), ensure_ascii=False, indent=1),
        }
    if to == "themefinder":
        mapping, themes = themefinder_mapping(s)
        return {"mapping.jsonl": mapping, "themes.json": json.dumps(themes, ensure_ascii=False, indent=1)}
    if to == "kouchou":
        return {"hierarchical_result.json": json.dumps(kouchou_result(s), ensure_ascii=False, indent=1)}
    raise ValueError(f"unknown export format {to!r}: one of {', '.join(EXPORTS)}")
