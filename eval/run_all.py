"""`make eval`: every evaluation in one run; rewrites the evaluation sections of eval/RESULTS.md."""

from __future__ import annotations

import importlib.util
import sys
import time

import numpy as np

from eval import codebook, incremental, minority, quality, readable, speed, titles
from eval.common import machine, table, write_section
from eval.harness import mean_pairwise_ari, scores, synth_run
from synth.config import SynthConfig
from synth.models import weights_sha256

VARIANTS: list[tuple[str, dict]] = [
    (
        "eom, size 0.5*sqrt(n), join q0.10 (first version)",
        {
            "cluster_selection": "eom",
            "outlier_join_quantile": 0.10,
            "min_cluster_size_factor": 0.5,
            "min_cluster_size_exponent": 0.5,
            "min_samples_factor": 0.5,
        },
    ),
    ("eom, size n^0.35", {"cluster_selection": "eom", "min_samples_factor": 0.5}),
    (
        "leaf, size 0.5*sqrt(n), join q0.10",
        {
            "outlier_join_quantile": 0.10,
            "min_cluster_size_factor": 0.5,
            "min_cluster_size_exponent": 0.5,
            "min_samples_factor": 0.5,
        },
    ),
    (
        "leaf, size 0.5*sqrt(n)",
        {"min_cluster_size_factor": 0.5, "min_cluster_size_exponent": 0.5, "min_samples_factor": 0.5},
    ),
    (
        "leaf, size 1.5*n^0.26",
        {"min_cluster_size_factor": 1.5, "min_cluster_size_exponent": 0.26, "min_samples_factor": 0.5},
    ),
    ("leaf, size n^0.35, join q0.0, min_samples = size/2", {"min_samples_factor": 0.5}),
    ("leaf, size n^0.35, join q0.0, min_samples = size (default)", {}),
    ("default, join floor 0.35", {"outlier_join_floor": 0.35}),
    ("default, UMAP 1000 epochs", {"umap_epochs": 1000}),
    ("default, spectral embedding instead of UMAP", {"reducer": "spectral"}),
]


def f(x: float) -> str:
    return f"{x:.3f}"


def header(title: str, command: str) -> list[str]:
    return [
        f"## {title}",
        "",
        f"{machine()}. Embedding model sha256 {weights_sha256('embedding')[:16]}…. Reproduce: `{command}`.",
        "",
    ]


def theme_quality(with_bertopic: bool) -> list:
    methods = ["synth", "bertopic", "kmeans (oracle k)"] if with_bertopic else ["synth", "kmeans (oracle k)"]
    rows, syntheses = [], []
    for split in ("train", "dev"):
        per = {m: [] for m in methods}
        for corpus, keypoints in quality.argkp_corpora(split):
            res, s = quality.evaluate_corpus(corpus, keypoints, with_bertopic)
            syntheses.append(s)
            for m in methods:
                per[m].append(res[m])
        for m in methods:
            d = quality._mean(per[m])
            rows.append(
                [
                    f"argkp {split} ({len(per[m])} motion-stances)",
                    m,
                    f(d["ari"]),
                    f(d["nmi"]),
                    f(d["v"]),
                    f"{d['unassigned']:.1%}",
                    f"{d['themes']:.1f} / {d['gold_clusters']:.1f}",
                    f(d.get("kp_recall", float("nan"))),
                    f(d.get("theme_precision", float("nan"))),
                    f"{d['unlabelled_unassigned']:.1%}" if "unlabelled_unassigned" in d else "",
                ]
            )
        print(rows[-len(methods) :], flush=True)
    res, s = quality.evaluate_corpus(quality.banking77(), None, with_bertopic)
    syntheses.append(s)
    for m in methods:
        d = res[m]
        rows.append(
            [
                "banking77 test (3,080)",
                m,
                f(d["ari"]),
                f(d["nmi"]),
                f(d["v"]),
                f"{d['unassigned']:.1%}",
                f"{d['themes']} / {d['gold_clusters']}",
                "",
                "",
                "",
            ]
        )
    print(rows[-len(methods) :], flush=True)
    body = header("Theme quality against human labels", "make eval") + [
        "Per corpus, then averaged: argkp clusters each motion and stance separately (gold = the single expert "
        "key point an argument matched; NONE and MULTI arguments stay in the input and are not scored). "
        "Unassigned contributions count as one more cluster in ARI/NMI/V. Key-point recall: share of expert key "
        f"points whose best cosine with a theme's label + representatives is >= {quality.KP_THRESHOLD}; "
        "theme precision: share of themes matching some key point. BERTopic: documented defaults, UMAP seeded, "
        "fed synth's embeddings. k-means is told the true number of clusters: an oracle reference, not a peer.",
        "",
        table(
            [
                "data",
                "method",
                "ARI",
                "NMI",
                "V",
                "unassigned",
                "themes / gold",
                "KP recall",
                "theme precision",
                "NONE-args unassigned",
            ],
            rows,
        ),
    ]
    write_section("eval-quality", "\n".join(body))
    return syntheses


