"""Incremental runs: new contributions join a reviewed run without undoing what people decided.

The earlier synthesis (at whatever revision a facilitator left it) is kept as it stands: its themes keep their
ids, titles, members and sub-themes, renames, merges, splits and moves included; summary sentences a reviewer
decided on keep their decision while they read the same; minority views, marked or not, stay. Then:

1. each new passage joins its nearest existing theme by the rule unassigned passages follow in a full run (as
   close to the centre as the theme's own members are);
2. the new passages that join nothing form new themes where they make a group of at least the smallest theme
   size (the same graph clustering as a full run), with ids after the existing ones; the rest are unassigned;
3. a fresh clustering of the whole section is compared with the result: a theme that grew and that the fresh
   clustering divides, or two themes it would put together, become `proposals`, never edits.

An earlier passage is never moved: an unassigned one stays unassigned, because a person may have put it there.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from synth.config import SynthConfig, default_cache_dir
from synth.edits import Vectors, _rewrite_section, _set_members
from synth.formats import InputError, LoadedInput
from synth.pipeline import Laps, Progress, RunResult, build_section, embed_prepared, section_data
from synth.pipeline.cluster import Clustering, cluster, communities, join_outliers
from synth.pipeline.label import SectionData, label_themes
from synth.pipeline.minority import find_minority_views
from synth.pipeline.prepare import PreparedCorpus, duplicate_key, prepare, segment_texts
from synth.provenance import coverage_of, metadata
from synth.schema import Contribution, Excluded, Extends, Proposal, Section, Synthesis, Theme

SPLIT_SHARE = 0.25  # each part of a proposed split holds at least this share of the theme
MERGE_SHARE = 0.5  # a proposed merge takes at least this share of each theme


def extend(
    previous: Synthesis,
    loaded: LoadedInput,
    config: SynthConfig | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None | bool = True,
    run_id: str | None = None,
    revision: int | None = None,
) -> RunResult:
    """The earlier synthesis with the contributions of `loaded` it does not have added (see the module)."""
    config = config or SynthConfig()
    cache = default_cache_dir() if cache_dir is True else (cache_dir or None)
    laps = Laps(progress)
    known = {c.id: c for c in previous.contributions}
    changed = [n for n, c in enumerate(loaded.contributions) if c.id in known and c.text != known[c.id].text]
    if changed:
        first = loaded.contributions[changed[0]]
        raise InputError(
            loaded.source,
            None,
            "text",
            f"{len(changed)} contribution(s) changed since the earlier run (first: {first.id!r}); an incremental "
            "run only adds contributions: start a full run to analyse changed ones",
        )
    new = [c for c in loaded.contributions if c.id not in known]
    prepared = _prepare(previous, new, [e for e in loaded.excluded if e.contribution_id not in known], config, cache)
    laps("prepare")
    vectors = embed_prepared(prepared, config, cache, progress)
    laps("embed")
    passages = Vectors.packaged(cache, config.encoder)

    s = previous.model_copy(deep=True)
    s.contributions, s.segments, s.excluded = prepared.contributions, prepared.segments, prepared.excluded
    by_question = {sec.question: sec for sec in s.sections}
    sections: list[Section] = []
    for data in section_data(prepared, vectors, config, cache):
        sec = by_question.pop(data.question, None)
        sections.append(
            build_section(data, config, laps) if sec is None else _extend(s, sec, data, known, config, passages)
        )
        laps("cluster")
    s.sections = sections + list(by_question.values())
    s.metadata = metadata(loaded, config, cache).model_copy(
        update={
            "extends": Extends(
                synthesis_sha256=hashlib.sha256(previous.model_dump_json().encode()).hexdigest(),
                run_id=run_id,
                revision=revision,
                n_contributions=len(previous.contributions),
                n_new=len(new),
            )
        }
    )
    s.coverage = coverage_of(s)
    from synth.pipeline.verify import verify

    verify(s, config.min_support, passages.support)
    laps("verify")
    return RunResult(s, laps.timings)


def _prepare(
    previous: Synthesis, new: list[Contribution], excluded: list[Excluded], config: SynthConfig, cache: Path | None
) -> PreparedCorpus:
    """The earlier run's passages exactly as they were, plus the new contributions prepared on their own.

    Near-duplicate detection weighs words by how rare they are in the whole input, so running it again over old
    and new together could call an earlier contribution a duplicate it was not; so the earlier exclusions stand,
    and a new contribution is set aside when it repeats an earlier one word for word (case, spacing and
    punctuation aside), or nearly repeats another new one."""
    by_id = {c.id: c for c in previous.contributions}
    live = list(dict.fromkeys(x.contribution_id for x in previous.segments))
    pieces = segment_texts([by_id[c].text for c in live], config.min_segment_chars, cache)
    lemmas: dict[str, str] = {}
    rebuilt = []
    for cid, spans in zip(live, pieces, strict=True):
        for k, (start, end, words) in enumerate(spans, start=1):
            rebuilt.append((f"{cid}:{k}", start, end))
            lemmas[f"{cid}:{k}"] = words
    if rebuilt != [(x.id, x.start, x.end) for x in previous.segments]:
        raise InputError(
            "earlier synthesis",
            None,
            None,
            "its passages cannot be rebuilt with these settings (min_segment_chars or the spaCy model differ): "
            "start a full run, or use the earlier run's settings",
        )
    seen = {(by_id[c].question, duplicate_key(by_id[c].text)): c for c in live}
    repeats = [
        Excluded(contribution_id=c.id, reason=f"exact duplicate of {seen[key]} (earlier run)", duplicate_of=seen[key])
        for c in new
        if (key := (c.question, duplicate_key(c.text))) in seen
    ]
    fresh = prepare(new, excluded + repeats, config, None, cache)
    duplicates: dict[str, list[str]] = {}
    for e in [*previous.excluded, *fresh.excluded]:
        if e.duplicate_of:
            duplicates.setdefault(e.duplicate_of, []).append(e.contribution_id)
    return PreparedCorpus(
        contributions=[*previous.contributions, *new],
        excluded=[*previous.excluded, *fresh.excluded],
        segments=[*previous.segments, *fresh.segments],
        lemmas={**lemmas, **fresh.lemmas},
        duplicates=duplicates,
    )


_THEME_ID = re.compile(r"(q\d+-)?t(\d+)")  # "t3", "q2-t3", and ids a split made from them ("t3-s1")


def _number(theme_id: str) -> int:
    m = _THEME_ID.match(theme_id)
    return int(m.group(2)) if m else 0


def _extend(
    s: Synthesis, sec: Section, data: SectionData, known: dict, config: SynthConfig, passages: Vectors
) -> Section:
    """One section of the earlier run with its new passages placed (steps 1-3 of the module)."""
    pos = {x.id: i for i, x in enumerate(data.segments)}
    top = [t for t in sec.themes if t.parent_id is None]
    labels = np.full(len(data.segments), -1)
    for k, t in enumerate(top):
        labels[[pos[x] for x in t.segment_ids if x in pos]] = k
    fresh = np.array([x.contribution_id not in known for x in data.segments], dtype=bool)
    labels, joined = join_outliers(data.vectors, labels, config, candidates=fresh)
    grew: set[str] = set()
    for k, t in enumerate(top):
        added = [data.segments[i].id for i in np.flatnonzero(joined & (labels == k))]
        if added:
            current = next(x for x in sec.themes if x.id == t.id)
            theme = _set_members(s, sec, current, current.segment_ids + added, config, passages)
            sec.themes[sec.themes.index(theme)] = theme.model_copy(
                update={"joined_segment_ids": theme.joined_segment_ids + added}
            )
            grew.add(t.id)
    pool = np.flatnonzero(fresh & (labels < 0))
    groups = communities(data.vectors[pool], config, config.cluster_size_for(len(data.segments)))
    made = _new_themes(s, sec, data, pool, groups, config) if len(pool) and groups.max() >= 0 else []
    themed = {i for t in made for i in t.segment_ids}
    sec.unassigned_segment_ids += [data.segments[i].id for i in pool if data.segments[i].id not in themed]
    sec.groups = data.groups()
    _add_minority_views(sec, data, known, config, {t.id for t in made})
    _rewrite_section(s, sec, config)
    sec.proposals = _proposals(sec, data, grew | {t.id for t in made if t.parent_id is None}, config)
    return sec


def _new_themes(
    s: Synthesis, sec: Section, data: SectionData, pool: np.ndarray, groups: np.ndarray, config: SynthConfig
) -> list[Theme]:
    """Themes for the groups the unplaced new passages form, numbered after the section's existing ones."""
    n = len(data.segments)
    labels = np.full(n, -1)
    labels[pool] = groups
    subs = np.full(n, -1)
    for g in range(int(groups.max()) + 1):
        idx = np.flatnonzero(labels == g)
        if len(idx) >= config.min_subtheme_parent:
            sub = communities(data.vectors[idx], config, config.cluster_size_for(len(idx)))
            if sub.max() >= 1:
                subs[idx] = sub
    made = label_themes(data, Clustering(labels, np.zeros(n, dtype=bool), subs, data.vectors), config)
    top_ids = [t.id for t in sec.themes if t.parent_id is None]
    m = _THEME_ID.match(top_ids[0]) if top_ids else None
    prefix = (m.group(1) or "") if m else data.prefix
    first = 1 + max((_number(i) for i in top_ids), default=0)
    rename = {t.id: f"{prefix}t{first + k}" for k, t in enumerate(x for x in made if x.parent_id is None)}
    out = []
    for t in made:
        parent = t.parent_id
        new_id = rename[t.id] if parent is None else rename[parent] + t.id[len(parent) :]
        out.append(t.model_copy(update={"id": new_id, "parent_id": rename.get(parent) if parent else None}))
    sec.themes += out  # their summaries are written with everyone else's by _rewrite_section
    return out


