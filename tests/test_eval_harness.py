"""The evaluation harness on a tiny slice of real labelled data, so it cannot rot between full runs."""

from __future__ import annotations

import csv

from eval.harness import Corpus, scores
from eval.minority import _plant, score_plant
from eval.quality import evaluate_corpus, faithfulness
from synth.config import SynthConfig
from synth.pipeline import run
from tests.conftest import FIXTURES, PLANTED


def labelled_corpus() -> tuple[Corpus, list[str]]:
    rows = list(csv.DictReader((FIXTURES / "argkp-uniform-pro-clusters.csv").open()))
    gold = [r["cluster"] if r["cluster"] not in ("NONE", "MULTI") else None for r in rows]
    corpus = Corpus("uniform pro", [r["arg_id"] for r in rows], [r["argument"] for r in rows], gold)
    keypoints = [r["key_point"] for r in csv.DictReader((FIXTURES / "argkp-uniform-pro-keypoints.csv").open())]
    return corpus, keypoints


def test_scores_are_computed_against_gold() -> None:
    perfect = scores(["a", "a", "b", None], ["x", "x", "y", "-1"])
    assert perfect["ari"] == 1.0 and perfect["unassigned"] == 0.25 and perfect["themes"] == 2


def test_theme_quality_and_faithfulness_on_a_slice() -> None:
    corpus, keypoints = labelled_corpus()
    result, synthesis = evaluate_corpus(corpus, keypoints, with_bertopic=False)
    synth, oracle = result["synth"], result["kmeans (oracle k)"]
    # real signal, not noise: both methods recover part of the expert grouping
    assert synth["ari"] > 0.1 and oracle["ari"] > 0.1
    assert 0 <= synth["unassigned"] <= 0.2
    assert 0.5 <= synth["kp_recall"] <= 1.0 and 0 < synth["theme_precision"] <= 1.0
    faith = faithfulness([synthesis])
    assert faith["cited_share"] == 1.0 and faith["exact_share"] == 1.0
    assert faith["support_quote_median"] > 0.8


def test_planting_and_scoring_a_minority() -> None:
    rows = list(csv.DictReader(PLANTED.open()))
    host = Corpus(
        "host",
        [r["id"] for r in rows if r["planted"] == "0"],
        [r["text"] for r in rows if r["planted"] == "0"],
        [None] * 238,
    )
    guest_rows = [r for r in rows if r["planted"] == "1"]
    guest = Corpus("guest", [r["id"] for r in guest_rows], [r["text"] for r in guest_rows], [None] * 6)
    corpus, planted = _plant(host, guest, 5, seed=0)
    assert len(planted) == 5 and len(corpus.ids) == 243
    s = run(corpus.loaded(), SynthConfig()).synthesis
    recalled, false_flags, _ = score_plant(s, planted)
    assert recalled and false_flags <= 1
