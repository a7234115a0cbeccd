"""Time of each review page and each edit on a 2,000-contribution run (p50 and p95 over 20 repeats), through
the whole app in process (routing, session, database, rendering). Writes eval/RESULTS.md ("Pages")."""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from eval.bench import corpus
from eval.common import machine, table, write_section
from synth import service as svc
from synth.app import create_app
from synth.formats import LoadedInput
from synth.jobs import Worker
from synth.schema import Contribution

N, REPEATS = 2_000, 20


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(f"sqlite:///{Path(tmp) / 'synth.db'}", run_worker=False)
        rows = corpus(N)
        with app.state.db.session() as s:
            p = svc.create_project(s, "Pages", "bench")
            loaded = LoadedInput([Contribution(id=r["id"], text=r["text"]) for r in rows], [], "bench.csv", "x")
            svc.add_contributions(s, p.id, loaded, "bench")
            run_id = svc.start_run(s, p.id, {}, "bench").id
            key = svc.create_key(s, "facilitator", p.id, "bench")[1]
        Worker(app.state.db).run_once()
        with app.state.db.session() as s:
            synthesis = svc.load_result(s, p.id, run_id)[1]
        themes = [t for t in synthesis.sections[0].themes if t.parent_id is None]
        base = f"/web/projects/{p.id}/runs/{run_id}"
        with TestClient(app) as client:
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/web/").text).group(1)
            client.post("/web/login", data={"key": key, "csrf": csrf})
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(base).text).group(1)  # a new one per session

            def timed(call) -> list[float]:  # noqa: ANN001
                out = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    r = call()
                    out.append((time.perf_counter() - start) * 1000)
                    assert r.status_code in (200, 303), r.status_code
                    assert "forbidden" not in r.headers.get("location", ""), "signed out"
                return out

            pages = {
                "project": f"/web/projects/{p.id}",
                "run overview": base,
                "theme (largest)": f"{base}/themes/{themes[0].id}",
                "unassigned queue": f"{base}/unassigned",
                "audit log": f"/web/projects/{p.id}/audit",
                "report preview": f"{base}/report",
            }
            results = {name: timed(lambda u=url: client.get(u)) for name, url in pages.items()}
            edit = f"{base}/edit"
            rename = {"csrf": csrf, "action": "rename_theme", "theme_id": themes[0].id, "label": "Timed"}
            results["edit: rename"] = timed(lambda: client.post(edit, data=rename, follow_redirects=False))
            reject = {"csrf": csrf, "action": "review_sentence", "scope": themes[0].id, "index": "1"}
            reject |= {"status": "rejected", "section": "0"}
            results["edit: reject a sentence"] = timed(lambda: client.post(edit, data=reject, follow_redirects=False))
            undo = {"csrf": csrf, "action": "revert_to_revision"}
            results["edit: undo"] = timed(lambda: client.post(edit, data=undo, follow_redirects=False))
            move = {"csrf": csrf, "action": "move_contributions", "theme_id": themes[0].id, "confirmed": "yes",
                    "contribution_ids": themes[0].contribution_ids[0], "to_theme_id": themes[1].id}  # fmt: skip
            results["edit: move (confirmed)"] = timed(lambda: client.post(edit, data=move, follow_redirects=False))
            merge = {
                "csrf": csrf,
                "action": "merge_themes",
                "theme_ids": [themes[2].id, themes[3].id],
                "confirmed": "yes",
            }
            results["edit: merge then undo"] = timed(
                lambda: (
                    client.post(edit, data=merge, follow_redirects=False),
                    client.post(edit, data=undo, follow_redirects=False),
                )[1]
            )
        with app.state.db.session() as s:
            made = len(svc.revisions(s, p.id, run_id))
        assert made > 5 * REPEATS, made  # every timed edit was saved
    table_rows = [[name, f"{statistics.median(xs):.0f}", f"{_p95(xs):.0f}"] for name, xs in results.items()]
    write_section(
        "pages",
        "\n".join(
            [
                "## Review pages: time per page and edit (`python -m eval.pages_bench`)",
                "",
                f"{machine()}. A run of {N:,} contributions ({len(themes)} themes); each page or edit {REPEATS} times "
                "through the whole app in process (routing, session check, database, rendering; no network). "
                "An edit is timed to its redirect (the page it lands on is timed above). Target: p95 under 300 ms.",
                "",
                table(["page or edit", "p50 ms", "p95 ms"], table_rows),
            ]
        ),
    )
    for row in table_rows:
        print(row)


if __name__ == "__main__":
    main()
