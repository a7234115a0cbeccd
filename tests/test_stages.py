"""Each pipeline stage on small synthetic inputs, in the manner of scikit-learn's own tests: blobs whose answer is
known, properties that must hold for any text, and tamperings the checks must catch. Fast and deterministic;
the real spaCy pipeline and encoder are used where a stage needs them (no mocks)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from synth.config import SynthConfig, default_cache_dir
from synth.formats.common import LoadedInput
from synth.pipeline import embed_prepared, run, section_data
from synth.pipeline.breakdown import breakdowns, dimensions
from synth.pipeline.cluster import (
    canonical,
    cluster,
    communities,
    join_outliers,
    neighbours,
    shared_neighbour_graph,
    unit,
)
from synth.pipeline.code import code_section, scores
from synth.pipeline.label import (
    KeywordModel,
    SectionData,
    label_themes,
    make_label,
    n_representatives,
    representatives,
)
from synth.pipeline.minority import find_minority_views, vote_split
from synth.pipeline.prepare import duplicate_key, find_duplicates, normalise, prepare, segment_texts
from synth.pipeline.summarize import summarize
from synth.pipeline.titles import choose_title
from synth.pipeline.verify import SynthesisInvalid, check, verify
from synth.redact import BLOCK, redact
from synth.schema import Citation, Code, Contribution, Segment, SummarySentence, Synthesis, Theme, Votes

CONFIG = SynthConfig()


# --- synthetic inputs -----------------------------------------------------------------------------------


def blobs(sizes: list[int], dims: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs as unit vectors (the pipeline's vectors are unit length), with labels."""
    x, y = make_blobs(n_samples=sizes, n_features=dims, cluster_std=1.0, center_box=(-10, 10), random_state=seed)
    return unit(x), y


