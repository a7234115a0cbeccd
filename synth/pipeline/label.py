"""Label: keywords by class-based TF-IDF over lemmas, a short label from them, and diverse representatives.

c-TF-IDF (as BERTopic): a term's frequency within a theme times log(1 + average theme length / the
term's frequency over all themes), so words common to every theme ("think", "people") sink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer


@dataclass
class ThemeLabel:
    label: str
    keywords: list[str]
    representatives: list[int]  # indices into the section's segments


class KeywordModel:
    """Fitted on a section's segments grouped by theme (the unassigned as one more class).

    Terms are counted per segment, so a bigram never spans two segments, and a term must occur in two
    segments to count at all: one person's typo is not a keyword.
    """

    def __init__(self, segment_docs: list[str], classes: np.ndarray):
        self.vectorizer = CountVectorizer(
            ngram_range=(1, 2), token_pattern=r"(?u)\b\w[\w'-]+\b", min_df=2 if len(segment_docs) > 20 else 1
        )
        docs = [d if d.strip() else "_" for d in segment_docs]
        self.counts = self.vectorizer.fit_transform(docs).tocsr()
        per_class = np.vstack([np.asarray(self.counts[classes == c].sum(axis=0)).ravel() for c in np.unique(classes)])
        freq = per_class.sum(axis=0)
        avg_len = per_class.sum() / max(1, per_class.shape[0])
        self.idf = np.log(1 + avg_len / np.maximum(freq, 1))
        self.terms = self.vectorizer.get_feature_names_out()

    def common_terms(self, share: float = 0.2) -> set[str]:
        """Terms in at least `share` of the section's segments: the question's or the motion's own words,
        which every theme shares and so cannot name any one of them."""
        n = self.counts.shape[0]
        df = np.asarray((self.counts > 0).sum(axis=0)).ravel()
        return {str(self.terms[i]) for i in np.flatnonzero(df >= max(2, share * n))}

    def keywords_for(self, rows: np.ndarray, n: int) -> list[str]:
        counts = np.asarray(self.counts[rows].sum(axis=0)).ravel().astype(float)
        return self._top(counts, n)

    def _top(self, counts: np.ndarray, n: int) -> list[str]:
        total = counts.sum()
        if total == 0:
            return []
        score = counts / total * self.idf
        order = np.lexsort((self.terms, -score))  # ties broken alphabetically: deterministic
        chosen: list[str] = []
        for i in order:
            if score[i] <= 0 or len(chosen) >= n:
                break
            term = str(self.terms[i])
            words = set(term.split())
            # a unigram already inside a chosen bigram (or the reverse) adds nothing
            if any(words <= set(c.split()) or set(c.split()) <= words for c in chosen):
                continue
            chosen.append(term)
        return chosen


def make_label(keywords: list[str]) -> str:
    """The first keyword, e.g. 'Affordable housing': the fallback when a theme has no title to take a noun
    phrase from; 'Miscellaneous' when there are no keywords either."""
    if not keywords:
        return "Miscellaneous"
    return keywords[0][0].upper() + keywords[0][1:]


def representatives(vectors: np.ndarray, n: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: central to the theme, but not saying the same thing twice."""
    if len(vectors) == 0:
        return []
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    centrality = vectors @ centre
    chosen = [int(np.argmax(centrality))]
    while len(chosen) < min(n, len(vectors)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1)
        score = (1 - diversity) * centrality - diversity * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def n_representatives(size: int, most: int) -> int:
    return most if size >= 20 else min(3, most)


@dataclass
class SectionData:
    """One question's segments, their vectors and the lookups the later stages need."""

    question: str | None
    prefix: str
    segments: list  # list[Segment]
    vectors: np.ndarray
    contributions: dict  # id -> Contribution
    duplicates: dict[str, list[str]]
    lemmas: dict[str, str]
    embed: Callable[[list[str]], np.ndarray] | None = None  # the run's model and cache (titles); None: unused
    cache: Path | None = None  # the run's cache folder (spaCy's analysis of titles)

    def participant(self, contribution_id: str) -> str:
        """A contribution with no participant id counts as its own participant."""
        c = self.contributions[contribution_id]
        return c.participant_id if c.participant_id is not None else f"contribution:{contribution_id}"

    def groups(self) -> list[str]:
        ids = {s.contribution_id for s in self.segments}
        return sorted({g for cid in ids if (g := self.contributions[cid].group) is not None})


def _unique(seq):  # noqa: ANN001, ANN202 - order-keeping dedupe of ids
    return list(dict.fromkeys(seq))


