"""Theme titles against expert key points (argkp train and dev).

For each expert key point with at least MIN_ARGS matched arguments, the top-level synth theme whose members
overlap its arguments most is found, and that theme's title is compared with the key point text: cosine with
the packaged MiniLM (synth.pipeline.embed.embed_texts) and ROUGE-L F1. Beside it, three baselines on the same
themes or topics: synth's keyword label (`Theme.label`), the theme's medoid member segment, and BERTopic's
default topic name (raw and cleaned), plus a reference: a different expert key point of the same motion.

    python -m eval.titles                         # both splits, rewrites the "titles" section of RESULTS.md
    python -m eval.titles --split train --limit 4 # quick iteration: prints only
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from eval.common import DATASETS, machine, read_csv, table, write_section
from eval.harness import Corpus, cache, embeddings, synth_run
from eval.quality import argkp_corpora
from synth.models import weights_sha256
from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from synth.schema import Synthesis, Theme

MIN_ARGS = 3  # a key point needs at least this many matched arguments to be scored
TARGET_COSINE, TARGET_ROUGE = 0.70, 0.25  # the target for the synth title
N_EXAMPLES = 20
COMMAND = "python -m eval.titles"

METHODS = [
    "synth title",
    "synth keyword label",
    "synth medoid member",
    "BERTopic name, raw",
    "BERTopic name, cleaned",
    "other expert key point",
]

_TOKEN = re.compile(r"\w+")


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) of `candidate` against `reference`.

    Tokens are the lowercased `\\w+` runs (no stemming, no stop-word removal; note that `_` is a word
    character, so 'a_b' is one token). With L the length of the longest common subsequence of the two
    token lists, precision = L / len(candidate), recall = L / len(reference), F1 their harmonic mean.
    0.0 when either side has no tokens or nothing in common.
    """
    c, r = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not c or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for tc in c:
        cur = [0]
        for j, tr in enumerate(r):
            cur.append(prev[j] + 1 if tc == tr else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def best_match(members: Collection[str], groups: Mapping[str, Collection[str]]) -> str | None:
    """The id of the group holding most of `members`; ties go to the smaller group, then the smaller id.
    None when no group holds any of them."""
    want = set(members)
    best, key = None, None
    for gid, ids in groups.items():
        ids = set(ids)
        overlap = len(want & ids)
        if overlap == 0:
            continue
        k = (-overlap, len(ids), gid)
        if key is None or k < key:
            best, key = gid, k
    return best


def clean_bertopic_name(name: str) -> str:
    """'0_school_uniform_students_wear' -> 'school uniform students wear'."""
    return re.sub(r"^-?\d+_", "", name).replace("_", " ").strip()


def theme_title(theme: Theme) -> tuple[str, bool]:
    """The title under test and whether it came from `Theme.title` (True) or fell back to `Theme.label`."""
    title = getattr(theme, "title", None)
    if isinstance(title, str) and title.strip():
        return title.strip(), True
    return theme.label, False


@dataclass
class KeyPoint:
    id: str
    text: str
    args: set[str]


@dataclass
class Pair:
    """One key point and the text a method offers for it (None when the method has no matching group)."""

    method: str
    kp_id: str
    keypoint: str
    text: str | None


@dataclass
class SplitResult:
    pairs: list[Pair] = field(default_factory=list)
    examples: list[dict[str, str]] = field(default_factory=list)
    titles_from_field: int = 0  # top-level themes whose title came from Theme.title
    themes: int = 0
    keypoints_all: int = 0  # every key point of the corpora, scored or not
    corpora: int = 0


def keypoints_by_corpus(split: str) -> dict[str, list[KeyPoint]]:
    """Per corpus name ('<motion> (<stance>)', as eval.quality.argkp_corpora names them), every key point
    with the ids of all arguments confirmed to match it (MULTI arguments count for each of their key points)."""
    rows = read_csv(DATASETS / "argkp" / f"argument_clusters_{split}.csv")
    kps = read_csv(DATASETS / "argkp" / f"key_points_{split}.csv")
    args: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        for kp in filter(None, r["matched_key_point_ids"].split(";")):
            args[kp].add(r["arg_id"])
    out: dict[str, list[KeyPoint]] = defaultdict(list)
    for k in kps:
        out[f"{k['topic']} ({k['stance']})"].append(
            KeyPoint(k["key_point_id"], k["key_point"], args[k["key_point_id"]])
        )
    return out


def bertopic_topics(corpus: Corpus, vectors: np.ndarray, seed: int = 42) -> tuple[dict[str, set[str]], dict[str, str]]:
    """BERTopic with the settings of eval.harness.bertopic_run (documented defaults, seeded UMAP, synth's
    embeddings): per topic id (outliers, -1, left out) its member contribution ids, and its default name
    (the Name column of get_topic_info(), e.g. '0_school_uniform_students_wear')."""
    from bertopic import BERTopic
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(umap_model=umap_model, calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform(corpus.texts, embeddings=vectors)
    members: dict[str, set[str]] = defaultdict(set)
    for cid, t in zip(corpus.ids, topics, strict=True):
        if t != -1:
            members[str(t)].add(cid)
    info = model.get_topic_info()
    names = {str(t): str(n) for t, n in zip(info["Topic"], info["Name"], strict=True) if t != -1}
    return dict(members), names


def medoids(s: Synthesis, themes: list[Theme]) -> dict[str, str]:
    """Per theme, its member segment closest to the theme centre (normalised mean of the members' vectors),
    with the vectors synth itself clusters on (embed_texts of the normalised segment text)."""
    segs = {seg.id: seg for seg in s.segments}
    out = {}
    for t in themes:
        members = [segs[i] for i in t.segment_ids if i in segs]
        if not members:
            continue
        vecs = embed_texts([normalise(m.text) for m in members], cache())
        centre = vecs.mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        out[t.id] = members[int(np.argmax(vecs @ centre))].text
    return out


def evaluate_split(split: str, limit: int | None, with_bertopic: bool) -> SplitResult:
    res = SplitResult()
    kp_of = keypoints_by_corpus(split)
    corpora = argkp_corpora(split)[:limit] if limit else argkp_corpora(split)
    for corpus, _ in corpora:
        t0 = time.time()
        kps = kp_of[corpus.name]
        res.corpora += 1
        res.keypoints_all += len(kps)
        scored = [k for k in kps if len(k.args) >= MIN_ARGS]
        _, s = synth_run(corpus)
        themes = [t for sec in s.sections for t in sec.themes if t.parent_id is None]
        by_id = {t.id: t for t in themes}
        res.themes += len(themes)
        res.titles_from_field += sum(theme_title(t)[1] for t in themes)
        med = medoids(s, themes)
        groups = {t.id: t.contribution_ids for t in themes}
        if with_bertopic:
            b_members, b_names = bertopic_topics(corpus, embeddings(corpus))
        for k in scored:
            tid = best_match(k.args, groups)
            theme = by_id.get(tid) if tid else None
            title = theme_title(theme)[0] if theme else None
            label = theme.label.replace(" · ", " ") if theme else None
            res.pairs += [
                Pair("synth title", k.id, k.text, title),
                Pair("synth keyword label", k.id, k.text, label),
                Pair("synth medoid member", k.id, k.text, med.get(tid) if theme else None),
            ]
            if with_bertopic:
                bid = best_match(k.args, b_members)
                name = b_names.get(bid) if bid else None
                res.pairs += [
                    Pair("BERTopic name, raw", k.id, k.text, name),
                    Pair("BERTopic name, cleaned", k.id, k.text, clean_bertopic_name(name) if name else None),
                ]
            res.pairs += [Pair("other expert key point", k.id, k.text, o.text) for o in kps if o.id != k.id]
            if theme and len(res.examples) < N_EXAMPLES:
                res.examples.append(
                    {"keypoint": k.text, "title": title, "label": theme.label, "medoid": med.get(tid, "")}
                )
        print(
            f"  {split} {corpus.name}: {len(scored)}/{len(kps)} key points scored, {time.time() - t0:.1f} s", flush=True
        )
    return res


def summarise(res: SplitResult) -> dict[str, dict[str, float | int]]:
    """Per method: key points matched and total, mean cosine and mean ROUGE-L over the matched ones.
    'other expert key point' averages over every other key point first, then over key points."""
    texts = sorted({p.keypoint for p in res.pairs} | {p.text for p in res.pairs if p.text})
    vec = dict(zip(texts, embed_texts(texts, cache()), strict=True))
    out: dict[str, dict[str, float | int]] = {}
    for m in METHODS:
        pairs = [p for p in res.pairs if p.method == m]
        if not pairs:
            continue
        per_kp: dict[str, list[tuple[float, float]]] = defaultdict(list)
        totals: set[str] = set()
        for p in pairs:
            totals.add(p.kp_id)
            if p.text is not None:
                per_kp[p.kp_id].append((float(vec[p.keypoint] @ vec[p.text]), rouge_l(p.text, p.keypoint)))
        cos = [np.mean([c for c, _ in v]) for v in per_kp.values()]
        rouge = [np.mean([r for _, r in v]) for v in per_kp.values()]
        out[m] = {
            "matched": len(per_kp),
            "total": len(totals),
            "cosine": float(np.mean(cos)) if cos else float("nan"),
            "rouge": float(np.mean(rouge)) if rouge else float("nan"),
        }
    return out


def _source(method: str, res: SplitResult) -> str:
    if method == "synth title":
        if res.titles_from_field == res.themes:
            return "`Theme.title`"
        if res.titles_from_field == 0:
            return "**`Theme.label`: no `Theme.title` yet** (same as the label row)"
        return f"`Theme.title` for {res.titles_from_field} of {res.themes} themes, else `Theme.label`"
    return {
        "synth keyword label": "`Theme.label` (' · ' as a space)",
        "synth medoid member": "member segment closest to the theme centre",
        "BERTopic name, raw": "`get_topic_info()` Name",
        "BERTopic name, cleaned": "Name without number prefix and `_`",
        "other expert key point": "mean over the other key points of the motion and stance",
    }[method]


def _cell(text: str | None, width: int = 160) -> str:
    text = " ".join((text or "").split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def run(splits: list[str], limit: int | None) -> tuple[list[list[object]], dict[str, SplitResult], dict]:
    with_bertopic = importlib.util.find_spec("bertopic") is not None
    if not with_bertopic:
        print("bertopic is not installed (pip install -e '.[eval]'): its rows are left out", file=sys.stderr)
    rows: list[list[object]] = []
    results, summaries = {}, {}
    for split in splits:
        res = results[split] = evaluate_split(split, limit, with_bertopic)
        d = summaries[split] = summarise(res)
        for m in METHODS:
            if m in d:
                x = d[m]
                rows.append(
                    [
                        m,
                        _source(m, res),
                        split,
                        f"{x['matched']} / {x['total']}",
                        f"{x['cosine']:.3f}",
                        f"{x['rouge']:.3f}",
                    ]
                )
    return rows, results, summaries


def verdict(d: dict[str, dict[str, float | int]]) -> str:
    t = d["synth title"]
    base = [m for m in d if m not in ("synth title", "other expert key point")]
    above = all(t["cosine"] > d[m]["cosine"] and t["rouge"] > d[m]["rouge"] for m in base)
    met = t["cosine"] >= TARGET_COSINE and t["rouge"] >= TARGET_ROUGE
    return (
        f"cosine {t['cosine']:.3f} (target >= {TARGET_COSINE}), ROUGE-L {t['rouge']:.3f} (>= {TARGET_ROUGE}): "
        f"{'met' if met else 'not met'}; above every baseline on both metrics: {'yes' if above else 'no'}"
    )


HEADERS = ["method", "title source", "split", "key points matched / total", "mean cosine", "mean ROUGE-L"]


def render(rows: list[list[object]], results: dict[str, SplitResult], summaries: dict) -> str:
    n_all = {s: r.keypoints_all for s, r in results.items()}
    body = [
        f"## Theme titles against expert key points (`{COMMAND}`)",
        "",
        f"{machine()}. Embedding model sha256 {weights_sha256('embedding')[:16]}…. Reproduce: `{COMMAND}`.",
        "",
        "Per argkp motion and stance, synth and BERTopic (documented defaults, seeded UMAP, synth's embeddings) are "
        f"run on the arguments. For each expert key point with at least {MIN_ARGS} matched arguments (MULTI "
        "arguments count for each key point they match; "
        + ", ".join(
            f"{s}: {sum(1 for p in results[s].pairs if p.method == 'synth title')} of {n_all[s]}" for s in results
        )
        + " key points), the top-level theme (BERTopic: topic, outliers excluded) holding most of its arguments is "
        "taken, ties to the smaller one; a key point no theme overlaps is unmatched and left out of the means. "
        "Its title is compared with the key point text: cosine of the packaged MiniLM vectors and ROUGE-L F1 on "
        "lowercased `\\w+` tokens, no stemming (so the raw BERTopic name, one `\\w+` token joined by `_`, scores 0 "
        "ROUGE-L by construction: the cleaned row is the fair one). Baselines: the keyword label, the medoid member "
        "segment, BERTopic's topic name; 'other expert key point' is the mean similarity of a key point to the "
        "other key points of its motion and stance, the level of a plausible but wrong title. "
        "The `title source` column says where the synth title came from. Nothing was tuned on dev; "
        f"iterate on train (`{COMMAND} --split train --limit 4`).",
        "",
        table(HEADERS, rows),
        "",
    ]
    for s, d in summaries.items():
        if "synth title" in d:
            body.append(
                f"Target (issue: mean cosine >= {TARGET_COSINE}, ROUGE-L >= {TARGET_ROUGE}, above every "
                f"baseline), {s}: {verdict(d)}."
            )
            body.append("")
    if "dev" in results:
        ex = results["dev"].examples
        body += [
            f"First {len(ex)} matched dev key points, for reading:",
            "",
            table(
                ["expert key point", "synth title", "synth keyword label", "synth medoid member"],
                [[_cell(e["keypoint"]), _cell(e["title"]), _cell(e["label"]), _cell(e["medoid"])] for e in ex],
            ),
        ]
    return "\n".join(body)


def report(splits: list[str] | None = None, limit: int | None = None, write: bool = True) -> str:
    """Run, print, and (both splits, no limit) rewrite the "titles" section of eval/RESULTS.md."""
    start = time.time()
    rows, results, summaries = run(splits or ["train", "dev"], limit)
    text = render(rows, results, summaries)
    print(text, flush=True)
    if write:
        write_section("titles", text)
    print(f"titles: {time.time() - start:.0f} s", flush=True)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["train", "dev", "both"], default="both")
    parser.add_argument("--limit", type=int, default=None, help="only the first N motion/stance corpora per split")
    args = parser.parse_args(argv)
    splits = ["train", "dev"] if args.split == "both" else [args.split]
    report(splits, args.limit, write=args.split == "both" and args.limit is None)


if __name__ == "__main__":
    main()