def directions_away(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k orthonormal directions orthogonal to every row of `vectors`: as far from them as a vector can be."""
    basis = np.linalg.qr(vectors.T)[0][:, : np.linalg.matrix_rank(vectors)]
    r = np.random.default_rng(seed).normal(size=(vectors.shape[1], k))
    return np.linalg.qr(r - basis @ (basis.T @ r))[0].T


def section(
    texts: list[str],
    vectors: np.ndarray,
    groups: list[str | None] | None = None,
    participants: list[str] | None = None,
    attributes: list[dict[str, str]] | None = None,
    votes: dict[int, dict[str, Votes]] | None = None,
) -> SectionData:
    """One contribution (and one segment, its whole text) per row: a section with known vectors."""
    contributions, segments = {}, []
    for i, text in enumerate(texts):
        cid = f"c{i}"
        contributions[cid] = Contribution(
            id=cid,
            text=text,
            participant_id=participants[i] if participants else f"p{i}",
            group=groups[i] if groups else None,
            attributes=attributes[i] if attributes else {},
            group_votes=(votes or {}).get(i, {}),
        )
        segments.append(Segment(id=f"{cid}:1", contribution_id=cid, start=0, end=len(text), text=text))
    lemmas = {s.id: " ".join(w.lower() for w in s.text.split() if w.isalpha()) for s in segments}
    return SectionData(None, "", segments, np.asarray(vectors, dtype=float), contributions, {}, lemmas)


def theme_of(data: SectionData, theme_id: str, idx: list[int] | np.ndarray, parent: str | None = None) -> Theme:
    """A theme holding the section's segments at `idx` (for stages that take themes as given)."""
    segs = [data.segments[i] for i in idx]
    cids = list(dict.fromkeys(s.contribution_id for s in segs))
    return Theme(
        id=theme_id,
        label=theme_id,
        title=theme_id,
        keywords=[],
        parent_id=parent,
        segment_ids=[s.id for s in segs],
        contribution_ids=cids,
        representatives=[],
        n_contributions=len(cids),
        n_participants=len({data.participant(c) for c in cids}),
        cohesion=0.0,
    )


SUBJECTS = [
    ["School uniforms", "Blazers", "School ties", "PE kits", "Logo jumpers"],
    ["Buses", "Bus fares", "Night buses", "Rural bus routes", "Bus timetables"],
    ["Parks", "Playgrounds", "Park benches", "Green spaces", "Duck ponds"],
]
PREDICATES = [
    ["cost too much", "are too expensive", "should be cheaper", "hurt poor families", "need a grant",
     "could be second-hand", "must be simpler", "waste money"],
    ["are unreliable", "run too rarely", "cost too much", "need more stops", "must improve", "ignore villages",
     "should be free", "end too early"],
    ["need more bins", "are poorly kept", "feel unsafe", "need more trees", "lack toilets", "must be protected",
     "close too early", "need lighting"],
]  # fmt: skip


def topic_texts(k: int) -> list[str]:
    """40 distinct sentences on topic k."""
    return [f"{s} {p}, says a resident." for p in PREDICATES[k] for s in SUBJECTS[k]]


def blob_section(seed: int = 0) -> tuple[SectionData, dict[str, list[str]]]:
    """Three themes of 40, a tight group of 4 far from them all (under the smallest theme's size), and two lone
    voices far from everything: what the minority stage must find, and where."""
    big, y = blobs([40, 40, 40], seed=seed)
    centres = unit(np.vstack([big[y == k].mean(axis=0) for k in range(3)]))
    away = directions_away(centres, 3, seed)
    rng = np.random.default_rng(seed)
    small = unit(away[0] + 0.05 * rng.normal(size=(4, big.shape[1])))
    vectors = np.vstack([big, small, away[1:]])
    pools = [iter(topic_texts(k)) for k in range(3)]
    texts = [next(pools[k]) for k in y]
    texts += [f"Fireworks frighten the horses at the riding stables, note {i}." for i in range(4)]
    texts += ["Cats should be allowed in the reading room.", "Paint every lamppost in the borough bright purple."]
    ids = [f"c{i}" for i in range(len(texts))]
    return section(texts, vectors), {"small": ids[120:124], "lone": ids[124:]}


# --- prepare --------------------------------------------------------------------------------------------


def test_normalise_folds_compatibility_forms_and_spacing() -> None:
    assert normalise("  \ufb01ne\u00a0 day\n\tout\u2003") == "fine day out"  # ligature, no-break and em spaces
    assert normalise("\uff21\uff22\uff23") == "ABC"  # full-width letters
    assert duplicate_key("It's  GREAT!!") == duplicate_key("it s great") == "it s great"


@given(st.text(max_size=200))
def test_normalise_and_duplicate_key_are_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once and "  " not in once and once == once.strip()
    assert duplicate_key(duplicate_key(text)) == duplicate_key(text)


def test_duplicates_exact_and_near_keep_the_earliest() -> None:
    base = "The council should build more affordable homes for young families in the town centre."
    contributions = [
        Contribution(id="a", text=base),
        Contribution(id="b", text=base.replace("centre.", "centres.")),  # one letter more
        Contribution(
            id="c", text="  THE council should build more affordable homes, for young families in the town centre!!"
        ),
        Contribution(id="d", text="The council should build more parks for young families in the town centre."),
        Contribution(id="e", text="Buses are late."),
        Contribution(id="f", text="buses ARE late"),
    ]
    found = find_duplicates(contributions, CONFIG.near_duplicate_similarity)
    assert set(found) == {"b", "c", "f"}  # 'd' shares most words but says something else
    assert found["c"] == ("a", "exact duplicate") and found["f"] == ("e", "exact duplicate")
    kept, reason = found["b"]
    assert kept == "a" and reason.startswith("near duplicate")
    assert float(reason.split()[-1].rstrip(")")) >= CONFIG.near_duplicate_similarity
    assert find_duplicates(contributions, 1.0).keys() == {"c", "f"}  # at 1.0 only exact ones remain


def test_prepare_excludes_with_reasons_and_segments_the_rest() -> None:
    text = "We need more buses at night. The last one leaves far too early for shift workers."
    contributions = [
        Contribution(id="ok", text=text, question="Q1"),
        Contribution(id="blank", text=" \n\t ", question="Q1"),
        Contribution(id="long", text="x" * 101, question="Q1"),
        Contribution(id="copy", text=text.upper(), question="Q1"),
        Contribution(id="other-question", text=text, question="Q2"),  # the same words to another question
        Contribution(id="short", text="Yes.", question="Q1"),
    ]
    prepared = prepare(contributions, [], SynthConfig(max_text_chars=100), cache_dir=None)
    reasons = {e.contribution_id: e.reason for e in prepared.excluded}
    assert [e.contribution_id for e in prepared.excluded] == ["blank", "long", "copy"]  # in input order
    assert reasons["blank"] == "empty text" and "over the limit of 100" in reasons["long"]
    assert reasons["copy"] == "exact duplicate of ok" and prepared.duplicates == {"ok": ["copy"]}
    assert prepared.analysed_ids == ["ok", "other-question", "short"]
    by_owner: dict[str, list[Segment]] = {}
    for s in prepared.segments:
        by_owner.setdefault(s.contribution_id, []).append(s)
    assert [s.text for s in by_owner["ok"]] == ["We need more buses at night.", text[29:]]
    assert [s.id for s in by_owner["ok"]] == ["ok:1", "ok:2"]
    assert [s.text for s in by_owner["short"]] == ["Yes."]  # too short to split, kept whole
    assert set(prepared.lemmas) == {s.id for s in prepared.segments}
    assert "bus" in prepared.lemmas["ok:1"].split()  # content lemmas, lower case


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(
            st.sampled_from(["Yes.", " No!", "We need buses", " at night", ".", "\n\n", "  ", "?", "é"]), max_size=40
        ).map("".join),
    ),
    st.integers(1, 60),
)
def test_segments_are_exact_spans_that_lose_no_character(text: str, min_chars: int) -> None:
    (spans,) = segment_texts([text], min_chars, None)
    ends = [0]
    for start, end, _ in spans:
        piece = text[start:end]
        assert ends[-1] <= start < end <= len(text)  # in order, not overlapping, not empty
        assert not piece[0].isspace() and not piece[-1].isspace()
        ends.append(end)
    covered = set().union(*(range(s, e) for s, e, _ in spans))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # every word is in a segment
    assert len(spans) <= 1 or all(e - s >= min_chars for s, e, _ in spans)  # short pieces joined a neighbour


def test_segments_come_from_the_cache_on_a_second_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["Rents are too high. Young people leave the village for the city.", "Keep the library open."]
    first = segment_texts(texts, 25, tmp_path)

    def no_spacy() -> None:
        raise AssertionError("spaCy was called although every text is cached")

    # the module, not the package's `prepare` function of the same name
    monkeypatch.setattr(importlib.import_module("synth.pipeline.prepare"), "load_nlp", no_spacy)
    assert segment_texts(texts, 25, tmp_path) == first
    with pytest.raises(AssertionError, match="spaCy was called"):
        segment_texts(texts, 10, tmp_path)  # another min_chars is another key


