"""Redaction of erased contributions from a finished synthesis: a pure function over the Synthesis.

The erased text, and every quote, title, label or sentence drawn from it, is replaced by as many █ as it had
characters. Lengths are kept so that every citation (`text[start:end] == quote`) still resolves and the
result still verifies; counts stand as they were when the run was made. Other contributions are untouched,
even where they say the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from synth.schema import Redaction, Synthesis

BLOCK = "█"
# Free text a quote can appear in (ids, enums and numbers are never rewritten).
TEXT_KEYS = frozenset({"text", "title", "label", "statement", "original_text", "reason"})


def mask(text: str) -> str:
    return BLOCK * len(text)


def redact(synthesis: Synthesis, contribution_ids: set[str], reason: str, at: str | None = None) -> Synthesis:
    """A copy of `synthesis` with the words of `contribution_ids` masked, and a Redaction in its metadata."""
    data = synthesis.model_dump(mode="json")
    erased: set[str] = set()
    for c in data["contributions"]:
        if c["id"] in contribution_ids:
            erased.add(c["text"])
            c["text"] = mask(c["text"])
    for x in data["segments"]:
        if x["contribution_id"] in contribution_ids:
            erased.add(x["text"])
            x["text"] = mask(x["text"])
    quotes = set(erased)
    _walk(data["sections"], contribution_ids, quotes, lambda _: None)  # gather quotes first
    ordered = sorted((q for q in quotes if q), key=len, reverse=True)
    data["sections"] = _walk(data["sections"], contribution_ids, quotes, lambda s: _mask_within(s, ordered))
    stamp = at or datetime.now(UTC).isoformat(timespec="seconds")
    note = Redaction(at=stamp, contribution_ids=sorted(contribution_ids), reason=reason)
    data["metadata"].setdefault("redactions", []).append(note.model_dump(mode="json"))
    return Synthesis.model_validate(data)


def _cites_erased(node: dict, ids: set[str]) -> bool:
    cited = [node.get("title_citation"), node.get("statement_citation")]
    cited += list(node.get("citations") or []) + list(node.get("quotes") or [])
    return any(isinstance(c, dict) and c.get("contribution_id") in ids for c in cited)


def _walk(node: Any, ids: set[str], quotes: set[str], rewrite: Any) -> Any:
    """Mask erased citations' quotes (collecting them), then rewrite the free text of objects that cite an
    erased contribution or cite nothing with `rewrite`; a string of an object that cites an erased
    contribution and lies within one of its quotes (a label cut from the title) is masked whole."""
    if isinstance(node, list):
        return [_walk(x, ids, quotes, rewrite) for x in node]
    if not isinstance(node, dict):
        return node
    if "contribution_id" in node and "quote" in node:  # a Citation
        if node["contribution_id"] in ids:
            quotes.add(node["quote"])
            node["quote"] = mask(node["quote"])
        return node
    own = _cites_erased(node, ids)
    # text that cites its sources is rewritten only if one of them is erased: a sentence quoting someone else
    # who said the same words keeps them
    cites = any(node.get(k) for k in ("citations", "title_citation", "statement_citation", "quotes"))
    for key, value in node.items():
        if isinstance(value, str) and key in TEXT_KEYS and (own or not cites):
            masked = rewrite(value)
            if isinstance(masked, str):
                node[key] = masked
                if own and len(value) >= 3 and any(value in q for q in quotes):
                    node[key] = mask(value)
        elif isinstance(value, list | dict):
            node[key] = _walk(value, ids, quotes, rewrite)
    return node


def _mask_within(text: str, quotes: list[str]) -> str:
    for q in quotes:
        if q in text:
            text = text.replace(q, mask(q))
    return text