def _add_minority_views(
    sec: Section, data: SectionData, known: dict, config: SynthConfig, new_themes: set[str]
) -> None:
    """Views found now about a new theme, or outside every theme, that hold a new contribution and are not
    already listed. The earlier views stay as they were: a view a reviewer removed is not brought back."""
    pos = {x.id: i for i, x in enumerate(data.segments)}
    unassigned = np.array(sorted(pos[i] for i in sec.unassigned_segment_ids if i in pos), dtype=int)
    found = find_minority_views(data, sec.themes, unassigned, config)
    listed = {frozenset(v.contribution_ids) for v in sec.minority_views}
    used = {v.id for v in sec.minority_views}
    n = len(used)
    for v in found:
        about_new = v.theme_id is None or v.theme_id in new_themes
        members = frozenset(v.contribution_ids)
        if about_new and any(c not in known for c in members) and members not in listed:
            n += 1
            while f"{data.prefix}m{n}" in used:
                n += 1
            sec.minority_views.append(v.model_copy(update={"id": f"{data.prefix}m{n}"}))


def _proposals(sec: Section, data: SectionData, eligible: set[str], config: SynthConfig) -> list[Proposal]:
    """Splits and merges a fresh clustering of the whole section suggests for themes this run changed."""
    fresh = cluster(data.vectors, config).labels
    pos = {x.id: i for i, x in enumerate(data.segments)}
    owner = {x.id: x.contribution_id for x in data.segments}
    out: list[Proposal] = []
    top = [t for t in sec.themes if t.parent_id is None]
    shares: dict[str, dict[int, list[str]]] = {}
    for t in top:
        parts: dict[int, list[str]] = {}
        for i in t.segment_ids:
            if i in pos and fresh[pos[i]] >= 0:
                parts.setdefault(int(fresh[pos[i]]), []).append(i)
        shares[t.id] = parts
        big = [p for p in parts.values() if len(p) >= SPLIT_SHARE * len(t.segment_ids)]
        if t.id in eligible and len(big) >= 2:
            out.append(
                Proposal(
                    kind="split",
                    theme_ids=[t.id],
                    parts=[list(dict.fromkeys(owner[i] for i in p)) for p in big],
                    reason=f"With the new contributions, '{t.title}' divides into {len(big)} groups of similar "
                    "contributions; split it if the groups say different things.",
                )
            )
    for community in sorted({int(c) for c in fresh if c >= 0}):
        together = [t for t in top if len(shares[t.id].get(community, [])) >= MERGE_SHARE * max(1, len(t.segment_ids))]
        if len(together) >= 2 and any(t.id in eligible for t in together):
            names = " and ".join(f"'{t.title}'" for t in together)
            out.append(
                Proposal(
                    kind="merge",
                    theme_ids=[t.id for t in together],
                    reason=f"With the new contributions, {names} are mostly one group of similar contributions; "
                    "merge them if they make the same point.",
                )
            )
    return out