# --- cluster --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dims", "seed"), [(20, 0), (32, 1), (50, 2)])
def test_blobs_are_recovered_and_a_far_point_stays_unassigned(dims: int, seed: int) -> None:
    vectors, truth = blobs([60, 50, 40, 30], dims, seed)
    centres = unit(np.vstack([vectors[truth == k].mean(axis=0) for k in range(4)]))
    far = directions_away(centres, 1, seed)
    result = cluster(np.vstack([vectors, far]), CONFIG)
    assert result.n_themes == 4
    assert adjusted_rand_score(truth, result.labels[:-1]) >= 0.95
    assert result.labels[-1] == -1 and not result.joined[-1]
    assert (result.labels[:-1] >= 0).mean() >= 0.95  # almost every blob point is placed
    # sub-themes only inside themes; where a theme has them, at least two, numbered from 0
    assert (result.sub_labels[result.labels < 0] == -1).all() and (result.sub_labels >= 0).any()
    for theme in range(result.n_themes):
        subs = result.sub_labels[result.labels == theme]
        if (subs >= 0).any():
            assert set(subs[subs >= 0].tolist()) == set(range(int(subs.max()) + 1)) and subs.max() >= 1
    assert result.params["clusterer"] == "graph" and result.params["n_segments"] == len(truth) + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustering_is_deterministic_and_ignores_row_order(seed: int) -> None:
    vectors, _ = blobs([50, 40, 30, 20], 24, seed)
    a, b = cluster(vectors, CONFIG), cluster(vectors, CONFIG)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.sub_labels, b.sub_labels)
    perm = np.random.default_rng(seed).permutation(len(vectors))
    shuffled = cluster(vectors[perm], CONFIG)
    assert adjusted_rand_score(a.labels[perm], shuffled.labels) == 1.0  # the same themes, maybe renumbered
    assert np.array_equal(a.labels[perm] < 0, shuffled.labels < 0)  # and the same unassigned
    assert sorted(np.bincount(a.labels[a.labels >= 0])) == sorted(np.bincount(shuffled.labels[shuffled.labels >= 0]))


def test_a_group_under_the_smallest_theme_is_left_for_the_minority_stage() -> None:
    """Modularity would fold three like-minded contributions into a large theme; they must stay unassigned
    (and together) so the minority stage sees them."""
    vectors, truth = blobs([40, 40, 40], 32, 3)
    centres = unit(np.vstack([vectors[truth == k].mean(axis=0) for k in range(3)]))
    d = directions_away(centres, 1, 3)[0]
    few = unit(d + 0.05 * np.random.default_rng(3).normal(size=(3, 32)))
    result = cluster(np.vstack([vectors, few]), CONFIG)
    assert CONFIG.cluster_size_for(123) > 3
    assert result.n_themes == 3 and (result.labels[-3:] == -1).all() and not result.joined[-3:].any()
    assert adjusted_rand_score(truth, result.labels[:-3]) >= 0.95


def test_join_outliers_takes_only_close_candidates() -> None:
    rng = np.random.default_rng(0)
    e = np.eye(8)
    members = unit(np.vstack([e[0] + 0.3 * rng.normal(size=(5, 8)), e[1] + 0.3 * rng.normal(size=(5, 8))]))
    near, far = unit(e[0] + 0.3 * e[2]), e[3]
    vectors = np.vstack([members, near, far])
    labels = np.array([0] * 5 + [1] * 5 + [-1, -1])
    out, joined = join_outliers(vectors, labels, CONFIG)
    assert out[10] == 0 and joined[10] and out[11] == -1 and not joined[11]
    assert np.array_equal(out[:10], labels[:10]) and not joined[:10].any()  # members stay, not "joined"
    assert np.array_equal(labels[10:], [-1, -1])  # the input is not changed
    offered = np.array([True] * 10 + [False, True])
    out, joined = join_outliers(vectors, labels, CONFIG, candidates=offered)
    assert out[10] == -1 and not joined.any()  # not offered: stays out however close
    cos = float(unit(members[:5].mean(axis=0)) @ near)
    assert (join_outliers(vectors, labels, SynthConfig(outlier_join_floor=cos + 0.01))[0][10:] == -1).all()
    # the bar is the theme's own spread: a point a little closer than its least central member joins at
    # quantile 0 (the least central member's cosine) and not at quantile 1 (the most central one's)
    centre = unit(members[:5].mean(axis=0))
    edge = unit(members[int(np.argmin(members[:5] @ centre))] + 0.01 * centre)
    spread = np.vstack([members, edge])
    one = np.array([0] * 5 + [1] * 5 + [-1])
    assert join_outliers(spread, one, SynthConfig(outlier_join_quantile=0.0))[0][-1] == 0
    assert join_outliers(spread, one, SynthConfig(outlier_join_quantile=1.0))[0][-1] == -1
    none = np.full(4, -1)
    assert np.array_equal(join_outliers(vectors[:4], none, CONFIG)[0], none)


def test_canonical_numbers_by_size_then_first_member() -> None:
    assert canonical(np.array([5, 5, 2, 2, 2, -1, 7, 9])).tolist() == [1, 1, 0, 0, 0, -1, 2, 3]
    assert canonical(np.array([-1, -1])).tolist() == [-1, -1]


def test_shared_neighbour_graph_is_the_jaccard_overlap_of_neighbourhoods() -> None:
    vectors, _ = blobs([15, 15], 10, 0)
    k = 5
    member = neighbours(vectors, k)
    assert (np.asarray(member.sum(axis=1)).ravel() == k + 1).all() and (member.diagonal() == 1).all()
    graph = shared_neighbour_graph(member).toarray()
    assert np.allclose(graph, graph.T) and (np.diag(graph) == 0).all() and graph.max() <= 1
    sets = [set(np.flatnonzero(member[i].toarray().ravel())) for i in range(len(vectors))]
    for i in range(len(vectors)):
        for j in range(len(vectors)):
            linked = i != j and (j in sets[i] or i in sets[j])
            expected = len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if linked else 0.0
            assert graph[i, j] == pytest.approx(expected)


