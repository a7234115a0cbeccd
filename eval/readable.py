"""What a reader gets: theme titles and labels, and full theme summaries, from two real Polis conversations,
printed into eval/RESULTS.md (section "readable") so anyone can judge them without running anything.

Data: Polis open data (CC BY 4.0, The Computational Democracy Project), ../shared/datasets/polis-opendata."""

from __future__ import annotations

from eval.common import DATASETS, machine, table, write_section
from synth.formats import load_contributions
from synth.pipeline import run

CONVERSATIONS = ("american-assembly.bowling-green", "scoop-hivemind.freshwater")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    parts = [
        "## Readable output: titles and summaries (`python -m eval.readable`)",
        "",
        f"{machine()}. Default settings. Titles are members' own words (the cited span); labels are the noun "
        "phrases used in charts. Polis open data, CC BY 4.0, The Computational Democracy Project.",
    ]
    for name in CONVERSATIONS:
        s = run(load_contributions(DATASETS / "polis-opendata" / name)).synthesis
        sec = s.sections[0]
        top = sorted((t for t in sec.themes if t.parent_id is None), key=lambda t: -t.n_contributions)
        rows = []
        for t in top:
            rows.append([t.id, t.n_contributions, _cell(t.title), _cell(t.label), _cell(", ".join(t.keywords[:4]))])
            for sub in (x for x in sec.themes if x.parent_id == t.id):
                rows.append([sub.id, sub.n_contributions, _cell(sub.title), _cell(sub.label), ""])
        parts += [
            "",
            f"### {name}: {len(rows)} titles",
            "",
            table(["theme", "size", "title", "label", "keywords"], rows[:20]),
        ]
        parts += ["", f"Overview ({name}):", ""]
        parts += [f"> {_cell(x.text)}" for x in sec.summaries[0].sentences]
        for t in top[: 3 if name == CONVERSATIONS[0] else 2]:
            summary = next(x for x in sec.summaries if x.scope == t.id)
            parts += ["", f"Summary of {t.id} ({name}):", ""]
            parts += [f"> {_cell(x.text)}" for x in summary.sentences]
        views = [v for v in sec.minority_views if v.statement][:3]
        if views:
            parts += ["", f"Minority views ({name}), first {len(views)} with a statement:", ""]
            parts += [f"- \u201c{_cell(v.statement)}\u201d \u2014 {_cell(v.reason)}" for v in views]
    write_section("readable", "\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
