"""Erasure: a mistaken upload, or a participant's request that what they wrote be erased.

The text goes from the store (so from every future run), is masked in the snapshots and results of past
runs (synth.redact; the results then list the redaction in `metadata.redactions`), in the details of earlier
audit events that quoted it (their hashes cover a digest of the details, so the chain still verifies), in
stored idempotent responses and in this machine's embedding cache. Queued or running runs of the project are
cancelled: they hold the text in their snapshot and would store it again. One audit event records the
erasure: ids, counts and the reason, never the text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from synth.cache import Cache, text_key
from synth.config import SynthConfig, default_cache_dir
from synth.models import weights_sha256
from synth.pipeline.encoder import cache_key
from synth.pipeline.prepare import normalise
from synth.redact import mask, redact
from synth.schema import Synthesis
from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.results import forget
from synth.service.runs import cancel_run
from synth.store.models import ContributionRow, now


def erase(s: Session, project_id: str, rows: list[ContributionRow], actor: str, reason: str) -> dict:
    """Erase these contributions of the project everywhere it keeps them; returns what was touched."""
    ids = {r.external_id for r in rows}
    texts = [r.data["text"] for r in rows]
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for r in rows:
        s.delete(r)
    n_runs = n_results = 0
    cancelled, min_chars, passages = [], set(), {normalise(x) for x in texts}
    for run in repo.runs(s, project_id):
        min_chars.add(int((run.config or {}).get("min_segment_chars", SynthConfig().min_segment_chars)))
        snapshot = run.snapshot or {}
        held = [c for c in snapshot.get("contributions", []) if c.get("id") in ids]
        if not held:
            continue
        if run.status in ("queued", "running"):
            cancel_run(s, project_id, run.id, actor)
            cancelled.append(run.id)
        for c in held:
            c["text"] = mask(c["text"])
        snapshot.setdefault("redactions", []).append(
            {"at": at, "contribution_ids": sorted(ids & {c["id"] for c in held})}
        )
        run.snapshot = snapshot
        flag_modified(run, "snapshot")
        run.redacted_at = now()
        for row in repo.results(s, run.id):
            synthesis = Synthesis.model_validate_json(row.synthesis)
            passages |= {normalise(x.text) for x in synthesis.segments if x.contribution_id in ids}
            row.synthesis = redact(synthesis, ids, reason, at).model_dump_json()
            n_results += 1
        forget(run.id)
        n_runs += 1
    redacted_events = _redact_events(s, project_id, texts)
    _forget_responses(s, texts)
    _forget_cached(texts, passages, {SynthConfig().min_segment_chars} | min_chars)
    counts = {
        "contributions": len(rows),
        "runs": n_runs,
        "results": n_results,
        "audit_events": len(redacted_events),
    }
    after = {**counts, "contribution_ids": sorted(ids), "reason": reason, "redacted_events": redacted_events}
    if cancelled:
        after["cancelled_runs"] = cancelled
    audit(s, project_id, actor, "contributions.erase", f"{len(rows)} contribution(s)", None, after)
    return counts


def _redact_events(s: Session, project_id: str, texts: list[str]) -> list[int]:
    """Mask the erased texts, and any string of 3+ characters lying within one, in earlier events' details."""
    seqs = []
    for e in repo.events(s, project_id):
        before, after = _mask_json(e.before, texts), _mask_json(e.after, texts)
        if (before, after) != (e.before, e.after):
            e.before, e.after, e.redacted = before, after, True
            seqs.append(e.seq)
    return seqs


def _mask_json(value: object, texts: list[str]) -> object:
    if isinstance(value, dict):
        return {k: _mask_json(v, texts) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v, texts) for v in value]
    if isinstance(value, str) and len(value) >= 3:
        if any(value in t for t in texts):
            return mask(value)
        for t in texts:
            if t and t in value:
                value = value.replace(t, mask(t))
    return value


def _forget_responses(s: Session, texts: list[str]) -> None:
    """Stored idempotent responses (a preview holds contribution text) that quote an erased text."""
    needles = [json.dumps(t, ensure_ascii=False)[1:-1] for t in texts if t]
    for row in repo.idempotent_responses(s):
        if any(n in row.body for n in needles):
            s.delete(row)


def _forget_cached(texts: list[str], passages: set[str], min_chars: set[int]) -> None:
    """This machine's cache entries for the erased texts: their segmentation (which holds lemmas) and the
    vectors of their passages under every encoder runtime. The passages are those the stored results hold,
    so nothing is segmented again here (a worker on another machine keeps its own cache)."""
    cache = default_cache_dir()
    segments = Cache(cache, weights_sha256("nlp"), "segments")
    segments.delete([text_key(t, f"min_chars={m}") for m in sorted(min_chars) for t in texts])
    for runtime in ("onnx", "onnx-int8", "torch"):
        Cache(cache, cache_key(runtime), "embeddings").delete([text_key(x) for x in sorted(passages)])
