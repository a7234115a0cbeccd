"""Title spans: what a title may keep of a member sentence, and that it is always the member's own words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synth.pipeline.titles import MAX_WORDS, _words, candidate_spans, trim


def test_trim_drops_opener_and_cuts_long_sentence_at_a_clause() -> None:
    text = (
        "I think that school uniforms are expensive for families, because parents on low incomes have to buy "
        "several sets every single year and cannot reuse them"
    )
    start, end = trim(text)
    assert text[start:end] == "school uniforms are expensive for families"


def test_candidates_include_each_opening_clause_that_stands_alone() -> None:
    text = "School uniforms are expensive, and parents on low incomes cannot afford them because they cost a lot"
    kept = [text[a:b] for a, b in candidate_spans(text)]
    assert kept[0] == text[slice(*trim(text))]  # the trimmed sentence comes first
    assert "School uniforms are expensive" in kept
    assert not any(k.endswith((" and", " because", ",")) for k in kept)  # no loose ends
    assert len(kept) == len(set(kept))


def test_a_short_sentence_is_its_own_only_candidate() -> None:
    assert candidate_spans("Uniforms reduce bullying") == [(0, len("Uniforms reduce bullying"))]


_PIECES = st.sampled_from(["a", "bc", " ", ",", ";", ":", ".", " - ", "'", "(", ")", "because ", "which ", "I think "])


@given(st.lists(_PIECES, max_size=120).map("".join))
def test_every_candidate_is_a_verbatim_span_of_bounded_length(text: str) -> None:
    for start, end in candidate_spans(text):
        assert 0 <= start <= end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip()
        if (start, end) != trim(text):  # the trimmed sentence may stay long when it has no clause to cut at
            assert len(_words(piece)) <= MAX_WORDS