def build_theme(
    data: SectionData,
    idx: np.ndarray,
    theme_id: str,
    parent_id: str | None,
    joined: np.ndarray,
    model: KeywordModel,
    n_keywords: int,
    n_reps_max: int,
    diversity: float,
    all_groups: list[str],
    taken: set[str],
):  # noqa: ANN201 - Theme
    """A Theme from the section segments at `idx`: counts, cohesion, breadth, keywords, representatives, and
    a title distinct from those in `taken` (which it joins)."""
    from synth.pipeline.titles import choose_title
    from synth.schema import Citation, Theme

    segs = [data.segments[i] for i in idx]
    vecs = data.vectors[idx]
    centre = vecs.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    cids = _unique(s.contribution_id for s in segs)
    participants = _unique(data.participant(c) for c in cids)
    group_counts: dict[str, int] = {}
    for pid_group in {(data.participant(c), data.contributions[c].group) for c in cids}:
        if pid_group[1] is not None:
            group_counts[pid_group[1]] = group_counts.get(pid_group[1], 0) + 1
    keywords = model.keywords_for(idx, n_keywords)
    reps = representatives(vecs, n_representatives(len(segs), n_reps_max), diversity)
    title = choose_title([s.text for s in segs], vecs, taken, embed=data.embed)
    citation = None
    if title is not None:
        taken.add(title.text.lower())
        citation = Citation.of(segs[title.segment], title.start, title.end)
    return Theme(
        id=theme_id,
        label=make_label(keywords),
        title=title.text if title is not None else make_label(keywords),
        title_citation=citation,
        keywords=keywords,
        parent_id=parent_id,
        segment_ids=[s.id for s in segs],
        contribution_ids=cids,
        joined_segment_ids=[data.segments[i].id for i in idx if joined[i]],
        representatives=[Citation.of(segs[r]) for r in reps],
        n_contributions=len(cids),
        n_participants=len(participants),
        n_duplicates=sum(len(data.duplicates.get(c, [])) for c in cids),
        cohesion=round(float((vecs @ centre).mean()), 4),
        group_counts=dict(sorted(group_counts.items())),
        breadth=round(len(group_counts) / len(all_groups), 4) if all_groups else None,
    )


def label_themes(data: SectionData, clustering, config) -> list:  # noqa: ANN001 - Clustering, SynthConfig
    """Themes then their sub-themes, each labelled against the whole section (unassigned included)."""
    labels, subs = clustering.labels, clustering.sub_labels
    k = clustering.n_themes
    model = KeywordModel([data.lemmas.get(s.id, "") for s in data.segments], labels)
    all_groups = data.groups()
    taken: set[str] = set()
    args = (
        clustering.joined,
        model,
        config.n_keywords,
        config.n_representatives_max,
        config.mmr_diversity,
        all_groups,
        taken,
    )
    groups = []
    for c in range(k):
        members = labels == c
        groups.append(np.flatnonzero(members))
        groups += [np.flatnonzero(members & (subs == s)) for s in range(int(subs[members].max()) + 1)]
    if data.embed is not None:  # every theme's title candidates in one batch: then each title reads the cache
        from synth.pipeline.titles import texts_to_embed

        data.embed(
            [x for idx in groups for x in texts_to_embed([data.segments[i].text for i in idx], data.vectors[idx])]
        )
    themes = []
    for c in range(k):
        tid = f"{data.prefix}t{c + 1}"
        themes.append(build_theme(data, np.flatnonzero(labels == c), tid, None, *args))
        members = labels == c
        for s in range(int(subs[members].max()) + 1 if members.any() else 0):
            themes.append(build_theme(data, np.flatnonzero(members & (subs == s)), f"{tid}.{s + 1}", tid, *args))
    return label_from_titles(themes, model.common_terms(), data.cache)


def label_from_titles(themes: list, common: set[str], cache: Path | None = None):  # noqa: ANN001, ANN201
    """Each theme's chart label: the noun phrase of its title that carries its keywords, distinct within the
    section; top-level themes choose first."""
    from synth.pipeline.prepare import title_phrases
    from synth.pipeline.titles import choose_label

    order = sorted(range(len(themes)), key=lambda i: (themes[i].parent_id is not None, i))
    phrases = title_phrases([t.title for t in themes], cache)
    taken: set[str] = set()
    labels = {i: choose_label(themes[i].title, phrases[i], themes[i].keywords, common, taken) for i in order}
    return [t.model_copy(update={"label": labels[i]}) for i, t in enumerate(themes)]
