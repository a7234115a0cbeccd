"""Theme titles a person would write, made without a language model, and short labels for charts.

A title is the best member sentence for the theme, in the spirit of IBM's key point analysis: central to the
theme (close to its centre), short, self-contained (not opening on "it" or "because"), and, when too long,
shortened at a clause boundary so its words stay as written and in order. The title therefore cites the span
it comes from, and a reader can check it like any quote. Titles are distinct within a section.

The label is a short noun phrase from the title for tables and charts, chosen by the theme's keywords.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Words that, opening a sentence, point outside it: the title would not stand alone.
_DANGLING = {
    "it", "this", "that", "they", "these", "those", "he", "she", "him", "her", "them", "which", "such", "there",
    "its", "their", "his", "same", "also", "too", "either", "neither", "otherwise", "then", "thus", "hence",
}  # fmt: skip
# Openers a careful writer would drop: discourse markers and hedges that carry no content.
_OPENERS = re.compile(
    r"^\W*(?:(?:\d{1,3}|[a-z])[.)]\s+|"  # a list's numbering: "1. ", "21) ", "a) "
    r"(?:and|but|so|also|yes|no|well|ok|okay|however|plus|moreover|furthermore|additionally|"
    r"honestly|personally|basically|overall|firstly|secondly|finally)\b[\s,:;-]*|"
    r"(?:i|we)\s+(?:really\s+|strongly\s+|do\s+|personally\s+)?(?:think|believe|feel|agree|suggest|would say|"
    r"would like to see|want to see)\s+(?:that\s+)?|"
    r"in\s+my\s+(?:opinion|view)\s*,?\s*|"
    r"it\s+is\s+(?:important|clear|obvious)\s+that\s+)+",
    re.IGNORECASE,
)
# Where a long sentence can be cut and still read as a statement: before a clause that explains or adds.
_PUNCT_CUT = re.compile(r"\s*(?:[,;:(]|\s[-–—]\s)\s*")
_WORD_CUT = re.compile(
    r"\s+(?=(?:because|since|so\s+that|which|while|whereas|although|though|but|unless|otherwise)\b)", re.IGNORECASE
)
# A title must not end on a word that needs what was cut off.
_LOOSE_END = {
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "with", "by", "from", "and", "or", "but", "because",
    "that", "which", "who", "as", "than", "is", "are", "be", "was", "were", "will", "would", "can", "could",
    "should", "must", "may", "might", "not", "no", "very", "more", "most", "their", "its", "his", "her", "our",
    "my", "your", "this", "these", "those", "so", "if", "when", "while", "into", "about", "such",
}  # fmt: skip
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
MAX_WORDS = 14
MIN_WORDS = 4


@dataclass(frozen=True)
class TitleChoice:
    """A span of one member segment: `text` is what is shown (first letter capitalised), `start`/`end` the
    characters of the segment it comes from, so `segment.text[start:end]` is the verbatim source."""

    segment: int  # index among the theme's members
    start: int
    end: int
    text: str
    score: float


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def trim(text: str) -> tuple[int, int]:
    """The span of `text` a title keeps: without a content-free opener, cut at a clause boundary when long,
    without trailing punctuation. Returns (start, end) offsets into `text`."""
    start = _content_start(text)
    end = len(text)
    if len(_words(text[start:end])) > MAX_WORDS:
        end = _cut(text, start) or end
    return _tidy(text, start, end)


def candidate_spans(text: str) -> list[tuple[int, int]]:
    """Every span of `text` that could stand as a title: the trimmed sentence (see `trim`) and each of its
    opening clauses that reads as a statement on its own ("School uniforms are expensive" out of "School
    uniforms are expensive, and parents on low incomes cannot afford them"). Expert key points are short and
    general, so the shorter clause often says the view better than the whole sentence."""
    start = _content_start(text)
    spans = [trim(text)]
    for pattern in (_PUNCT_CUT, _WORD_CUT):
        for c in pattern.finditer(text, start):
            words = _words(text[start : c.start()])
            if MIN_WORDS <= len(words) <= MAX_WORDS and words[-1].lower() not in _LOOSE_END:
                span = _tidy(text, start, c.start())
                if span not in spans:
                    spans.append(span)
    return spans


def _content_start(text: str) -> int:
    """Where the content starts once a content-free opener ("I think that", "Firstly,") is dropped."""
    m = _OPENERS.match(text)
    return m.end() if m and len(_words(text[m.end() :])) >= MIN_WORDS else 0


def _tidy(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop a loose last word ("... uniforms because"), trailing punctuation and leading non-words."""
    while True:
        while end > start and not (text[end - 1].isalnum() or text[end - 1] in ")%”\"'"):
            end -= 1
        words = _words(text[start:end])
        if len(words) <= MIN_WORDS or words[-1].lower() not in _LOOSE_END:
            break
        end = text.rfind(words[-1], start, end)
    while start < end and not (text[start].isalnum() or text[start] in "“\"'("):
        start += 1
    return start, end


def _cut(text: str, start: int) -> int | None:
    """Where to end a long sentence: the longest clause that fits, preferring punctuation to a cut before a
    conjunction, and never after a word that needs what follows."""
    for pattern in (_PUNCT_CUT, _WORD_CUT):
        fits = []
        for c in pattern.finditer(text, start):
            words = _words(text[start : c.start()])
            if MIN_WORDS + 1 <= len(words) <= MAX_WORDS and words[-1].lower() not in _LOOSE_END:
                fits.append(c.start())
        if fits:
            return fits[-1]
    return None


def _quality(text: str) -> float:
    """A penalty (<= 0) for what makes a sentence a poor title."""
    words = [w.lower() for w in _words(text)]
    if not words:
        return -9.0
    penalty = 0.0
    n = len(words)
    if n < MIN_WORDS:
        penalty -= 0.15
    penalty -= 0.015 * max(0, n - 8)  # expert key points run to about eight words
    if words[0] in _DANGLING or words[0] in _LOOSE_END:
        penalty -= 0.12  # opens on a reference to something outside it, or mid-clause
    if "?" in text:
        penalty -= 0.1
    if sum(w in {"i", "me", "my", "i'm"} for w in words) >= 2:
        penalty -= 0.05  # a personal story rather than a statement of the view
    letters = [ch for ch in text if ch.isalpha()]
    if letters and sum(ch.isupper() for ch in letters) > 0.6 * len(letters):
        penalty -= 0.1  # shouting
    return penalty


def _shown(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _candidates(
    texts: list[str], vectors: np.ndarray, consider: int, clause_members: int, clauses: bool
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, tuple[int, int]]], list[tuple[int, tuple[int, int]]]]:
    """(centre, centrality, candidate spans, the spans whose words differ from their whole member)."""
    centre = vectors.mean(axis=0)
    centre = centre / (np.linalg.norm(centre) or 1.0)
    # rounded: the last bits of a float differ with the batch an embedding was computed in (cache warm or cold),
    # and a title must not flip on them; ties go to the earlier member
    centrality = np.round(vectors @ centre, 4)
    order = np.lexsort((np.arange(len(texts)), -centrality))[:consider]
    # clauses of the most central members only: each is a new text to embed (on a cold cache, 10k
    # contributions' titles took 27 s with clauses of all 25 candidates)
    candidates = [
        (int(i), span)
        for rank, i in enumerate(order)
        for span in (candidate_spans(texts[i]) if clauses and rank < clause_members else [trim(texts[i])])
    ]
    candidates = [(i, span) for i, span in candidates if texts[i][slice(*span)]]
    # what the title says once trimmed, not what the whole sentence said; a span with all the sentence's words
    # (only punctuation or spaces dropped) says what the sentence says, and its vector is the member's own
    cut = [(i, span) for i, span in candidates if _words(texts[i][slice(*span)]) != _words(texts[i])]
    return centre, centrality, candidates, cut


