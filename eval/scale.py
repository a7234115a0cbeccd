"""The quality cost of clustering a sample: above `cluster_sample_above` passages, themes come from a
deterministic sample and the rest are placed by the outlier rule. Measured where human labels exist, with the
threshold lowered so the sample path runs: Banking77 (train + test, 13,083 queries, 77 intents) and argkp +
Banking77 (19,598 texts; argkp's label is the argument's key point, else its motion-stance). Written into
eval/RESULTS.md ("Scale").
"""

from __future__ import annotations

import time

from sklearn.metrics import adjusted_rand_score

from eval.common import DATASETS, machine, read_csv, table, write_section
from eval.harness import Corpus, scores, synth_run
from synth.config import SynthConfig


def banking_all() -> Corpus:
    rows = [r for s in ("train", "test") for r in read_csv(DATASETS / "banking77" / f"{s}.csv")]
    return Corpus(
        "banking77-all", [f"b{i}" for i in range(len(rows))], [r["text"] for r in rows], [r["category"] for r in rows]
    )


def argkp_and_banking() -> Corpus:
    ids, texts, gold = [], [], []
    for split in ("train", "dev"):
        labels = {
            r["arg_id"]: r["key_point_id"]
            for r in read_csv(DATASETS / "argkp" / f"labels_{split}.csv")
            if r["label"] == "1"
        }
        for r in read_csv(DATASETS / "argkp" / f"arguments_{split}.csv"):
            ids.append(r["arg_id"])
            texts.append(r["argument"])
            gold.append(labels.get(r["arg_id"], f"{r['topic']}|{r['stance']}"))
    b = banking_all()
    return Corpus("argkp+banking77", ids + b.ids, texts + b.texts, gold + b.gold)


def main() -> None:
    rows = []
    for corpus in (banking_all(), argkp_and_banking()):
        runs = {}
        for name, overrides in (
            ("all passages", {}),
            ("sample 10,000", {"cluster_sample_above": 10_000, "cluster_sample_size": 10_000}),
            ("sample 5,000", {"cluster_sample_above": 5_000, "cluster_sample_size": 5_000}),
        ):
            start = time.perf_counter()
            labels, s = synth_run(corpus, SynthConfig(**overrides))
            took = time.perf_counter() - start
            runs[name] = labels
            sc = scores(corpus.gold, labels)
            rows.append(
                [
                    corpus.name,
                    name,
                    f"{s.coverage.n_segments:,}",
                    f"{sc['ari']:.3f}",
                    f"{sc['nmi']:.3f}",
                    f"{sc['unassigned']:.1%}",
                    sc["themes"],
                    f"{adjusted_rand_score(runs['all passages'], labels):.3f}",
                    f"{took:.1f}",
                ]
            )
            print(rows[-1], flush=True)
    write_section(
        "scale",
        "\n".join(
            [
                "## Scale: clustering a sample (`python -m eval.scale`)",
                "",
                f"{machine()}. Above `cluster_sample_above` passages (default 30,000) a section is clustered on a "
                "deterministic sample of `cluster_sample_size` (default 20,000; the passages whose vectors hash "
                "lowest) and the rest join the nearest theme by the outlier rule. Here the threshold is lowered so "
                "the sample path runs on corpora with human labels; ARI to 'all passages' compares the two.",
                "",
                table(
                    [
                        "corpus",
                        "clustered",
                        "passages",
                        "ARI",
                        "NMI",
                        "unassigned",
                        "themes",
                        "ARI to all passages",
                        "s (warm cache)",
                    ],
                    rows,
                ),
            ]
        ),
    )


if __name__ == "__main__":
    main()
