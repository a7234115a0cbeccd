"""eval.titles' scoring pieces on hand-made cases: no models, no datasets."""

from __future__ import annotations

import pytest

from eval.titles import best_match, clean_bertopic_name, rouge_l


def test_rouge_l_identical_and_disjoint() -> None:
    assert rouge_l("School uniforms reduce bullying", "school uniforms reduce bullying!") == 1.0
    assert rouge_l("uniforms are cheap", "homework should be banned") == 0.0
    assert rouge_l("", "anything") == 0.0


def test_rouge_l_partial_by_hand() -> None:
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # LCS "uniforms" = 1; P = 1/4, R = 1/5, F = 2PR / (P + R) = 2/9; order matters, bag-of-words would not
    assert rouge_l("school uniforms are cheap", "uniforms save money for parents") == pytest.approx(2 / 9)
    # LCS of "a b c d" and "d c b a" is 1 token: F = 1/4
    assert rouge_l("a b c d", "d c b a") == pytest.approx(1 / 4)


def test_best_match_largest_overlap_ties_to_smaller_group() -> None:
    themes = {"t1": ["a1", "a2", "a3", "x1"], "t2": ["a4", "x2"], "t3": ["a5", "a6", "x3", "x4", "x5"]}
    assert best_match({"a1", "a2", "a4"}, themes) == "t1"
    # two each in t1 (size 4) and t3 (size 5): the smaller wins
    assert best_match({"a1", "a2", "a5", "a6"}, themes) == "t1"
    assert best_match({"a5", "a6", "a4"}, themes) == "t3"
    assert best_match({"a4"}, themes) == "t2"
    assert best_match({"nobody"}, themes) is None
    assert best_match({"a1"}, {}) is None


def test_clean_bertopic_name() -> None:
    assert clean_bertopic_name("0_school_uniform_students_wear") == "school uniform students wear"
    assert clean_bertopic_name("12_guns_right") == "guns right"