def texts_to_embed(texts: list[str], vectors: np.ndarray, consider: int = 25, clause_members: int = 8) -> list[str]:
    """The trimmed candidates choose_title will embed for these members: embedded for all themes at once
    first, in one batch sorted by length, they are cache hits when each theme's title is chosen."""
    if not texts:
        return []
    _, _, _, cut = _candidates(texts, vectors, consider, clause_members, True)
    return [texts[i][slice(*span)] for i, span in cut]


def choose_title(
    texts: list[str],
    vectors: np.ndarray,
    taken: set[str],
    consider: int = 25,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    clause_members: int = 8,
) -> TitleChoice | None:
    """The best title among the members (`texts`, with their unit `vectors`), not already in `taken`
    (lower-cased titles of the section's other themes). The most central members are the candidates; with
    `embed`, each is scored by what its trimmed words say (closer to the theme's centre is better), since a
    cut sentence can drift from the whole one (on ArgKP train this raised title cosine by 0.02)."""
    if not texts:
        return None
    centre, centrality, candidates, cut = _candidates(texts, vectors, consider, clause_members, embed is not None)
    said: dict[tuple[int, tuple[int, int]], float] = {}
    if embed is not None and cut:
        vecs = embed([texts[i][slice(*span)] for i, span in cut])
        said = {key: round(float(v @ centre), 4) for key, v in zip(cut, vecs, strict=True)}
    best: TitleChoice | None = None
    for i, (start, end) in candidates:
        text = texts[i][start:end]
        shown = _shown(text)
        if shown.lower() in taken:
            continue
        score = round(said.get((i, (start, end)), float(centrality[i])) + _quality(text), 4)
        if best is None or score > best.score:
            best = TitleChoice(i, start, end, shown, score)
    return best


