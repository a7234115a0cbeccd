"""LLM drafting measured: what the checks kept and dropped (by reason, with support scores) on ArgKP
motion-stances and two Polis conversations, and theme-title quality against the expert key points with and
without the drafter.

Default model: the packaged Gemma 3 270M (a base model) on a local llama.cpp server started here, which tests the
checks more than it writes prose. Any OpenAI-compatible endpoint: `make eval-llm LLM_BASE_URL=... LLM_MODEL=...`
(key in SYNTH_LLM_API_KEY), or `python -m eval.drafting --base-url URL --model NAME`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from eval.common import llama_server, machine, table, write_section
from eval.harness import cache
from eval.minority import polis_corpus
from eval.quality import argkp_corpora
from eval.titles import MIN_ARGS, best_match, keypoints_by_corpus, rouge_l
from synth.config import SynthConfig
from synth.pipeline import run
from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from synth.schema import Synthesis

COMMAND = "make eval-llm"
POLIS = ("brexit-consensus", "scoop-hivemind.freshwater")


def reason_kind(reason: str) -> str:
    """'cites evidence it was not given: e9' -> 'cites evidence it was not given'; numbers become N."""
    return re.sub(r"\d+(\.\d+)?", "N", re.split(r"[:(]", reason)[0]).strip()


def drafted_texts(s: Synthesis) -> list[tuple[str, float]]:
    """(part, support) of every drafted text kept."""
    out = []
    for sec in s.sections:
        out += [("title", t.drafted_title.support) for t in sec.themes if t.drafted_title]
        out += [("statement", v.drafted_statement.support) for v in sec.minority_views if v.drafted_statement]
        for summary in sec.summaries:
            part = "overview" if summary.scope == "overview" else "summary"
            out += [(part, x.support or 0.0) for x in summary.sentences if x.kind == "drafted" and x.drafted_by]
    return out


def title_scores(s: Synthesis, keypoints: list) -> list[tuple[float, float, float, float]]:
    """Per scored key point: (cosine, ROUGE-L) of the extractive title, then of the title with the drafter (the
    drafted title where one passed the checks, else the same extractive one). Drafting leaves themes as they are,
    so both are read from the drafted run."""
    tops = {t.id: t for sec in s.sections for t in sec.themes if t.parent_id is None}
    groups = {t.id: t.contribution_ids for t in tops.values()}
    rows = []
    for k in keypoints:
        if len(k.args) < MIN_ARGS or (tid := best_match(k.args, groups)) is None:
            continue
        t = tops[tid]
        llm = t.drafted_title.text if t.drafted_title else t.title
        v = embed_texts([normalise(x) for x in (k.text, t.title, llm)], cache())
        rows.append((float(v[0] @ v[1]), rouge_l(t.title, k.text), float(v[0] @ v[2]), rouge_l(llm, k.text)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.drafting", description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=None, help="default: the packaged Gemma 3 270M on a local server")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--argkp", type=int, default=4, help="ArgKP dev motion-stances")
    parser.add_argument("--budget", type=int, default=20_000, help="tokens per corpus")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="synth-eval-llm-"))
    serving = nullcontext(args.base_url) if args.base_url else llama_server(folder)
    kept: Counter = Counter()
    dropped: Counter = Counter()
    supports: list[float] = []
    titles: list[tuple[float, ...]] = []
    per_corpus = []
    with serving as url:
        config = SynthConfig(draft=True, llm_base_url=url, llm_model=args.model, llm_token_budget=args.budget)
        kps = keypoints_by_corpus("dev")
        corpora = [(c, kps[c.name]) for c, _ in argkp_corpora("dev")[: args.argkp]]
        corpora += [(polis_corpus(name), None) for name in POLIS]
        for corpus, keypoints in corpora:
            started = time.perf_counter()
            result = run(corpus.loaded(), config, cache_dir=folder / "cache")
            s = result.synthesis
            report = s.metadata.drafting
            texts = drafted_texts(s)
            kept.update(part for part, _ in texts)
            supports += [x for _, x in texts]
            dropped.update(reason_kind(d.reason) for d in report.dropped)
            if keypoints is not None:
                titles += title_scores(s, keypoints)
            per_corpus.append(
                [corpus.name, len(texts), len(report.dropped), report.prompt_tokens + report.completion_tokens,
                 "; ".join(report.warnings) or "", f"{time.perf_counter() - started:.0f} s"]
            )  # fmt: skip
            print(per_corpus[-1], flush=True)
    total_kept, total_dropped = sum(kept.values()), sum(dropped.values())
    body = [
        f"## LLM drafting (`{COMMAND}`)",
        "",
        f"{machine()}. Model: {args.model} at {'a local llama.cpp server' if not args.base_url else args.base_url}, "
        f"temperature 0, prompts v1, token budget {args.budget:,} per corpus. Corpora: ArgKP dev (first "
        f"{args.argkp} motion-stances) and Polis {', '.join(POLIS)}. Reproduce: `{COMMAND}` (any endpoint: "
        "`make eval-llm LLM_BASE_URL=... LLM_MODEL=...`).",
        "",
        "A drafted text is kept only if it cites evidence it was given, quotes only verbatim, has a suitable length, "
        "a cosine of at least 0.5 with what it cites, and the entailment judge (a separate call) says the sources "
        "support it.",
        "",
        table(["corpus", "kept", "dropped", "tokens", "warnings", "time"], per_corpus),
        "",
        table(
            ["outcome", "count", "share"],
            [[f"kept: {k}", n, f"{n / max(1, total_kept + total_dropped):.0%}"] for k, n in sorted(kept.items())]
            + [[f"dropped: {k}", n, f"{n / max(1, total_kept + total_dropped):.0%}"] for k, n in dropped.most_common()],
        ),
        "",
        f"Support of kept texts: {len(supports)} texts"
        + (f", p10 {np.percentile(supports, 10):.3f}, median {np.median(supports):.3f}." if supports else "."),
        "",
    ]
    if titles:
        m = np.mean(np.array(titles), axis=0)
        body += [
            table(
                ["titles vs expert key points (ArgKP dev)", "key points", "mean cosine", "mean ROUGE-L"],
                [
                    ["extractive title (drafter off)", len(titles), f"{m[0]:.3f}", f"{m[1]:.3f}"],
                    ["with the drafter (drafted title where kept)", len(titles), f"{m[2]:.3f}", f"{m[3]:.3f}"],
                ],
            )
        ]
    text = "\n".join(body)
    print(text)
    write_section("drafting", text)


if __name__ == "__main__":
    main()