def test_too_few_points_make_no_theme() -> None:
    vectors, _ = blobs([3, 2], 8, 0)
    result = cluster(vectors, CONFIG)
    assert result.n_themes == 0 and (result.labels == -1).all() and not result.joined.any()
    empty = cluster(np.zeros((0, 8)), CONFIG)
    assert empty.n_themes == 0 and empty.labels.shape == (0,)
    assert (communities(vectors, CONFIG, 3) == -1).all()
    assert np.array_equal(unit(np.array([[0.0, 0.0], [3.0, 4.0]])), [[0, 0], [0.6, 0.8]])  # zero stays zero


# --- label ----------------------------------------------------------------------------------------------


def test_keywords_are_what_sets_a_theme_apart() -> None:
    housing = ["think rent high", "think rent housing", "think housing afford", "think rent housing afford"] * 2
    buses = ["think bus late", "think bus fare", "think bus route late", "think bus fare route"] * 2
    parks = ["think park tree", "think park bench", "think tree bench", "think park tree bench"] * 2
    docs = [*housing, *buses, *parks, "think rent typo"]  # 'typo' is in one segment only
    classes = np.array([0] * 8 + [1] * 8 + [2] * 8 + [0])
    model = KeywordModel(docs, classes)
    words = [model.keywords_for(np.flatnonzero(classes == c), 8) for c in range(3)]
    assert words[0][:3] == ["rent", "housing", "afford"] and words[1][0] == "bus" and words[2][0] == "bench"
    own_words = (["rent", "housing", "afford"], ["bus", "fare", "late", "route"], ["park", "tree"])
    for chosen, own in zip(words, own_words, strict=True):
        assert chosen.index("think") > max(chosen.index(w) for w in own)  # a word every theme uses sinks
    assert "typo" not in model.terms  # in one segment only
    assert "think rent" in model.terms and "think rent" not in words[0]  # it says no more than 'rent' alone
    for chosen in words:  # no unigram inside a chosen bigram, nor the reverse
        assert not any(a != b and set(a.split()) <= set(b.split()) for a in chosen for b in chosen)
    assert model.common_terms(0.5) == {"think"} and "rent" in model.common_terms(0.2)
    assert model.keywords_for(np.array([], dtype=int), 3) == []
    assert make_label([]) == "Miscellaneous" and make_label(["affordable housing", "rent"]) == "Affordable housing"


def test_representatives_are_central_but_not_repeated() -> None:
    e = np.eye(4)
    vectors = unit(np.vstack([e[0] + 0.4 * e[1], e[0] + 0.4 * e[1] + 1e-3 * e[3], e[0] - 0.4 * e[1], e[2]]))
    assert representatives(vectors, 2, 0.0) == [0, 1]  # by centrality alone the near-copy comes second
    assert representatives(vectors, 2, 0.3) == [0, 2]  # with some diversity, the other side of the theme does
    assert representatives(vectors, 2, 1.0) == [0, 3]  # with diversity alone, the least like the first
    assert sorted(representatives(vectors, 9, 0.3)) == [0, 1, 2, 3] and representatives(vectors[:0], 3, 0.3) == []
    assert (n_representatives(19, 5), n_representatives(20, 5), n_representatives(50, 2)) == (3, 5, 2)


def test_themes_are_labelled_with_their_own_words() -> None:
    data, _ = blob_section()
    result = cluster(data.vectors, CONFIG)
    themes = label_themes(data, result, CONFIG)
    top = [t for t in themes if t.parent_id is None]
    assert len(top) == 3 and [t.id for t in top] == ["t1", "t2", "t3"]
    assert len({t.label.lower() for t in themes}) == len(themes)  # labels distinct within the section
    assert len({t.title.lower() for t in themes}) == len(themes)
    text = {c: x.text for c, x in data.contributions.items()}
    for t in themes:
        assert t.title_citation is not None and t.title[1:] == t.title_citation.quote[1:]
        assert t.title_citation.contribution_id in t.contribution_ids
        c = t.title_citation
        assert text[c.contribution_id][c.start : c.end] == c.quote
        assert len(t.representatives) == n_representatives(len(t.segment_ids), CONFIG.n_representatives_max)
        assert {r.contribution_id for r in t.representatives} <= set(t.contribution_ids)
        member_words = {w for s in t.segment_ids for w in data.lemmas[s].split()}
        assert t.keywords and all(set(k.split()) <= member_words for k in t.keywords)
    for t in top:  # each theme is one blob, whole
        topics = {k for c in t.contribution_ids for k in range(3) if text[c] in topic_texts(k)}
        assert t.n_contributions == 40 and len(topics) == 1 and 0.5 < t.cohesion <= 1.0


def test_a_title_is_never_reused_and_prefers_a_sentence_that_stands_alone() -> None:
    texts = ["It is far too expensive for most families.", "Uniforms are far too expensive for most families."]
    vectors = np.vstack([np.eye(3)[0]] * 2)  # equally central: the dangling 'It' decides
    best = choose_title(texts, vectors, set())
    assert best is not None and best.segment == 1 and best.text == "Uniforms are far too expensive for most families"
    other = choose_title(texts, vectors, {best.text.lower()})
    assert other is not None and other.segment == 0 and other.text.lower() != best.text.lower()
    assert texts[0][other.start : other.end][1:] == other.text[1:]
    assert choose_title([], np.zeros((0, 3)), set()) is None


# --- minority views -------------------------------------------------------------------------------------


