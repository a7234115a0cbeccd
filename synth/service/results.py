"""Results and their revisions: read (parsed once, kept in a small thread-safe LRU, since revisions never
change), named for reports, and edited by review (each edit a new revision and an audit event)."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from synth.config import SynthConfig, default_cache_dir
from synth.edits import Edit, EditError, RevertToRevision, Vectors, apply_edit, sentence_index
from synth.schema import Synthesis
from synth.service import repository as repo
from synth.service.audit import audit
from synth.service.errors import NotFound
from synth.store.models import Result


class _LRU:
    """A bounded map shared by request threads; a lock guards every access."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def put(self, key: object, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_make(self, key: object, make):  # noqa: ANN001, ANN202 - make: () -> value
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: parsing a large result must not block other readers
        self.put(key, value)
        return value

    def drop(self, stale) -> None:  # noqa: ANN001 - stale: (key) -> bool
        with self._lock:
            for key in [k for k in self._items if stale(k)]:
                del self._items[key]


_parsed = _LRU(16)
_vectors = _LRU(8)


def get_result(s: Session, project_id: str, run_id: str, revision: int | None = None) -> tuple[Result, Synthesis]:
    """The stored row and the Synthesis of a revision (the newest when `revision` is None)."""
    run = repo.run(s, project_id, run_id)
    found = repo.result_key(s, run.id, revision)
    if found is None:
        raise NotFound(f"run {run_id} has no result" + (f" revision {revision}" if revision is not None else ""))
    row = repo.result_row(s, found[1])
    return row, _parsed.get_or_make((run_id, found[0], row.pk), lambda: Synthesis.model_validate_json(row.synthesis))


def load_result(s: Session, project_id: str, run_id: str, revision: int | None = None) -> tuple[int, Synthesis]:
    """(revision, Synthesis): what every reader of a result calls. The Synthesis is shared: never modify it."""
    row, synthesis = get_result(s, project_id, run_id, revision)
    return row.revision, synthesis


def forget(run_id: str) -> None:
    """Drop a run's parsed results and vectors (after its stored results were rewritten, e.g. redacted)."""
    for cache in (_parsed, _vectors):
        cache.drop(lambda key: key == run_id or (isinstance(key, tuple) and key[0] == run_id))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """An edit copies a whole synthesis (tens of thousands of small objects), which sets off Python's full
    cycle collections: 200-300 ms pauses in one edit out of ten. The copy makes no cycles, so the collector
    waits until it is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_vectors(run_id: str, runtime: str) -> Vectors:
    """One Vectors per run (its passages never change), so a run's edits embed each passage at most once."""
    return _vectors.get_or_make(run_id, lambda: Vectors.packaged(default_cache_dir(), runtime))


def report_title(s: Session, project_id: str, run_id: str, revision: int) -> str:
    """What a report is called: the project's name, the revision and the day it was made, never an internal id."""
    project = repo.project(s, project_id)
    made = repo.result_made_at(s, run_id, revision)
    day = f", {made:%d %B %Y}" if made else ""
    edited = f", after {revision} review edit{'s' if revision != 1 else ''}" if revision else ""
    return f"{project.name}: synthesis{edited}{day}"


def revisions(
    s: Session, project_id: str, run_id: str, after: int | None = None, limit: int | None = None
) -> list[Result]:
    run = repo.run(s, project_id, run_id)
    return repo.results(s, run.id, after, limit)


def review(s: Session, project_id: str, run_id: str, edit: Edit, actor: str) -> tuple[int, Synthesis]:
    """Apply one edit to the newest revision; store the next revision; record who changed what."""
    row, current = get_result(s, project_id, run_id)
    if isinstance(edit, RevertToRevision):  # undo: an earlier revision again, as a new revision; nothing is lost
        target = row.revision - 1 if edit.revision is None else edit.revision
        if not 0 <= target < row.revision:
            raise EditError(f"revision {target} is not an earlier revision of this run (newest: {row.revision})")
        updated = get_result(s, project_id, run_id, target)[1]
        edit = edit.model_copy(update={"revision": target})
    else:
        config = SynthConfig(**repo.run(s, project_id, run_id).config)
        with _no_cycle_collection():
            updated = apply_edit(current, edit, config, run_vectors(run_id, config.encoder))
    stored = Result(run_id=run_id, revision=row.revision + 1, synthesis=updated.model_dump_json(), timings={})
    s.add(stored)
    s.flush()
    # the next read (the page this edit lands on, the next edit) finds it parsed; a rolled-back write leaves
    # an entry nothing looks up, since lookups go through the stored rows' keys
    _parsed.put((run_id, stored.revision, stored.pk), updated)
    audit(
        s,
        project_id,
        actor,
        f"review.{edit.action}",
        f"run {run_id} revision {row.revision + 1}",
        _edit_before(current, edit),
        edit.model_dump(mode="json"),
    )
    return row.revision + 1, updated


def _edit_before(s: Synthesis, edit: Edit) -> dict:
    """What the edit changes, as it was: enough for a secretariat to see before and after."""
    themes = {t.id: t for sec in s.sections for t in sec.themes}
    data = edit.model_dump()
    before: dict = {"revision_labels": {}}
    if data.get("action") == "revert_to_revision":
        before["revision"] = "the newest"
    for key in ("theme_id", "to_theme_id"):
        if data.get(key) in themes:
            t = themes[data[key]]
            before["revision_labels"][t.id] = t.label
            before.setdefault("members", {})[t.id] = t.contribution_ids[:200]
    for tid in data.get("theme_ids", []):
        if tid in themes:
            before["revision_labels"][tid] = themes[tid].label
    if data.get("action") == "review_sentence":
        summary = next((x for x in s.sections[edit.section].summaries if x.scope == edit.scope), None)
        try:
            sentence = summary.sentences[sentence_index(summary, edit)]
            before["sentence"] = {"id": sentence.id, "text": sentence.text, "status": sentence.status}
        except EditError:
            pass
    if data.get("action") == "code_contributions":
        wanted = set(edit.contribution_ids)
        owner = {x.id: x.contribution_id for x in s.segments}
        codes: dict[str, list[str]] = {}
        for sec in s.sections:
            for a in sec.coding.assignments if sec.coding else []:
                if owner.get(a.segment_id) in wanted:
                    codes.setdefault(owner[a.segment_id], []).append(a.code_id)
        before["codes"] = {cid: sorted(set(v)) for cid, v in codes.items()}
    return before