def stability(with_bertopic: bool) -> None:
    rows = []
    argkp = quality.argkp_corpora("dev") + quality.argkp_corpora("train")[:8]
    corpora = [("banking77 test", quality.banking77())] + [(f"argkp: {c.name}", c) for c, _ in argkp]
    per: dict[str, list[dict]] = {}
    for name, corpus in corpora:
        res = quality.stability(corpus, with_bertopic)
        for m, d in res.items():
            rows.append([name, m, f(d["seeds"]), f(d["subsample"]), f(d["noise"]) if "noise" in d else ""])
            if name.startswith("argkp"):
                per.setdefault(m, []).append(d)
        print(rows[-len(res) :], flush=True)
    means = [
        [f"argkp mean ({len(ds)} motion-stances)", m, f(float(np.mean([d["seeds"] for d in ds]))),
         f(float(np.mean([d["subsample"] for d in ds]))), f(min(d["noise"] for d in ds)) if "noise" in ds[0] else ""]
        for m, ds in per.items()
    ]  # fmt: skip
    write_section(
        "eval-stability",
        "\n".join(
            header("Stability", "make eval")
            + [
                "Mean pairwise ARI between runs with seeds 1-5; ARI between the full run and a run on a random 90% "
                "subsample, on the shared contributions; lowest ARI over 10 draws between clustering the "
                "embeddings and the embeddings + N(0, 1e-6) noise (another CPU's rounding is far smaller). "
                "`synth` is the default graph clusterer, `synth, umap-hdbscan` the previous default. ArgKP: "
                "the 8 dev motion-stances and the first 8 of train.",
                "",
                table(
                    ["data", "method", "ARI across 5 seeds", "ARI full vs 90%", "ARI with 1e-6 noise (min)"],
                    means + rows,
                ),
            ]
        ),
    )


def minority_views() -> None:
    rows = []
    for name, corpora in (
        ("argkp motions", minority.argkp_motions()),
        ("Polis conversations", minority.polis_corpora()),
    ):
        res = minority.planted_minorities(corpora)
        recall = sum(r["recalled"] for r in res) / len(res)
        ff = sum(r["false_flags"] for r in res) / len(res)
        lone = sum(r["lone_voices_unplanted"] for r in res) / len(res)
        rows.append([name, len(res), f"{recall:.2f}", f"{ff:.2f}", f"{lone:.1f}"])
        print(rows[-1], flush=True)
        missed = [f"{r['corpus']} ({r['planted']} from {r['from']})" for r in res if not r["recalled"]]
        if missed:
            rows[-1].append("missed: " + "; ".join(missed))
        else:
            rows[-1].append("")
    votes = minority.vote_dissent_check()
    write_section(
        "eval-minority",
        "\n".join(
            header("Minority views: planted groups", "make eval")
            + [
                "Into each corpus, 3-8 contributions (3 + index mod 6) from another motion / conversation are planted. "
                "Recalled: some minority view holds at least half of the planted group and is at least half planted. "
                "False flag: a small-distinct or sub-theme dissent view that recalls nothing planted. Lone voices are "
                "a reading list, counted apart.",
                "",
                table(
                    ["corpora", "n", "recall", "false flags / corpus", "unplanted lone voices / corpus", "notes"], rows
                ),
                "",
                f"Vote-based dissent flags checked against the raw participants-votes.csv of {votes['conversations']} "
                f"Polis conversations: {votes['comments_named']} comments named, {votes['confirmed_share']:.0%} show "
                "one opinion group >= 60% agree and another >= 60% disagree.",
            ]
        ),
    )