def test_minority_views_find_the_small_group_and_the_lone_voices() -> None:
    data, planted = blob_section()
    result = cluster(data.vectors, CONFIG)
    themes = label_themes(data, result, CONFIG)
    views = find_minority_views(data, themes, np.flatnonzero(result.labels < 0), CONFIG)
    assert [v.id for v in views] == [f"m{i + 1}" for i in range(len(views))]
    assert {v.kind for v in views} == {"small_distinct_theme", "lone_voices"}
    (small,) = [v for v in views if v.kind == "small_distinct_theme"]
    assert small.contribution_ids == planted["small"] and small.theme_id is None
    assert small.stats["similarity_to_nearest_theme"] < CONFIG.distinct_max_similarity
    assert small.statement_citation is not None and small.statement_citation.contribution_id in planted["small"]
    assert small.statement[1:] == small.statement_citation.quote[1:]
    (lone,) = [v for v in views if v.kind == "lone_voices"]
    assert lone.contribution_ids == planted["lone"] and not lone.statement
    assert {q.contribution_id for q in lone.quotes} <= set(planted["lone"])
    assert lone.stats["max_similarity"] < CONFIG.lone_voice_max_similarity


def test_a_small_theme_far_from_the_large_ones_and_dissent_within_a_theme() -> None:
    e = np.eye(16)
    rng = np.random.default_rng(1)

    def around(d: np.ndarray, n: int) -> np.ndarray:
        return unit(d + 0.05 * rng.normal(size=(n, 16)))

    vectors = np.vstack(
        [
            around(e[0], 25),  # t1: 25 on e0 ...
            around(e[1], 5),  # ... and 5 on e1 (t1.1: a line of its own)
            around(e[2], 30),  # t2 ...
            around(e[2] + 0.2 * e[3], 5),  # ... t2.1: close to the rest of t2
            around(e[4], 2),  # t3: small and far
            around(e[2] + 0.3 * e[5], 2),  # t4: small but near t2
        ]
    )
    data = section([f"Passage {i} on its own topic." for i in range(len(vectors))], vectors)
    themes = [
        theme_of(data, "t1", range(30)),
        theme_of(data, "t1.1", range(25, 30), parent="t1"),
        theme_of(data, "t1.2", range(0, 5), parent="t1"),
        theme_of(data, "t2", range(30, 65)),
        theme_of(data, "t2.1", range(60, 65), parent="t2"),
        theme_of(data, "t3", range(65, 67)),
        theme_of(data, "t4", range(67, 69)),
    ]
    views = find_minority_views(data, themes, np.array([], dtype=int), CONFIG)
    found = {(v.kind, v.theme_id, v.stats.get("sub_theme")) for v in views}
    assert found == {("small_distinct_theme", "t3", None), ("dissent_in_theme", "t1", "t1.1")}
    small = next(v for v in views if v.kind == "small_distinct_theme")
    assert small.stats["nearest_large_theme"] in {"t1", "t2"} and small.stats["share_of_section"] == round(2 / 69, 4)


def test_vote_splits_need_enough_voters_on_both_sides() -> None:
    split = {"A": Votes(agree=8, disagree=1, passed=1), "B": Votes(agree=1, disagree=8)}
    votes = {
        0: split,
        1: {"A": Votes(agree=8, disagree=1), "B": Votes(agree=7, disagree=2)},  # both agree: no split
        2: {"A": Votes(agree=3), "B": Votes(disagree=9)},  # A's 3 voters are too few to count
        3: split,
    }
    data = section([f"Comment {i}." for i in range(4)], np.eye(4), votes=votes)
    views = vote_split(data, [theme_of(data, "t1", [0, 1, 2])], ["c3"], CONFIG)
    assert [(v.theme_id, v.contribution_ids) for v in views] == [("t1", ["c0"]), (None, ["c3"])]
    assert views[0].stats["agree_group"] == "A" and views[0].stats["disagree_group"] == "B"
    assert views[0].stats["agree_share"] == 0.8 and views[0].stats["disagree_share"] == round(8 / 9, 4)


def _strata() -> tuple[SectionData, list[Theme]]:
    """80 participants: A 40, B 30, C 10. t1 is 20 of A (one of them writing twice); t2 is B-heavy with 2 of C;
    t3 has A, B and C in the section's own proportions."""
    people = [("A", i) for i in range(40)] + [("B", i) for i in range(30)] + [("C", i) for i in range(10)]
    groups = [g for g, _ in people] + ["A"]
    pids = [f"{g}{i}" for g, i in people] + ["A0"]  # A0 writes a second contribution
    attributes = [
        {"age": "young" if i % 2 else "old", "postcode": f"PC{n}", "country": "UK", "tenure": ""}
        for n, (_, i) in enumerate(people)
    ] + [{"age": "old", "postcode": "PC0", "country": "UK", "tenure": ""}]
    data = section([f"Contribution {n}." for n in range(81)], np.eye(81), groups, pids, attributes)
    a, b, c = range(0, 40), range(40, 70), range(70, 80)
    themes = [
        theme_of(data, "t1", [*a[:20], 80]),
        theme_of(data, "t2", [*a[20:26], *b[:12], *c[:2]]),
        theme_of(data, "t3", [*a[26:34], *b[12:18], *c[2:4]]),
    ]
    return data, themes


