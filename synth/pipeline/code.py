"""Deductive coding: map every passage to the themes of a given codebook (the agenda, a previous round's codes),
with "fits none" and "cannot decide" kept apart, and offer the remainder's own groups as candidate new codes.

Scores are cosines after the section's mean vector is taken out of both sides: what every passage of a section
shares (the motion, the question's words) would otherwise lift every code alike. On ArgKP train (key points as
the codebook) this raised strict mAP from 0.652 to 0.690 over plain cosine (eval/RESULTS.md, "Codebook").
A passage is coded when its best score reaches `code_assign` (0.35: 75% precision on ArgKP train pairs); codes
within `code_margin` of the best that also reach it are coded too; a best score under `code_none` fits none;
anything between is "cannot decide", for a person.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from synth.config import SynthConfig
from synth.formats.common import InputError, clean_header, decode_utf8
from synth.pipeline.cluster import communities, unit
from synth.pipeline.label import SectionData
from synth.pipeline.titles import choose_title
from synth.schema import Citation, Code, CodeAssignment, CodeCandidate, Coding

MAX_CODES = 500


def read_codebook(path: Path) -> list[Code]:
    """CSV (id, name, description, examples separated by '|') or JSON (a list of such objects, or
    {"codes": [...]}); names are required, ids default to c1, c2, ..."""
    file = str(path)
    text = decode_utf8(path.read_bytes(), file)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(file, None, None, f"not JSON: {exc.msg}") from None
        items = data.get("codes") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InputError(file, None, None, 'a codebook is a list of codes, or {"codes": [...]}')
        rows = [(n, x) for n, x in enumerate(items, start=1)]
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = clean_header(next(reader, []), file)
        rows = [(n, dict(zip(header, values, strict=False))) for n, values in enumerate(reader, start=1) if values]
    codes: list[Code] = []
    for n, item in rows:
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise InputError(file, n, "name", "every code needs a name")
        examples = item.get("examples") or []
        if isinstance(examples, str):
            examples = [e.strip() for e in examples.split("|") if e.strip()]
        codes.append(
            Code(
                id=str(item.get("id") or f"c{n}").strip(),
                name=str(item["name"]).strip(),
                description=str(item.get("description") or "").strip(),
                examples=[str(e) for e in examples][:20],
            )
        )
    if not codes or len(codes) > MAX_CODES:
        raise InputError(file, None, None, f"a codebook needs 1 to {MAX_CODES} codes, not {len(codes)}")
    ids = [c.id for c in codes]
    if len(set(ids)) != len(ids):
        raise InputError(file, None, "id", "two codes have the same id")
    return codes


def code_text(code: Code) -> str:
    return " ".join([code.name + ".", code.description, *code.examples]).strip()


def scores(vectors: np.ndarray, code_vectors: np.ndarray) -> np.ndarray:
    """Passage x code cosines with the section's mean vector taken out of both sides."""
    mean = vectors.mean(axis=0)
    return np.round(unit(vectors - mean) @ unit(code_vectors - mean).T, 4)


def code_section(data: SectionData, codes: list[Code], config: SynthConfig) -> Coding:
    """Every passage of the section: coded (with its score per code), fits none, or cannot decide; plus the
    groups the passages that fit none form, as candidate new codes with a member's words as their title."""
    if data.embed is None or not len(data.segments):
        return Coding(codes=codes)
    assign = 0.35 if config.code_assign is None else config.code_assign
    floor = 0.15 if config.code_none is None else config.code_none
    margin = 0.05 if config.code_margin is None else config.code_margin
    sims = scores(data.vectors, data.embed([code_text(c) for c in codes]))
    assignments: list[CodeAssignment] = []
    none, undecided = [], []
    for i, seg in enumerate(data.segments):
        best = float(sims[i].max())
        if best >= assign:
            for j in np.flatnonzero(sims[i] >= max(assign, best - margin)):
                assignments.append(CodeAssignment(code_id=codes[j].id, segment_id=seg.id, score=float(sims[i, j])))
        elif best < floor:
            none.append(i)
        else:
            undecided.append(i)
    candidates: list[CodeCandidate] = []
    if none:
        idx = np.array(none)
        groups = communities(data.vectors[idx], config, config.cluster_size_for(len(data.segments)))
        for g in range(int(groups.max()) + 1 if len(groups) else 0):
            members = idx[groups == g]
            segs = [data.segments[i] for i in members]
            title = choose_title([s.text for s in segs], data.vectors[members], set(), embed=data.embed)
            if title is None:
                continue
            candidates.append(
                CodeCandidate(
                    title=title.text,
                    title_citation=Citation.of(segs[title.segment], title.start, title.end),
                    segment_ids=[s.id for s in segs],
                )
            )
    return Coding(
        codes=codes,
        assignments=assignments,
        fits_none=[data.segments[i].id for i in none],
        undecided=[data.segments[i].id for i in undecided],
        candidates=candidates,
    )
