"""Incremental runs against full re-runs: each corpus split 70/30 by row, a run on the first 70%, then the last
30% added incrementally (synth.incremental.extend) or everything run again from scratch.

Reported per corpus: ARI of the incremental result against the full re-run and against the human labels
(beside the full re-run's), the share of the 70% run's themes whose id still names the same theme afterwards
(same id, Jaccard >= 0.5 on the earlier contributions), and the wall time of each, embeddings cached.
Reproduce: `python -m eval.incremental`.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from eval.common import machine, table, write_section
from eval.harness import NOISE, Corpus, cache, labels_of
from eval.quality import argkp_corpora, banking77
from synth.config import SynthConfig
from synth.incremental import extend
from synth.pipeline import run
from synth.schema import Synthesis

COMMAND = "python -m eval.incremental"
JACCARD_KEPT = 0.5


def ids_kept(before: Synthesis, after: Synthesis) -> float:
    """Share of the earlier top-level themes that a theme of the same id still holds (Jaccard >= 0.5 over the
    earlier contributions)."""
    earlier = {c.id for c in before.contributions}
    old = {t.id: set(t.contribution_ids) for sec in before.sections for t in sec.themes if t.parent_id is None}
    new = {t.id: set(t.contribution_ids) & earlier for sec in after.sections for t in sec.themes if t.parent_id is None}
    kept = sum(1 for i, x in old.items() if i in new and len(x & new[i]) / len(x | new[i]) >= JACCARD_KEPT)
    return kept / len(old) if old else 1.0


def gold_ari(corpus: Corpus, pred: list[str]) -> float:
    pairs = [(g, p) for g, p in zip(corpus.gold, pred, strict=True) if g is not None]
    return adjusted_rand_score([g for g, _ in pairs], [p for _, p in pairs])


def evaluate(corpus: Corpus) -> dict[str, float]:
    config = SynthConfig()
    loaded = corpus.loaded()
    cut = int(0.7 * len(loaded.contributions))
    early = run(dataclasses.replace(loaded, contributions=loaded.contributions[:cut]), config, cache_dir=cache())
    t0 = time.perf_counter()
    grown = extend(early.synthesis, loaded, config, cache_dir=cache()).synthesis
    t_inc = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = run(loaded, config, cache_dir=cache()).synthesis
    t_full = time.perf_counter() - t0
    # an excluded contribution (a duplicate) counts as unassigned here
    inc, fresh = ([NOISE if x == "excluded" else x for x in labels_of(r, corpus.ids)] for r in (grown, full))
    return {
        "ari_vs_full": adjusted_rand_score(fresh, inc),
        "gold_inc": gold_ari(corpus, inc),
        "gold_full": gold_ari(corpus, fresh),
        "kept_inc": ids_kept(early.synthesis, grown),
        "kept_full": ids_kept(early.synthesis, full),
        "new_themes": sum(1 for sec in grown.sections for t in sec.themes if t.parent_id is None)
        - sum(1 for sec in early.synthesis.sections for t in sec.themes if t.parent_id is None),
        "proposals": sum(len(sec.proposals) for sec in grown.sections),
        "unassigned": sum(x == NOISE for x in inc) / len(inc),
        "t_inc": t_inc,
        "t_full": t_full,
    }


def main() -> None:
    rows = []
    argkp = [c for c, _ in argkp_corpora("dev") + argkp_corpora("train")[:8]]
    results = {"banking77 test (3,080)": [evaluate(banking77())], f"argkp ({len(argkp)} motion-stances)": []}
    for c in argkp:
        results[f"argkp ({len(argkp)} motion-stances)"].append(evaluate(c))
        print(c.name, results[f"argkp ({len(argkp)} motion-stances)"][-1], flush=True)
    for name, rs in results.items():
        m = {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
        rows.append(
            [
                name,
                f"{m['ari_vs_full']:.3f}",
                f"{m['gold_inc']:.3f}",
                f"{m['gold_full']:.3f}",
                f"{m['kept_inc']:.0%}",
                f"{m['kept_full']:.0%}",
                f"{m['new_themes']:.1f}",
                f"{m['proposals']:.1f}",
                f"{m['unassigned']:.1%}",
                f"{m['t_inc']:.2f} s",
                f"{m['t_full']:.2f} s",
            ]
        )
        print(rows[-1], flush=True)
    body = [
        f"## Incremental runs (`{COMMAND}`)",
        "",
        f"{machine()}. Default settings, embeddings cached (both sides). Reproduce: `{COMMAND}`.",
        "",
        "Each corpus split 70/30 by row; a run on the first 70%, then the last 30% added to it incrementally, "
        "against a full re-run on everything. ARI against human labels counts unassigned as one more cluster. "
        f"Ids kept: share of the 70% run's themes whose id still names a theme with Jaccard >= {JACCARD_KEPT} over "
        "the earlier contributions (an incremental run never changes an earlier theme's members, so only new "
        "members lower it). Means per group of corpora.",
        "",
        table(
            [
                "data",
                "ARI incremental vs full re-run",
                "ARI vs human labels, incremental",
                "ARI vs human labels, full re-run",
                "theme ids kept, incremental",
                "theme ids kept, full re-run",
                "new themes",
                "split/merge proposals",
                "unassigned, incremental",
                "time, incremental",
                "time, full re-run",
            ],
            rows,
        ),
    ]
    text = "\n".join(body)
    print(text)
    write_section("incremental", text)


if __name__ == "__main__":
    main()
