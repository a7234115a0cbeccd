"""Minority views: plant small coherent groups (3-8 contributions from another motion or conversation)
into real corpora and measure recall and false flags; check vote-based dissent against the raw votes.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from eval.common import DATASETS, read_csv
from eval.harness import Corpus, cache
from synth.config import SynthConfig
from synth.formats import load_contributions
from synth.formats.polis import group_name
from synth.pipeline import run
from synth.schema import Synthesis

POLIS_EN = (
    "american-assembly.bowling-green",
    "bg2050-volunteers",
    "canadian-electoral-reform",
    "football-concussions",
    "scoop-hivemind.affordable-housing",
    "scoop-hivemind.biodiversity",
    "scoop-hivemind.taxes",
    "ssis.land-bank-farmland.2rumnecbeh.2021-08-01",
)
GROUP_KINDS = ("small_distinct_theme", "lone_voices", "dissent_in_theme")


def _plant(host: Corpus, guest: Corpus, k: int, seed: int) -> tuple[Corpus, set[str]]:
    rng = random.Random(seed)
    picks = rng.sample(range(len(guest.ids)), k)
    ids = [f"planted-{guest.ids[i]}" for i in picks]
    return Corpus(host.name, host.ids + ids, host.texts + [guest.texts[i] for i in picks], host.gold + [None] * k), set(
        ids
    )


def argkp_motions() -> list[Corpus]:
    rows = read_csv(DATASETS / "argkp" / "arguments_train.csv") + read_csv(DATASETS / "argkp" / "arguments_dev.csv")
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["topic"]].append(r)
    return [
        Corpus(t, [r["arg_id"] for r in rs], [r["argument"] for r in rs], [None] * len(rs))
        for t, rs in sorted(by.items())
    ]


def polis_corpus(name: str) -> Corpus:
    """A Polis conversation's comments as a run reads them (moderated-out rows stay excluded)."""
    loaded = load_contributions(DATASETS / "polis-opendata" / name)
    out_ids = {e.contribution_id for e in loaded.excluded}
    keep = [c for c in loaded.contributions if c.id not in out_ids and c.text.strip()]
    return Corpus(name, [c.id for c in keep], [c.text for c in keep], [None] * len(keep))


def polis_corpora() -> list[Corpus]:
    return [polis_corpus(name) for name in POLIS_EN]


def score_plant(s: Synthesis, planted: set[str]) -> tuple[bool, int, int]:
    """(recalled, false flags, lone voices). A view recalls the plant when it holds at least half of the
    planted group and the plant is at least half of the view. A false flag is a group-kind view that
    recalls nothing planted; vote-based dissent is scored separately against the votes."""
    need = max(2, math.ceil(len(planted) / 2))
    recalled, false_flags, lone = False, 0, 0
    for sec in s.sections:
        for v in sec.minority_views:
            if v.kind not in GROUP_KINDS or (v.kind == "dissent_in_theme" and "example" in v.stats):
                continue
            members = set(v.contribution_ids)
            hit = len(members & planted) >= need and len(members & planted) / len(members) >= 0.5
            recalled |= hit
            if v.kind == "lone_voices":
                lone += len(members - planted)
            elif not hit:
                false_flags += 1
    return recalled, false_flags, lone


def planted_minorities(corpora: list[Corpus], config: SynthConfig | None = None) -> list[dict]:
    rows = []
    for i, host in enumerate(corpora):
        guest = corpora[(i + len(corpora) // 2) % len(corpora)]
        k = 3 + i % 6
        corpus, planted = _plant(host, guest, k, seed=i)
        s = run(corpus.loaded(), config or SynthConfig(), cache_dir=cache()).synthesis
        recalled, false_flags, lone = score_plant(s, planted)
        rows.append(
            {
                "corpus": host.name,
                "planted": k,
                "from": guest.name,
                "recalled": recalled,
                "false_flags": false_flags,
                "lone_voices_unplanted": lone,
            }
        )
    return rows


def vote_dissent_check(names: tuple[str, ...] = POLIS_EN) -> dict[str, float]:
    """Every comment a vote-based dissent flag names: does the raw participants-votes.csv show one opinion
    group agreeing (>= 60%) and another disagreeing (>= 60%), counting groups with 5+ voters?"""
    named = confirmed = conversations = 0
    for name in names:
        folder = DATASETS / "polis-opendata" / name
        if not (folder / "participants-votes.csv").exists():
            continue
        conversations += 1
        s = run(load_contributions(folder), SynthConfig(), cache_dir=cache()).synthesis
        flagged = {
            c
            for sec in s.sections
            for v in sec.minority_views
            if v.kind == "dissent_in_theme" and "example" in v.stats
            for c in v.contribution_ids
        }
        votes: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        for row in read_csv(folder / "participants-votes.csv"):
            g = row["group-id"].strip()
            if not g:
                continue
            for cid in flagged:
                val = row.get(cid, "")
                if val != "":
                    votes[cid][group_name(g)][{"1": 0, "-1": 1}.get(val, 2)] += 1
        for cid in flagged:
            named += 1
            shares = [(a / n, d / n) for a, d, p in votes[cid].values() if (n := a + d + p) >= 5]
            confirmed += any(a >= 0.6 for a, _ in shares) and any(d >= 0.6 for _, d in shares)
    return {
        "conversations": conversations,
        "comments_named": named,
        "confirmed_share": confirmed / named if named else float("nan"),
    }