def faithfulness(syntheses: list) -> None:
    d = quality.faithfulness(syntheses)
    rows = [[k, f"{v:.3f}" if isinstance(v, float) else v] for k, v in d.items()]
    write_section(
        "eval-faithfulness",
        "\n".join(
            header("Faithfulness of summaries", "make eval")
            + [
                f"Over all {len(syntheses)} syntheses of the theme-quality runs. Support = cosine of the sentence with "
                "the mean of what it cites (first 20 citations).",
                "",
                table(["figure", "value"], rows),
            ]
        ),
    )


def speed_table(with_bertopic: bool) -> None:
    rows = []
    for name in speed.DATASETS_FOR_SPEED:
        s = speed.measure("synth", name)
        row = [name, s["n"], s["wall"], s["peak_mb"]]
        if with_bertopic:
            b = speed.measure("bertopic", name)
            row += [b["wall"], b["peak_mb"], f"{b['wall'] / s['wall']:.2f}"]
        rows.append(row)
        print(row, flush=True)
    write_section(
        "eval-speed",
        "\n".join(
            header("Speed: synth and BERTopic, same inputs", "make eval")
            + [
                "Each in a new process with nothing cached, both embedding with the same packaged model.",
                "",
                table(
                    [
                        "data",
                        "texts",
                        "synth s",
                        "synth peak MB",
                        "BERTopic s",
                        "BERTopic peak MB",
                        "BERTopic / synth time",
                    ],
                    rows,
                ),
            ]
        ),
    )


def variants() -> None:
    rows = []
    corpora = [c for split in ("dev", "train") for c in quality.argkp_corpora(split)][:24]
    motions = minority.argkp_motions()[:12]
    for name, overrides in VARIANTS:
        config = SynthConfig(**overrides)
        per = [quality.evaluate_corpus(c, kp, False, config)[0]["synth"] for c, kp in corpora]
        d = quality._mean(per)
        plant = minority.planted_minorities(motions, config)
        bank = quality.banking77()
        b = scores(bank.gold, synth_run(bank, config)[0])
        seeds = [
            mean_pairwise_ari([synth_run(c, config.model_copy(update={"seed": s}))[0] for s in (1, 2, 3)])
            for c, _ in corpora[:8]
        ]
        rows.append(
            [
                name,
                f(d["ari"]),
                f(d["nmi"]),
                f"{d['unassigned']:.1%}",
                f(d["kp_recall"]),
                f(float(np.mean(seeds))),
                f(b["ari"]),
                f(b["nmi"]),
                f"{b['unassigned']:.1%}",
                b["themes"],
                f"{sum(r['recalled'] for r in plant) / len(plant):.2f}",
                f"{sum(r['false_flags'] for r in plant) / len(plant):.2f}",
            ]
        )
        print(rows[-1], flush=True)
    write_section(
        "eval-variants",
        "\n".join(
            header("UMAP + HDBSCAN variants tried (the defaults before the graph clusterer)", "make eval")
            + [
                f"argkp: first {len(corpora)} motion-stances (dev, then train); "
                f"planted minorities: first {len(motions)} argkp motions.",
                "",
                table(
                    [
                        "variant",
                        "ARI",
                        "NMI",
                        "unassigned",
                        "KP recall",
                        "seed ARI (argkp dev, 3 seeds)",
                        "banking77 ARI",
                        "banking77 NMI",
                        "banking77 unassigned",
                        "banking77 themes",
                        "planted recall",
                        "false flags",
                    ],
                    rows,
                ),
            ]
        ),
    )


GRAPH_VARIANTS: list[tuple[str, dict]] = [
    ("default: 15 neighbours, resolution (n/100)^0.45, 5 shared", {}),
    ("resolution (n/100)^0.33", {"resolution_exponent": 0.33}),
    ("resolution (n/100)^0.6", {"resolution_exponent": 0.6}),
    ("10 neighbours", {"graph_neighbors": 10}),
    ("20 neighbours", {"graph_neighbors": 20}),
    ("mutual neighbours, no shared minimum", {"graph_min_shared": 0}),
    ("previous default: UMAP + HDBSCAN", {"clusterer": "umap-hdbscan"}),
]


