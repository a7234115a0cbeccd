"""End-to-end benchmark: wall time per stage and peak memory for 1,000 and 10,000 contributions,
cold (empty embedding cache, new process) and warm (cache filled by the cold run, new process).

Input: argkp arguments (6,515) then Banking77 queries, cut to N: real short texts of the length
consultations produce. Each measurement runs in its own process so peak RSS is that run's alone.
Writes the table into eval/RESULTS.md (section "bench").
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval.common import DATASETS, ROOT, machine, read_csv, table, write_section

SIZES = (1000, 10000)


def corpus(n: int) -> list[dict[str, str]]:
    rows = [
        {"id": r["arg_id"], "text": r["argument"]}
        for split in ("train", "dev")
        for r in read_csv(DATASETS / "argkp" / f"arguments_{split}.csv")
    ]
    banking = read_csv(DATASETS / "banking77" / "train.csv")
    rows += [{"id": f"b77-{i}", "text": r["text"]} for i, r in enumerate(banking)]
    return rows[:n]


def one(input_path: str, cache: str) -> None:
    """Child process: run the pipeline once, print timings and counts as JSON."""
    start = time.perf_counter()
    from synth.formats import load_contributions
    from synth.pipeline import run

    loaded = load_contributions(input_path)
    imported = time.perf_counter() - start
    result = run(loaded, cache_dir=Path(cache))
    total = time.perf_counter() - start
    cov = result.synthesis.coverage
    print(
        json.dumps(
            {
                "timings": result.timings,
                "import_and_read": round(imported, 2),
                "total": round(total, 2),
                "segments": cov.n_segments,
                "themed": cov.n_themed,
                "unassigned": cov.n_unassigned,
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "themes": sum(1 for s in result.synthesis.sections for t in s.themes if t.parent_id is None),
            }
        )
    )


def measure(input_path: Path, cache: Path) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "eval.bench", "--one", str(input_path), str(cache)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["wall"] = round(wall, 1)
    return data


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            path = Path(tmp) / f"bench-{n}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in corpus(n)), encoding="utf-8")
            cache = Path(tmp) / f"cache-{n}"
            for mode in ("cold", "warm"):
                d = measure(path, cache)
                t = d["timings"]
                rows.append(
                    [
                        n,
                        mode,
                        d["segments"],
                        d["wall"],
                        d["import_and_read"],
                        t.get("prepare"),
                        t.get("embed"),
                        t.get("cluster"),
                        round(sum(t.get(k, 0) for k in ("label", "minority", "summarize", "verify")), 2),
                        d["peak_mb"],
                        d["themes"],
                        f"{d['unassigned'] / n:.1%}",
                    ]
                )
                print(rows[-1], flush=True)
    body = "\n".join(
        [
            "## Benchmark: end to end (`make bench`)",
            "",
            f"Machine: {machine()}. Input: argkp arguments then Banking77 queries, first N. Each run is a new process; "
            "cold = empty embedding cache, warm = the cache the cold run filled. Times in seconds; "
            "peak = max resident set size of the process. Targets: 10k cold < 90 s, warm < 15 s, peak < 3 GB.",
            "",
            table(
                [
                    "contributions",
                    "run",
                    "segments",
                    "wall",
                    "import+read",
                    "prepare",
                    "embed",
                    "cluster",
                    "label+minority+summary+verify",
                    "peak MB",
                    "themes",
                    "unassigned",
                ],
                rows,
            ),
        ]
    )
    write_section("bench", body)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        one(sys.argv[2], sys.argv[3])
    else:
        main()
