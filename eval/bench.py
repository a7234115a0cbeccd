"""`make bench`: speed and scale, each measurement a new process, written into eval/RESULTS.md.

1. 10,000 contributions cold: synth against BERTopic with its defaults (embedding with the same packaged
   MiniLM), three pairs, the order alternated, the median of each; cold = nothing cached (synth's cache folder
   is new, so its ONNX export is paid too).
2. 10,000 warm: synth again on the cache the cold run filled (median of three).
3. Growth: 1k, 10k, 30k and 100k contributions cold, time and peak memory per stage (the kernel's peak RSS
   is reset at the end of each stage, so a stage's peak is its own), with the log-log slope of each stage.

Inputs: argkp arguments then Banking77 queries (the first N, for 1k and 10k, as before); for 30k every
distinct real text the project has (argkp, Banking77 train and test, the 20 Polis conversations); for 100k
those 30k and then contributions made of two of them each (real sentences, new pairings), since no larger
real corpus is available here: its distinct passages are counted in the table.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eval.common import DATASETS, ROOT, machine, read_csv, table, write_section

STAGES = ("prepare", "embed", "cluster", "label", "minority", "summarize", "verify")


def corpus(n: int) -> list[dict[str, str]]:
    """argkp arguments then Banking77 training queries, the first n (the corpus of every earlier table)."""
    rows = [
        {"id": r["arg_id"], "text": r["argument"]}
        for split in ("train", "dev")
        for r in read_csv(DATASETS / "argkp" / f"arguments_{split}.csv")
    ]
    banking = read_csv(DATASETS / "banking77" / "train.csv")
    rows += [{"id": f"b77-{i}", "text": r["text"]} for i, r in enumerate(banking)]
    return rows[:n]


def all_real_texts() -> list[str]:
    """Every distinct text of the bundled datasets, in a fixed order."""
    texts = [r["argument"] for s in ("train", "dev") for r in read_csv(DATASETS / "argkp" / f"arguments_{s}.csv")]
    texts += [r["text"] for s in ("train", "test") for r in read_csv(DATASETS / "banking77" / f"{s}.csv")]
    for folder in sorted((DATASETS / "polis-opendata").iterdir()):
        if (folder / "comments.csv").exists():
            texts += [r.get("comment-body") or r.get("txt") or "" for r in read_csv(folder / "comments.csv")]
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


def scale_corpus(n: int) -> list[dict[str, str]]:
    """n contributions: the real texts, then (beyond them) two real texts joined, paired at random (seed 0)."""
    pool = all_real_texts()
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(pool[:n])]
    rng = random.Random(0)
    seen = {r["text"] for r in rows}
    while len(rows) < n:
        a, b = rng.sample(pool, 2)
        text = f"{a.rstrip('.!? ')}. {b}"
        if text not in seen:
            seen.add(text)
            rows.append({"id": f"p{len(rows)}", "text": text})
    return rows


def _rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def child_synth(input_path: str, cache: str) -> None:
    """A new process: read, run, print timings, per-stage peak memory and counts as JSON."""
    start = time.perf_counter()
    from synth.formats import load_contributions
    from synth.pipeline import run

    loaded = load_contributions(input_path)
    read = time.perf_counter() - start
    peaks: dict[str, float] = {"import+read": round(_rss_peak_mb())}
    _reset_peak()

    def progress(stage: str, done: int, total: int) -> None:
        if stage in STAGES and (done, total) == (1, 1):  # a stage ends (synth.pipeline.Laps)
            peaks[stage] = max(peaks.get(stage, 0), round(_rss_peak_mb()))
            _reset_peak()

    result = run(loaded, progress=progress, cache_dir=Path(cache))
    cov = result.synthesis.coverage
    print(
        json.dumps(
            {
                "wall": round(time.perf_counter() - start, 2),
                "read": round(read, 2),
                "timings": result.timings,
                "peaks": peaks,
                "segments": cov.n_segments,
                "distinct_passages": len({s.text for s in result.synthesis.segments}),
                "unassigned": cov.n_unassigned,
                "themes": sum(1 for s in result.synthesis.sections for t in s.themes if t.parent_id is None),
                "sampled": result.synthesis.sections[0].parameters.get("clustered_sample"),
            }
        )
    )


def child_bertopic(input_path: str) -> None:
    """BERTopic with its defaults, embedding with the same packaged MiniLM (sentence-transformers)."""
    start = time.perf_counter()
    from bertopic import BERTopic
    from sentence_transformers import SentenceTransformer

    from synth.models import model_dir

    docs = [json.loads(line)["text"] for line in Path(input_path).read_text(encoding="utf-8").splitlines()]
    BERTopic(embedding_model=SentenceTransformer(str(model_dir("embedding")), device="cpu")).fit_transform(docs)
    print(json.dumps({"wall": round(time.perf_counter() - start, 2), "peak_mb": round(_rss_peak_mb())}))


def _spawn(args: list[str]) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "eval.bench", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["process_wall"] = round(time.perf_counter() - t0, 2)
    return data


def _write(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def versus_bertopic(tmp: Path, pairs: int = 3) -> tuple[list[list], dict]:
    path = tmp / "bench-10000.jsonl"
    _write(corpus(10_000), path)
    synth_runs, bertopic_runs, rows = [], [], []
    for p in range(pairs):
        order = ("synth", "bertopic") if p % 2 == 0 else ("bertopic", "synth")
        for method in order:
            if method == "synth":
                d = _spawn(["--synth", str(path), str(tmp / f"cold-{p}")])
                synth_runs.append(d)
            else:
                d = _spawn(["--bertopic", str(path)])
                bertopic_runs.append(d)
            print(method, p, d["process_wall"], flush=True)
        rows.append([p + 1, " then ".join(order), synth_runs[-1]["process_wall"], bertopic_runs[-1]["process_wall"]])
    s = statistics.median(r["process_wall"] for r in synth_runs)
    b = statistics.median(r["process_wall"] for r in bertopic_runs)
    peak_s = max(max(r["peaks"].values()) for r in synth_runs)
    peak_b = max(r["peak_mb"] for r in bertopic_runs)
    rows.append(["median", "", s, b])
    warm = [_spawn(["--synth", str(path), str(tmp / "cold-0")]) for _ in range(3)]
    summary = {
        "synth": s,
        "bertopic": b,
        "ratio": round(b / s, 2),
        "peak_synth": peak_s,
        "peak_bertopic": peak_b,
        "warm": statistics.median(r["process_wall"] for r in warm),
        "warm_runs": [r["process_wall"] for r in warm],
        "warm_timings": warm[0]["timings"],
        "cold_timings": synth_runs[0]["timings"],
    }
    return rows, summary


def growth(tmp: Path, sizes: tuple[int, ...]) -> list[dict]:
    out = []
    for n in sizes:
        path = tmp / f"scale-{n}.jsonl"
        _write(corpus(n) if n <= 10_000 else scale_corpus(n), path)
        d = _spawn(["--synth", str(path), str(tmp / f"growth-{n}")])
        d["n"] = n
        out.append(d)
        print(n, d["process_wall"], d["timings"], d["peaks"], flush=True)
    return out


def _slope(xs: list[float], ys: list[float]) -> str:
    import math

    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y and y > 0]
    if len(pts) < 2:
        return ""
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    return f"{(y1 - y0) / (x1 - x0):.2f}"


def main(sizes: tuple[int, ...] = (1_000, 10_000, 30_000, 100_000)) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        pair_rows, summary = versus_bertopic(tmp)
        grown = growth(tmp, sizes)
    stage_rows = []
    for d in grown:
        t, p = d["timings"], d["peaks"]
        stage_rows.append(
            [
                f"{d['n']:,}",
                f"{d['segments']:,}",
                f"{d['distinct_passages']:,}",
                d["process_wall"],
                *[t.get(s, 0) for s in ("prepare", "embed", "cluster", "label")],
                round(sum(t.get(s, 0) for s in ("minority", "summarize", "verify")), 2),
                max(p.values()),
                " / ".join(str(p.get(s, "")) for s in ("prepare", "embed", "cluster", "label")),
                d["themes"],
                f"{d['unassigned'] / max(d['segments'], 1):.1%}",
                f"{d['sampled']:,}" if d.get("sampled") else "all",
            ]
        )
    big = [d for d in grown if d["n"] >= 10_000]
    slopes = [
        f"log-log slope, {big[0]['n'] // 1000}k → {big[-1]['n'] // 1000}k" if big else "",
        "",
        "",
        _slope([d["n"] for d in big], [d["process_wall"] for d in big]),
    ]
    for s in ("prepare", "embed", "cluster", "label"):
        slopes.append(_slope([d["n"] for d in big], [d["timings"].get(s, 0) for d in big]))
    stage_rows.append(slopes + ["", "", "", "", "", ""])
    body = "\n".join(
        [
            "## Benchmark: speed and scale (`make bench`)",
            "",
            f"Machine: {machine()}. Every figure is a new process; cold = new cache folder (so synth's one-off ONNX "
            "export of the encoder, about 3 s, is included), warm = the folder a cold run filled. Times in seconds.",
            "",
            "**10,000 contributions, synth against BERTopic's defaults** (argkp arguments then Banking77 queries; both "
            "embed with the packaged all-MiniLM-L6-v2; order alternated):",
            "",
            table(["pair", "order", "synth s", "BERTopic s"], pair_rows),
            "",
            f"BERTopic / synth, cold: **{summary['ratio']}x** "
            f"(medians {summary['bertopic']} s / {summary['synth']} s). "
            f"Peak memory: synth {summary['peak_synth']} MB, BERTopic {summary['peak_bertopic']} MB. "
            f"Warm (embeddings, neighbours and duplicate search cached), median of 3: **{summary['warm']} s** "
            f"({', '.join(map(str, summary['warm_runs']))}).",
            "",
            f"synth's stages, cold: {summary['cold_timings']}; warm: {summary['warm_timings']}.",
            "",
            "**Growth** (cold; 30k = every distinct real text bundled here; 100k = those and then pairs of them, so "
            "passages repeat: see 'distinct passages'; peak MB = the process's peak RSS within each stage):",
            "",
            table(
                [
                    "contributions",
                    "passages",
                    "distinct passages",
                    "wall",
                    "prepare",
                    "embed",
                    "cluster",
                    "label",
                    "minority+summary+verify",
                    "peak MB",
                    "peak MB prepare / embed / cluster / label",
                    "themes",
                    "unassigned",
                    "clustered",
                ],
                stage_rows,
            ),
        ]
    )
    write_section("bench", body)
    (ROOT / "eval" / "bench-last.json").write_text(json.dumps({"summary": summary, "growth": grown}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--synth"]:
        child_synth(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["--bertopic"]:
        child_bertopic(sys.argv[2])
    else:
        sizes = tuple(int(x) for x in sys.argv[1:]) or (1_000, 10_000, 30_000, 100_000)
        main(sizes)