def graph_variants() -> None:
    """The graph clusterer's settings against quality, stability under subsampling and planted minorities."""
    import random

    from sklearn.metrics import adjusted_rand_score

    train = [c for c, _ in quality.argkp_corpora("train")]
    dev = [c for c, _ in quality.argkp_corpora("dev")]
    bank = quality.banking77()
    motions = minority.argkp_motions()

    def subsample_ari(corpus, config) -> float:  # noqa: ANN001
        keep = sorted(random.Random(0).sample(range(len(corpus.ids)), int(0.9 * len(corpus.ids))))
        full, part = synth_run(corpus, config)[0], synth_run(corpus.subset(keep), config)[0]
        return adjusted_rand_score([full[i] for i in keep], part)

    rows = []
    for name, overrides in GRAPH_VARIANTS:
        config = SynthConfig(**overrides)
        row = [name]
        for corpora in (train, dev):
            d = quality._mean([scores(c.gold, synth_run(c, config)[0]) for c in corpora])
            row += [f(d["ari"]), f(d["nmi"]), f"{d['unassigned']:.1%}"]
        b = scores(bank.gold, synth_run(bank, config)[0])
        row += [f(b["ari"]), f(b["nmi"]), f"{b['unassigned']:.1%}", b["themes"]]
        row += [f(float(np.mean([subsample_ari(c, config) for c in dev[:4]]))), f(subsample_ari(bank, config))]
        plant = minority.planted_minorities(motions, config)
        row += [f"{sum(r['recalled'] for r in plant) / len(plant):.2f}"]
        rows.append(row)
        print(row, flush=True)
    write_section(
        "eval-graph-variants",
        "\n".join(
            header("Graph clusterer settings tried (choice of defaults)", "python -m eval.run_all graph_variants")
            + [
                f"argkp train ({len(train)}) and dev ({len(dev)}) motion-stances, Banking77 test; subsample: ARI "
                "between the full run and a 90% subsample (first 4 dev motion-stances, and Banking77); planted: "
                f"recall over {len(motions)} argkp motions.",
                "",
                table(
                    [
                        "variant",
                        "train ARI",
                        "train NMI",
                        "train unassigned",
                        "dev ARI",
                        "dev NMI",
                        "dev unassigned",
                        "banking77 ARI",
                        "banking77 NMI",
                        "banking77 unassigned",
                        "banking77 themes",
                        "subsample ARI argkp",
                        "subsample ARI banking77",
                        "planted recall",
                    ],
                    rows,
                ),
            ]
        ),
    )


MINORITY_VARIANTS: list[tuple[str, dict]] = [
    ("small < 5% of section, distinct < 0.45 (default)", {}),
    ("small < 10%, distinct < 0.50", {"small_theme_share": 0.1, "distinct_max_similarity": 0.5}),
    ("small < 10%, distinct < 0.55", {"small_theme_share": 0.1, "distinct_max_similarity": 0.55}),
    (
        "small < 8%, distinct < 0.50, lone groups >= 0.35",
        {"small_theme_share": 0.08, "distinct_max_similarity": 0.5, "lone_group_similarity": 0.35},
    ),
]


def minority_variants() -> None:
    rows = []
    corpora = (("argkp", minority.argkp_motions()), ("polis", minority.polis_corpora()))
    for name, overrides in MINORITY_VARIANTS:
        row = [name]
        for _, cs in corpora:
            res = minority.planted_minorities(cs, SynthConfig(**overrides))
            row += [
                f"{sum(r['recalled'] for r in res) / len(res):.2f}",
                f"{sum(r['false_flags'] for r in res) / len(res):.2f}",
            ]
        rows.append(row)
        print(row, flush=True)
    write_section(
        "eval-minority-variants",
        "\n".join(
            header("Minority thresholds tried", "make eval")
            + [
                "Same planting as above (28 argkp motions, 8 English Polis conversations).",
                "",
                table(["variant", "argkp recall", "argkp false flags", "Polis recall", "Polis false flags"], rows),
            ]
        ),
    )


def main() -> None:
    with_bertopic = importlib.util.find_spec("bertopic") is not None
    if not with_bertopic:
        print("bertopic is not installed (pip install -e '.[eval]'): its columns are left out", file=sys.stderr)
    only = set(sys.argv[1:])
    start = time.time()
    steps = {
        "quality": lambda: faithfulness(theme_quality(with_bertopic)),
        "stability": lambda: stability(with_bertopic),
        "minority": minority_views,
        "titles": titles.report,
        "incremental": incremental.main,
        "codebook": codebook.main,
        "readable": readable.main,
        "variants": variants,
        "graph_variants": graph_variants,
        "minority_variants": minority_variants,
        "speed": lambda: speed_table(with_bertopic),
    }
    for name, step in steps.items():
        if not only or name in only:
            print(f"== {name}", flush=True)
            step()
    print(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