def test_breakdowns_withhold_small_cells_and_flag_only_what_survives_correction() -> None:
    data, themes = _strata()
    assert set(dimensions(data)) == {"group", "age"}  # one value (country), all distinct (postcode), empty: none
    (group,) = [b for b in breakdowns(data, themes, CONFIG) if b.dimension == "group"]
    assert group.overall == {"A": 40, "B": 30, "C": 10} and group.participants == 80
    rows = {r.theme_id: r for r in group.themes}
    assert [r.participants for r in group.themes] == [20, 20, 16]  # people, not contributions
    cells = {(t, c.value): c for t, r in rows.items() for c in r.cells}
    for cell in cells.values():
        if cell.participants is None:
            assert cell.share is None and cell.flag is None
        else:
            assert cell.participants >= CONFIG.privacy_floor
    for r in group.themes:
        assert sum(c.participants is None for c in r.cells) != 1  # a lone withheld cell could be worked out
    assert cells["t2", "C"].participants is None and cells["t2", "A"].participants is None  # A: secondary
    assert cells["t2", "A"].flag is None and cells["t2", "A"].q_value is None
    assert (cells["t1", "A"].participants, cells["t1", "A"].share, cells["t1", "A"].flag) == (20, 1.0, "over")
    p = fisher_exact([[20, 0], [20, 40]], alternative="two-sided").pvalue
    assert p <= cells["t1", "A"].q_value < CONFIG.group_fdr
    assert cells["t3", "A"].share == 0.5 and cells["t3", "A"].flag is None  # the section's own share
    assert cells["t3", "A"].q_value >= CONFIG.group_fdr
    assert cells["t2", "B"].participants == 12
    lax = breakdowns(data, themes, SynthConfig(privacy_floor=1))[0]
    assert all(c.participants is not None for r in lax.themes[1:] for c in r.cells)  # a floor of 1: only zeros
    assert [c.participants for c in lax.themes[0].cells] == [20, None, None]


def test_concentration_is_a_corrected_one_sided_fisher_test() -> None:
    data, themes = _strata()
    views = find_minority_views(data, themes, np.array([], dtype=int), CONFIG)
    flagged = {
        (v.theme_id, v.stats["dimension"], v.stats["group"]): v for v in views if v.kind == "concentrated_in_group"
    }
    assert ("t1", "group", "A") in flagged and not any(t == "t3" for t, _, _ in flagged)
    assert not any(d == "postcode" for _, d, _ in flagged)
    v = flagged["t1", "group", "A"]
    p = fisher_exact([[20, 0], [20, 40]], alternative="greater").pvalue
    assert v.stats["p_value"] == pytest.approx(p, rel=1e-3) and p <= v.stats["q_value"] < CONFIG.group_fdr
    for x in flagged.values():
        assert x.stats["share_in_theme"] > x.stats["share_overall"] and x.stats["q_value"] < CONFIG.group_fdr
    assert all(x.stats["p_value"] <= x.stats["q_value"] for x in flagged.values())  # corrected, never lower


# --- summarize ------------------------------------------------------------------------------------------


def test_summaries_count_what_they_cite_and_quote_verbatim() -> None:
    data, planted = blob_section()
    result = cluster(data.vectors, CONFIG)
    themes = label_themes(data, result, CONFIG)
    unassigned = np.flatnonzero(result.labels < 0)
    views = find_minority_views(data, themes, unassigned, CONFIG)
    summaries = summarize(data, themes, views, [data.segments[i] for i in unassigned])
    top = [t for t in themes if t.parent_id is None]
    assert [s.scope for s in summaries] == ["overview"] + [t.id for t in top]
    text = {c: x.text for c, x in data.contributions.items()}
    seg = {s.id: s for s in data.segments}
    overview = summaries[0]
    assert overview.sentences and all(x.citations for x in overview.sentences)
    first = overview.sentences[0]
    n_themed = sum(t.n_contributions for t in top)
    assert first.text.startswith(f"126 contributions from 126 participants were analysed; {n_themed} of them")
    assert {c.contribution_id for c in first.citations} == {c for t in top for c in t.contribution_ids}
    last = overview.sentences[-1]
    assert last.text.startswith("6 contributions have passages that fit no theme")
    assert {c.contribution_id for c in last.citations} == set(planted["small"] + planted["lone"])
    for summary, t in zip(summaries[1:], top, strict=True):
        count, *rest = summary.sentences
        quotes = [x for x in rest if x.kind == "quote"]
        assert [x.kind for x in rest] == ["count"] * (len(rest) - len(quotes)) + ["quote"] * len(quotes)
        assert count.text.startswith(f"{t.n_contributions} contributions from {t.n_participants} participants")
        assert count.citations == [t.title_citation] + [Citation.of(seg[x]) for x in t.segment_ids]  # all of them
        assert 1 <= len(quotes) <= 2
        shown = [t.title_citation.contribution_id] + [q.citations[0].contribution_id for q in quotes]
        assert len(shown) == len(set(shown))  # each quote from another contribution
        for q in quotes:
            (c,) = q.citations
            assert f"\u201c{c.quote}\u201d" in q.text and c.contribution_id in t.contribution_ids
    for s in summaries:
        for x in s.sentences:
            assert x.citations and all(text[c.contribution_id][c.start : c.end] == c.quote for c in x.citations)


# --- a whole small run: verify, redact, code ------------------------------------------------------------

