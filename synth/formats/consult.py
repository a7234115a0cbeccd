"""i.AI Consult's input layout (i-dot-ai/consult, backend/consultations/models.py; see ../shared/PEER-FORMATS.md):
a folder with `question.json` {question_number, question_text}, `responses.jsonl` {themefinder_id, text} and
optionally `respondents.jsonl` {themefinder_id, demographic_data{}}; several questions as `question_part_N/`
subfolders (respondents.jsonl beside them or in each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synth.formats.common import (
    MAX_VALUE_CHARS,
    InputError,
    LoadedInput,
    Namer,
    build,
    check_value,
    decode_utf8,
    sha256_bytes,
)
from synth.schema import Contribution


def question_folders(path: Path) -> list[Path]:
    """The folders holding a question.json and responses.jsonl: the folder itself or its question_part_N."""
    if not path.is_dir():
        return []
    if (path / "question.json").is_file() and (path / "responses.jsonl").is_file():
        return [path]
    parts = [p for p in path.glob("question_part_*") if (p / "question.json").is_file()]
    return sorted(parts, key=lambda p: (len(p.name), p.name))


def _jsonl(path: Path, shown: Namer) -> list[tuple[int, dict[str, Any]]]:
    file = shown(path)
    out = []
    for n, line in enumerate(decode_utf8(path.read_bytes(), file).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(file, n, None, f"not JSON: {exc.msg}") from None
        if not isinstance(rec, dict):
            raise InputError(file, n, None, "each line must be a JSON object")
        out.append((n, rec))
    return out


def read_consult(path: Path, shown: Namer = str) -> LoadedInput:
    contributions: list[Contribution] = []
    digest = []
    for folder in question_folders(path):
        qfile = folder / "question.json"
        try:
            question = json.loads(decode_utf8(qfile.read_bytes(), shown(qfile)))
        except json.JSONDecodeError as exc:
            raise InputError(shown(qfile), None, None, f"not JSON: {exc.msg}") from None
        text = question.get("question_text") if isinstance(question, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError(shown(qfile), None, "question_text", "is missing")
        number = question.get("question_number", folder.name)
        people_file = next((p for p in (folder / "respondents.jsonl", path / "respondents.jsonl") if p.is_file()), None)
        people = {str(r.get("themefinder_id")): r.get("demographic_data") or {} for _, r in
                  (_jsonl(people_file, shown) if people_file else [])}  # fmt: skip
        rfile = folder / "responses.jsonl"
        file = shown(rfile)
        for row, rec in _jsonl(rfile, shown):
            rid, body = rec.get("themefinder_id"), rec.get("text")
            if rid is None or not isinstance(body, str):
                raise InputError(file, row, None, "needs themefinder_id and a text string")
            attrs = people.get(str(rid), {})
            contributions.append(
                build(
                    Contribution,
                    file,
                    row,
                    {"text": "text", "id": "themefinder_id"},
                    id=f"q{number}-{rid}",
                    text=check_value(body, file, row, "text", "text", None),
                    question=text.strip(),
                    participant_id=str(rid),
                    attributes={
                        str(k): check_value(str(v), file, row, str(k), "attribute", MAX_VALUE_CHARS)
                        for k, v in attrs.items()
                        if v is not None
                    }
                    if isinstance(attrs, dict)
                    else {},
                    source_row=row,
                )  # fmt: skip
            )
        digest.append(sha256_bytes(qfile.read_bytes() + rfile.read_bytes()))
    if not contributions:
        raise InputError(shown(path), None, None, "a Consult folder with no responses")
    note = f"Consult layout: {len(question_folders(path))} question(s), {len(contributions)} responses"
    return LoadedInput(contributions, [], shown(path), sha256_bytes("".join(digest).encode()), [note])
