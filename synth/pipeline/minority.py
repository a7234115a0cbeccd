"""Minority views: what a majority-seeking summary would lose, each flag with its reason and numbers.

Four kinds: small distinct themes (and small coherent groups among the unassigned), dissent inside a
theme (a distant sub-theme, or comments the Polis opinion groups split on), views concentrated in one
group (Fisher exact test, Benjamini-Hochberg corrected), and lone distinct voices.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, fisher_exact

from synth.config import SynthConfig
from synth.pipeline.cluster import unit
from synth.pipeline.label import SectionData, _unique
from synth.schema import MinorityView, Theme
from synth.wording import plural


def _centre(data: SectionData, seg_ids: list[str], index: dict[str, int]) -> np.ndarray:
    return unit(data.vectors[[index[s] for s in seg_ids]].mean(axis=0))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def small_distinct(
    data: SectionData, themes: list[Theme], centres: dict[str, np.ndarray], n_section: int, config: SynthConfig
) -> list[MinorityView]:
    top = [t for t in themes if t.parent_id is None]
    small = [t for t in top if t.n_contributions < config.small_theme_share * n_section]
    large = [t for t in top if t not in small]
    views = []
    for t in small:
        if not large:
            break
        sims = {o.id: float(centres[o.id] @ centres[t.id]) for o in large}
        nearest = max(sims, key=lambda i: (sims[i], i))
        if sims[nearest] < config.distinct_max_similarity:
            views.append(
                MinorityView(
                    id="",
                    kind="small_distinct_theme",
                    theme_id=t.id,
                    contribution_ids=t.contribution_ids,
                    segment_ids=t.segment_ids,
                    reason=(
                        f"Only {plural(t.n_contributions, 'contribution')} from "
                        f"{plural(t.n_participants, 'participant')} make this point, and no larger theme is close "
                        "to it."
                    ),
                    stats={
                        "n_contributions": t.n_contributions,
                        "n_participants": t.n_participants,
                        "share_of_section": round(t.n_contributions / n_section, 4),
                        "nearest_large_theme": nearest,
                        "similarity_to_nearest": round(sims[nearest], 4),
                    },
                )
            )
    return views


AGGLOMERATIVE_MAX = 5_000  # average linkage holds all pairs in memory: 5,000 contributions take 0.2 GB


def _groups(vecs: np.ndarray, config: SynthConfig) -> np.ndarray:
    """Groups among unassigned contributions: average-linkage clusters whose members are on average at least
    `lone_group_similarity` alike. Above AGGLOMERATIVE_MAX (a large consultation's unassigned list) that is
    quadratic in memory, so the groups are the shared-neighbour communities themes are found as (linear),
    each a group of mutual neighbours; both then pass the same distinctness test."""
    from sklearn.cluster import AgglomerativeClustering

    if len(vecs) <= AGGLOMERATIVE_MAX:
        return AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - config.lone_group_similarity
        ).fit_predict(vecs)
    from synth.pipeline.cluster import communities

    found = communities(vecs, config, 3)
    singles = np.flatnonzero(found < 0)  # each on its own, as average linkage leaves a lone contribution
    found[singles] = found.max() + 1 + np.arange(len(singles))
    return found


def unassigned_views(
    data: SectionData, unassigned: np.ndarray, centres: dict[str, np.ndarray], config: SynthConfig
) -> list[MinorityView]:
    """Coherent small groups among the unassigned, then the lone voices far from every theme.

    Works per contribution (the mean of its unassigned passages): a person's two sentences on one
    point should count once, and together.
    """
    if len(unassigned) == 0:
        return []
    per_contribution: dict[str, list[int]] = {}
    for i in unassigned:
        per_contribution.setdefault(data.segments[i].contribution_id, []).append(int(i))
    cids = list(per_contribution)
    vecs = unit(np.vstack([data.vectors[per_contribution[c]].mean(axis=0) for c in cids]))
    cmat = np.vstack(list(centres.values())) if centres else np.zeros((0, vecs.shape[1]))
    nearest = (vecs @ cmat.T).max(axis=1) if len(cmat) else np.zeros(len(vecs))

    def seg_ids(members: list[int]) -> list[str]:
        return [data.segments[i].id for m in members for i in per_contribution[cids[m]]]

    views: list[MinorityView] = []
    grouped = np.zeros(len(cids), dtype=bool)
    if len(cids) >= 3:
        groups = _groups(vecs, config)
        for g in sorted(set(groups), key=lambda g: int(np.flatnonzero(groups == g)[0])):
            members = [int(m) for m in np.flatnonzero(groups == g)]
            centre = unit(vecs[members].mean(axis=0))
            to_themes = float((cmat @ centre).max()) if len(cmat) else 0.0
            if len(members) < 3 or to_themes >= config.distinct_max_similarity:
                continue
            grouped[members] = True
            inner = float(np.mean(vecs[members] @ centre))
            views.append(
                MinorityView(
                    id="",
                    kind="small_distinct_theme",
                    contribution_ids=[cids[m] for m in members],
                    segment_ids=seg_ids(members),
                    reason=(
                        f"{plural(len(members), 'contribution')} that fit no theme make this point together, and no "
                        "theme is close to it."
                    ),
                    stats={
                        "n_contributions": len(members),
                        "cohesion": round(inner, 4),
                        "similarity_to_nearest_theme": round(to_themes, 4),
                    },
                )
            )
    lone = [m for m in range(len(cids)) if not grouped[m] and nearest[m] < config.lone_voice_max_similarity]
    if lone:
        views.append(
            MinorityView(
                id="",
                kind="lone_voices",
                contribution_ids=[cids[m] for m in lone],
                segment_ids=seg_ids(lone),
                reason=(
                    "1 contribution fits no theme and is unlike all of them: read it, it may be a view nobody else "
                    "voiced."
                    if len(lone) == 1
                    else f"{len(lone)} contributions fit no theme and are unlike all of them: read them, one may be "
                    "a view nobody else voiced."
                ),
                stats={"n_contributions": len(lone), "max_similarity": round(float(nearest[lone].max()), 4)},
            )
        )
    return views


def subtheme_dissent(
    data: SectionData, themes: list[Theme], index: dict[str, int], config: SynthConfig
) -> list[MinorityView]:
    views = []
    by_id = {t.id: t for t in themes}
    for sub in (t for t in themes if t.parent_id is not None):
        parent = by_id[sub.parent_id]
        rest = [s for s in parent.segment_ids if s not in set(sub.segment_ids)]
        if not rest or len(sub.segment_ids) * 3 > len(parent.segment_ids):
            continue
        sim = float(_centre(data, sub.segment_ids, index) @ _centre(data, rest, index))
        if sim < config.dissent_max_similarity:
            views.append(
                MinorityView(
                    id="",
                    kind="dissent_in_theme",
                    theme_id=parent.id,
                    contribution_ids=sub.contribution_ids,
                    segment_ids=sub.segment_ids,
                    reason=(
                        f"Within its theme, {plural(sub.n_contributions, 'contribution')} take a line of their own, "
                        "unlike the rest of the theme."
                    ),
                    stats={
                        "sub_theme": sub.id,
                        "n_contributions": sub.n_contributions,
                        "similarity_to_rest": round(sim, 4),
                    },
                )
            )
    return views


def vote_split(
    data: SectionData, themes: list[Theme], unassigned_cids: list[str], config: SynthConfig
) -> list[MinorityView]:
    """Comments one opinion group mostly agrees with and another mostly rejects (Polis votes)."""

    def split(cid: str) -> tuple[str, float, str, float] | None:
        rates = {}
        for g, v in data.contributions[cid].group_votes.items():
            n = v.agree + v.disagree + v.passed
            if n >= config.vote_min_voters:
                rates[g] = (v.agree / n, v.disagree / n)
        agree = [(a, g) for g, (a, _) in rates.items() if a >= config.vote_split_agree]
        reject = [(d, g) for g, (_, d) in rates.items() if d >= config.vote_split_disagree]
        if agree and reject:
            (a, ga), (d, gd) = max(agree), max(reject)
            return ga, a, gd, d
        return None

    scopes = [(t.id, t.contribution_ids) for t in themes if t.parent_id is None]
    scopes.append((None, unassigned_cids))
    views = []
    for theme_id, cids in scopes:
        hits = [(c, s) for c in cids if (s := split(c))]
        if not hits:
            continue
        cid, (ga, a, gd, d) = hits[0]
        where = "In this theme" if theme_id else "Among contributions that fit no theme"
        views.append(
            MinorityView(
                id="",
                kind="dissent_in_theme",
                theme_id=theme_id,
                contribution_ids=[c for c, _ in hits],
                reason=(
                    f"{where}, {plural(len(hits), 'comment')} {'divides' if len(hits) == 1 else 'divide'} the "
                    f"opinion groups: {ga} mostly agreed "
                    f"and {gd} mostly disagreed."
                ),
                stats={
                    "n_comments": len(hits),
                    "example": cid,
                    "agree_group": ga,
                    "agree_share": round(a, 4),
                    "disagree_group": gd,
                    "disagree_share": round(d, 4),
                },
            )
        )
    return views


def concentrated(data: SectionData, themes: list[Theme], config: SynthConfig) -> list[MinorityView]:
    """Themes whose participants come from one group (or stratum) far more than the section's do."""
    cids = _unique(s.contribution_id for s in data.segments)
    dims: dict[str, dict[str, str]] = {"group": {}}
    for c in cids:
        contrib = data.contributions[c]
        pid = data.participant(c)
        if contrib.group is not None:
            dims["group"][pid] = contrib.group
        for key, val in contrib.attributes.items():
            dims.setdefault(key, {})[pid] = val
    tests = []
    for dim, member_of in dims.items():
        sizes: dict[str, int] = {}
        for g in member_of.values():
            sizes[g] = sizes.get(g, 0) + 1
        eligible = sorted(g for g, n in sizes.items() if n >= config.min_group_participants)
        if len(eligible) < 2:
            continue
        everyone = set(member_of)
        for t in (t for t in themes if t.parent_id is None):
            inside = {data.participant(c) for c in t.contribution_ids} & everyone
            for g in eligible:
                in_g = {p for p in everyone if member_of[p] == g}
                a, b = len(inside & in_g), len(inside - in_g)
                c_, d = len(in_g - inside), len(everyone - inside - in_g)
                if a < 3:
                    continue
                p = float(fisher_exact([[a, b], [c_, d]], alternative="greater").pvalue)
                tests.append((t, dim, g, a, b, len(in_g), len(everyone), p))
    if not tests:
        return []
    qs = false_discovery_control([t[-1] for t in tests])
    views = []
    for (t, dim, g, a, b, n_g, n_all, p), q in zip(tests, qs, strict=True):
        if q >= config.group_fdr:
            continue
        share_theme, share_all = a / (a + b), n_g / n_all
        what = g if dim == "group" else f"{dim} = {g}"
        views.append(
            MinorityView(
                id="",
                kind="concentrated_in_group",
                theme_id=t.id,
                contribution_ids=t.contribution_ids,
                segment_ids=t.segment_ids,
                reason=(
                    f"Raised far more often by {what}: {_pct(share_theme)} of the participants in this theme, "
                    f"against {_pct(share_all)} of all participants."
                ),
                stats={
                    "dimension": dim,
                    "group": g,
                    "participants_in_group": a,
                    "participants_in_theme": a + b,
                    "share_in_theme": round(share_theme, 4),
                    "share_overall": round(share_all, 4),
                    "p_value": float(f"{p:.4g}"),
                    "q_value": float(f"{q:.4g}"),
                },
            )
        )
    return views


def find_minority_views(
    data: SectionData, themes: list[Theme], unassigned: np.ndarray, config: SynthConfig
) -> list[MinorityView]:
    """All four kinds, numbered m1, m2, ... in a fixed order."""
    index = {s.id: i for i, s in enumerate(data.segments)}
    centres = {t.id: _centre(data, t.segment_ids, index) for t in themes if t.parent_id is None}
    n_section = len({s.contribution_id for s in data.segments})
    themed = {c for t in themes for c in t.contribution_ids}
    unassigned_cids = [c for c in _unique(data.segments[i].contribution_id for i in unassigned) if c not in themed]
    views = (
        small_distinct(data, themes, centres, n_section, config)
        + unassigned_views(data, unassigned, centres, config)
        + subtheme_dissent(data, themes, index, config)
        + vote_split(data, themes, unassigned_cids, config)
        + concentrated(data, themes, config)
    )
    return [
        v.model_copy(update={"id": f"{data.prefix}m{i + 1}", **_statement(data, v, index)}) for i, v in enumerate(views)
    ]


def _statement(data: SectionData, view: MinorityView, index: dict[str, int]) -> dict:
    """What the view says, as a theme title would say it (a member's words, cited), and up to two quotes
    from other contributions. Lone voices have no common statement: only quotes."""
    from synth.pipeline.titles import choose_title
    from synth.schema import Citation

    seg_ids = view.segment_ids or [s.id for s in data.segments if s.contribution_id in set(view.contribution_ids)]
    segs = [data.segments[index[s]] for s in seg_ids]
    if not segs:
        return {}
    vecs = data.vectors[[index[s] for s in seg_ids]]
    out: dict = {}
    used: set[str] = set()
    if view.kind != "lone_voices":
        title = choose_title([s.text for s in segs], vecs, set())
        if title is not None:
            seg = segs[title.segment]
            out["statement"] = title.text
            out["statement_citation"] = Citation.of(seg, title.start, title.end)
            used.add(seg.contribution_id)
    centre = unit(vecs.mean(axis=0))
    quotes = []
    for i in np.lexsort((np.arange(len(segs)), -np.round(vecs @ centre, 4))):  # robust to the last bits
        if segs[i].contribution_id not in used and len(quotes) < 2:
            used.add(segs[i].contribution_id)
            quotes.append(Citation.of(segs[i]))
    out["quotes"] = quotes
    return out