UNIFORMS = [
    "School uniforms are far too expensive. My son grows out of his blazer every single term.",
    "School uniforms are far too expensive. We should let pupils wear plain clothes from any shop.",
    "The branded uniform costs families hundreds of pounds each year.",
    "Parents on low incomes cannot afford the compulsory school blazer and tie.",
    "Uniform rules should allow cheap supermarket jumpers instead of logo ones.",
    "Requiring a specific school logo on every item makes uniforms cost more.",
    "A second-hand uniform swap at every school would help struggling families.",
    "The price of PE kit with the school crest is unreasonable.",
    "Schools should drop expensive branded items from their uniform lists.",
    "Buying two sets of uniform for each child strains our household budget.",
    "Uniform grants for poorer families should be increased.",
    "Children should not be sent home for wearing the wrong colour socks.",
]
BUSES = [
    "The number 12 bus is always late in the mornings.",
    "Bus services to the villages stop far too early in the evening.",
    "Bus fares have gone up so much that driving is now cheaper.",
    "We need more frequent buses between the town centre and the hospital.",
    "Buses should run on Sundays so people can get to work.",
    "The bus station is dirty and feels unsafe after dark.",
    "Older residents rely on the bus and are stranded when routes are cut.",
    "Real-time bus arrival screens at stops would help a lot.",
    "Cheaper bus passes for students and apprentices would get cars off the road.",
    "The council should bring the bus routes back under public control.",
    "Timetables change without warning and the buses never match them.",
    "Rural bus routes have been cut and now my nearest stop is two miles away.",
]
PARKS = [
    "The park needs more bins because litter is everywhere.",
    "Please keep the playground open and repair the broken swings.",
    "Green spaces should be protected from new housing developments.",
    "The park lights should stay on later so it feels safe in winter.",
    "Dog owners need a fenced area in the park.",
    "More trees and benches in the park would make it nicer for older people.",
    "The pond in the park is polluted and smells in summer.",
    "Our local park has no toilets, which makes it hard for families.",
    "Community gardening plots in the park would bring neighbours together.",
    "The grass in the park is never cut and the paths are overgrown.",
    "Skate parks give teenagers somewhere to go in the evening.",
    "Wildflower meadows in the parks help bees and butterflies.",
]


@pytest.fixture(scope="module")
def small_input() -> LoadedInput:
    contributions = [
        Contribution(id=f"{key}{i}", text=text, participant_id=f"{key}{i}", group=group if i % 4 else "residents")
        for key, texts, group in (("u", UNIFORMS, "parents"), ("b", BUSES, "commuters"), ("p", PARKS, "residents"))
        for i, text in enumerate(texts, start=1)
    ]
    contributions.append(
        Contribution(
            id="dup", text="school uniforms are FAR too expensive!! My son grows out of his blazer every single term"
        )
    )
    return LoadedInput(contributions=contributions, excluded=[], source="synthetic", sha256="0" * 64)


@pytest.fixture(scope="module")
def small_run(small_input: LoadedInput) -> Synthesis:
    return run(small_input, CONFIG, cache_dir=default_cache_dir()).synthesis


def test_a_small_run_verifies(small_run: Synthesis) -> None:
    assert check(small_run) == []
    top = [t for t in small_run.sections[0].themes if t.parent_id is None]
    assert len(top) >= 2 and [e.contribution_id for e in small_run.excluded] == ["dup"]


def _sentence(s: Synthesis, kind: str) -> SummarySentence:
    return next(x for sm in s.sections[0].summaries for x in sm.sentences if x.kind == kind)


def _top(s: Synthesis) -> Theme:
    return next(t for t in s.sections[0].themes if t.parent_id is None)


def _tamper_quote(s: Synthesis) -> None:
    _top(s).representatives[0].quote += " (paraphrased)"


def _uncite(s: Synthesis) -> None:
    _sentence(s, "count").citations = []


def _shift_citation(s: Synthesis) -> None:
    c = _sentence(s, "quote").citations[0]
    c.start, c.end = c.start + 1, c.end + 1


def _shift_segment(s: Synthesis) -> None:
    s.segments[0].start += 1


def _place_twice(s: Synthesis) -> None:
    s.sections[0].unassigned_segment_ids.append(_top(s).segment_ids[0])


def _lose_segment(s: Synthesis) -> None:
    t = _top(s)
    t.segment_ids.pop()


def _miscount(s: Synthesis) -> None:
    _top(s).n_contributions += 1


def _retitle(s: Synthesis) -> None:
    t = _top(s)
    assert t.title_citation is not None
    t.title = t.title + " and more"


def _unsupported_draft(s: Synthesis) -> None:
    x = _sentence(s, "quote")
    x.kind, x.support = "drafted", 0.1


def _excluded_twice(s: Synthesis) -> None:
    s.excluded.append(s.excluded[0])


def _coverage(s: Synthesis) -> None:
    s.coverage.n_themed -= 1


TAMPERINGS: list[tuple[Callable[[Synthesis], None], str]] = [
    (_tamper_quote, "representative: quote is not the text of"),
    (_uncite, "has no citation"),
    (_shift_citation, "quote is not the text of"),
    (_shift_segment, "is not the text at"),
    (_place_twice, "is placed 2 times"),
    (_lose_segment, "is in no theme and not unassigned"),
    (_miscount, "contribution ids or count disagree"),
    (_retitle, "title is not the words it cites"),
    (_unsupported_draft, "drafted sentence not supported"),
    (_excluded_twice, "is excluded 2 times"),
    (_coverage, "coverage figures disagree"),
]


@pytest.mark.parametrize(("tamper", "problem"), TAMPERINGS, ids=[t.__name__.strip("_") for t, _ in TAMPERINGS])
def test_verify_reports_each_broken_invariant(small_run: Synthesis, tamper: Callable, problem: str) -> None:
    broken = small_run.model_copy(deep=True)
    tamper(broken)
    problems = check(broken)
    assert any(problem in p for p in problems), problems
    with pytest.raises(SynthesisInvalid) as refused:
        verify(broken)
    assert refused.value.problems == problems
    assert check(small_run) == []  # the tampering was on a copy


def _citations(node: object) -> list[dict]:
    """Every Citation in a dumped Synthesis's sections."""
    if isinstance(node, list):
        return [c for x in node for c in _citations(x)]
    if isinstance(node, dict):
        if "contribution_id" in node and "quote" in node:
            return [node]
        return [c for x in node.values() for c in _citations(x)]
    return []