_NOUNISH = {"NOUN", "PROPN"}
_MODIFIER = {"ADJ", "NOUN", "PROPN", "NUM"}


def noun_phrases(doc) -> list[tuple[int, int]]:  # noqa: ANN001 - spaCy Doc
    """Character spans of maximal runs of modifiers ending in a noun (tagger only: no parser needed)."""
    spans: list[tuple[int, int]] = []
    i = 0
    tokens = list(doc)
    while i < len(tokens):
        if tokens[i].pos_ in _MODIFIER:
            j = i
            while j + 1 < len(tokens) and tokens[j + 1].pos_ in _MODIFIER:
                j += 1
            k = j
            while k >= i and tokens[k].pos_ not in _NOUNISH:
                k -= 1
            if k >= i:
                spans.append((tokens[i].idx, tokens[k].idx + len(tokens[k].text)))
            i = j + 1
        else:
            i += 1
    return spans


_GENERIC = {
    "lot", "thing", "things", "way", "ways", "people", "person", "time", "fact", "kind", "sort", "part", "bit",
    "idea", "point", "reason", "issue", "problem", "something", "everything", "anything", "everyone", "one", "use",
}  # fmt: skip


def _key(phrase: str) -> str:
    """Labels that differ only in case or a plural 's' are the same label."""
    return re.sub(r"s\b", "", phrase.lower())


def phrase_candidates(doc) -> list[tuple[int, int, list[str]]]:  # noqa: ANN001 - spaCy Doc
    """Each noun phrase of a title as (start, end, lowercased lemmas): all choose_label needs of spaCy's
    analysis, small enough to cache, so a re-run labels without loading spaCy."""
    out = []
    for start, end in noun_phrases(doc):
        span = doc.char_span(start, end)
        if span is not None:
            out.append((start, end, [tok.lemma_.lower() for tok in span]))
    return out


def choose_label(
    text: str, candidates: list[tuple[int, int, list[str]]], keywords: list[str], common: set[str], taken: set[str]
) -> str:
    """The title's noun phrase that best carries the theme's own keywords (lemmas), e.g. 'Freedom of
    expression'. Phrases made only of words shared by much of the section (the motion's own words) and generic
    nouns ('lot', 'people') do not count, and a label already used in the section is not reused: then the
    title's opening words serve."""
    rank = {k: len(keywords) - n for n, k in enumerate(keywords) if k not in common}
    scored: list[tuple[float, int, str]] = []
    for start, end, lemmas in candidates:
        if all(w in common or w in _GENERIC for w in lemmas):
            continue
        grams = set(lemmas) | {" ".join(p) for p in zip(lemmas, lemmas[1:], strict=False)}
        score = sum(rank.get(g, 0) for g in grams) + 0.5 - 0.2 * max(0, len(lemmas) - 3)
        scored.append((score, -start, _shown(text[start:end][:60])))
    for _, _, phrase in sorted(scored, reverse=True):
        if _key(phrase) not in taken:
            taken.add(_key(phrase))
            return phrase
    words = _words(text)[:6]
    while len(words) > 2 and words[-1].lower() in _LOOSE_END:
        words.pop()
    fallback = _shown(" ".join(words)) if words else (_shown(keywords[0]) if keywords else "Miscellaneous")
    taken.add(_key(fallback))
    return fallback
