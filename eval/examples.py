"""Run synth on real Polis conversations; keep one report under eval/examples/ (with attribution)
and write a table of what each run found into eval/RESULTS.md (section "examples")."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from eval.common import DATASETS, ROOT, machine, table, write_section
from synth.service.local import synthesize_file, write_outputs

CONVERSATIONS = (
    "american-assembly.bowling-green",
    "canadian-electoral-reform",
    "scoop-hivemind.biodiversity",
    "15-per-hour-seattle",
)
KEEP = "scoop-hivemind.biodiversity"


def main() -> None:
    rows = []
    examples = ROOT / "eval" / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in CONVERSATIONS:
            start = time.perf_counter()
            result = synthesize_file(DATASETS / "polis-opendata" / name)
            wall = time.perf_counter() - start
            out = Path(tmp) / name
            write_outputs(result, out, f"Polis conversation: {name}")
            s = result.synthesis
            kinds: dict[str, int] = {}
            for sec in s.sections:
                for v in sec.minority_views:
                    kinds[v.kind] = kinds.get(v.kind, 0) + 1
            top = [t for sec in s.sections for t in sec.themes if t.parent_id is None]
            subs = sum(1 for sec in s.sections for t in sec.themes if t.parent_id is not None)
            c = s.coverage
            rows.append(
                [
                    name,
                    c.n_input,
                    c.n_excluded,
                    c.n_themed,
                    c.n_unassigned,
                    len(top),
                    subs,
                    ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none",
                    f"{wall:.1f}",
                ]
            )
            print(rows[-1], flush=True)
            if name == KEEP:
                shutil.copy(out / "report.html", examples / f"{name}.report.html")
    write_section(
        "examples",
        "\n".join(
            [
                "## Real Polis conversations end to end (`python -m eval.examples`)",
                "",
                f"Machine: {machine()}. Wall time in seconds, in one process (models load once, embedding cache warm "
                "after the first run of a text). Excluded = moderated out in Polis, empty, or duplicates.",
                "",
                table(
                    [
                        "conversation",
                        "comments",
                        "excluded",
                        "in a theme",
                        "unassigned",
                        "themes",
                        "sub-themes",
                        "minority views",
                        "wall s",
                    ],
                    rows,
                ),
                "",
                f"The report for `{KEEP}` is in `eval/examples/{KEEP}.report.html`.",
            ]
        ),
    )


if __name__ == "__main__":
    main()