def test_redaction_masks_only_the_erased_words_and_every_citation_resolves(small_run: Synthesis) -> None:
    before = small_run.model_dump(mode="json")
    out = redact(small_run, {"u1"}, "erasure request", at="2025-01-01T00:00:00+00:00")
    assert small_run.model_dump(mode="json") == before  # a pure function
    assert check(out) == []  # lengths kept: every citation still resolves
    text = {c.id: c.text for c in out.contributions}
    assert text["u1"] == BLOCK * len(UNIFORMS[0])
    assert all(text[c.id] == c.text for c in small_run.contributions if c.id != "u1")
    assert [s.text for s in out.segments if s.contribution_id != "u1"] == [
        s.text for s in small_run.segments if s.contribution_id != "u1"
    ]
    cited = _citations(out.model_dump(mode="json")["sections"])
    erased = [c for c in cited if c["contribution_id"] == "u1"]
    assert erased and all(set(c["quote"]) == {BLOCK} for c in erased)
    # u2 opens with the very sentence u1 opened with: its citations keep those words
    others = [c for c in cited if c["contribution_id"] != "u1"]
    assert others == [c for c in _citations(before["sections"]) if c["contribution_id"] != "u1"]
    assert any(c["contribution_id"] == "u2" and c["quote"].startswith("School uniforms are far too") for c in others)
    sections = json.dumps(out.model_dump(mode="json")["sections"], ensure_ascii=False)
    assert "My son grows" not in sections and "far too expensive" in sections  # u1's words go, u2's stay
    assert "My son grows" in text["dup"]  # an excluded copy by someone else is theirs: untouched
    assert out.metadata.redactions[-1].contribution_ids == ["u1"]


def test_redaction_leaves_a_sentence_quoting_someone_else_alone(small_run: Synthesis) -> None:
    s = small_run.model_copy(deep=True)
    theirs = next(
        x for x in s.segments if x.contribution_id == "u2" and x.text == "School uniforms are far too expensive."
    )
    sentence = SummarySentence(
        text=f"One participant wrote: \u201c{theirs.text}\u201d", citations=[Citation.of(theirs)], kind="quote"
    )
    s.sections[0].summaries[-1].sentences.append(sentence)
    assert check(s) == []
    out = redact(s, {"u1"}, "erasure request", at="2025-01-01T00:00:00+00:00")
    assert out.sections[0].summaries[-1].sentences[-1].text == sentence.text


def test_coding_keeps_coded_fits_none_and_undecided_apart() -> None:
    """A stand-in encoder for synthetic vectors: code i embeds as blob i's centre. Blob 2 has no code."""
    vectors, truth = blobs([20, 20, 20], 16, 4)
    centres = unit(np.vstack([vectors[truth == k].mean(axis=0) for k in range(3)]))
    data = section([f"Passage {i} about topic {k}." for i, k in enumerate(truth)], vectors)
    codes = [Code(id="zero", name="Topic zero"), Code(id="one", name="Topic one")]
    data.embed = lambda texts: centres[[0 if "zero" in t else 1 for t in texts]]
    coding = code_section(data, codes, CONFIG)
    coded = {a.segment_id: a.code_id for a in coding.assignments}
    parts = [set(coded), set(coding.fits_none), set(coding.undecided)]
    assert sum(map(len, parts)) == len(data.segments) and set().union(*parts) == {s.id for s in data.segments}
    assert all(coded.get(data.segments[i].id) == "zero" for i in np.flatnonzero(truth == 0))
    assert all(coded.get(data.segments[i].id) == "one" for i in np.flatnonzero(truth == 1))
    rest = {data.segments[i].id for i in np.flatnonzero(truth == 2)}
    assert rest <= set(coding.fits_none) | set(coding.undecided) and not rest & set(coded)
    assert set(coding.fits_none) == rest  # far below the floor, not merely undecided
    offered = [set(c.segment_ids) for c in coding.candidates]  # what no code covers, offered as new codes
    assert sum(map(len, offered)) == len(set().union(*offered)) and set().union(*offered) <= rest
    assert len(set().union(*offered)) >= 0.8 * len(rest)
    for c in coding.candidates:
        cited = c.title_citation
        assert data.contributions[cited.contribution_id].text[cited.start : cited.end] == cited.quote
    assert all(a.score >= 0.35 for a in coding.assignments)
    data.embed = None
    assert code_section(data, codes, CONFIG).assignments == []


def test_code_scores_ignore_what_the_whole_section_shares() -> None:
    rng = np.random.default_rng(0)
    passages, codes = rng.normal(size=(30, 12)), rng.normal(size=(4, 12))
    shared = 5 * rng.normal(size=12)  # the motion's own words, in every passage and every code
    assert np.allclose(scores(passages, codes), scores(passages + shared, codes + shared), atol=1e-4)
    assert not np.allclose(scores(passages, codes), unit(passages) @ unit(codes).T, atol=1e-2)


def test_coding_with_the_real_encoder(small_input: LoadedInput) -> None:
    prepared = prepare(small_input.contributions, [], CONFIG, cache_dir=default_cache_dir())
    vectors = embed_prepared(prepared, CONFIG, default_cache_dir())
    (data,) = section_data(prepared, vectors, CONFIG, default_cache_dir())
    codes = [
        Code(id="uniform", name="The cost of school uniform", description="Branded blazers, ties and PE kit"),
        Code(id="bus", name="Bus services", description="Bus routes, fares and timetables"),
    ]
    coding = code_section(data, codes, CONFIG)
    owner = {s.id: s.contribution_id for s in data.segments}
    by_code: dict[str, set[str]] = {}
    for a in coding.assignments:
        by_code.setdefault(a.code_id, set()).add(owner[a.segment_id])
    assert all(c.startswith("u") for c in by_code["uniform"]) and len(by_code["uniform"]) >= 6
    assert all(c.startswith("b") for c in by_code["bus"]) and len(by_code["bus"]) >= 3
    assert not any(owner[a.segment_id].startswith("p") for a in coding.assignments)  # parks: no code
