"""Runs per hour with 1 and 2 `synth worker` processes against one PostgreSQL on this machine.

Six runs are queued in six projects, each of 1,000 distinct real contributions (slices of the bench's scale
corpus), so every run embeds anew; the clock stops when all six have succeeded. Writes eval/RESULTS.md
("Workers"). Database: $SYNTH_BENCH_DATABASE_URL, else a local PostgreSQL started by .ci/postgres.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from sqlalchemy import text

from eval.bench import scale_corpus
from eval.common import ROOT, machine, table, write_section
from synth.formats import LoadedInput
from synth.schema import Contribution
from synth.service import add_contributions, create_project, start_run
from synth.store import Database, make_engine, upgrade
from synth.store.models import Run

RUNS, SIZE = 6, 1_000


def database_url() -> str:
    url = os.environ.get("SYNTH_BENCH_DATABASE_URL")
    if url:
        return url
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "postgres.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def measure(url: str, n_workers: int, offset: int) -> tuple[float, list[float]]:
    with make_engine(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db = Database(url)
    upgrade(db.engine)
    rows = scale_corpus(offset + RUNS * SIZE)[offset:]
    run_ids = []
    with db.session() as s:
        for r in range(RUNS):
            p = create_project(s, f"bench {r}", "bench")
            part = rows[r * SIZE : (r + 1) * SIZE]
            loaded = LoadedInput([Contribution(id=x["id"], text=x["text"]) for x in part], [], "bench", str(r))
            add_contributions(s, p.id, loaded, "bench")
            run_ids.append(start_run(s, p.id, {}, "bench").id)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SYNTH_DATABASE_URL": url, "SYNTH_CACHE_DIR": cache}
        start = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "synth.cli", "worker"], env=env) for _ in range(n_workers)]
        try:
            while True:
                with db.session() as s:
                    runs = [s.get(Run, r) for r in run_ids]
                if all(r.status == "succeeded" for r in runs):
                    break
                if any(r.status in ("failed", "cancelled") for r in runs):
                    raise RuntimeError([r.error for r in runs])
                time.sleep(0.2)
            wall = time.perf_counter() - start
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
    durations = [(r.finished_at - r.heartbeat_at).total_seconds() for r in runs]
    return wall, durations


def main() -> None:
    url = database_url()
    rows = []
    for n_workers, offset in ((1, 0), (2, RUNS * SIZE)):
        wall, _ = measure(url, n_workers, offset)
        rows.append([n_workers, RUNS, f"{SIZE:,}", f"{wall:.1f}", f"{RUNS / wall * 3600:.0f}"])
        print(rows[-1], flush=True)
    write_section(
        "workers",
        "\n".join(
            [
                "## Workers: runs per hour (`python -m eval.workers`)",
                "",
                f"{machine()}. One PostgreSQL; {RUNS} runs queued at once, each of {SIZE:,} distinct contributions "
                "(nothing cached: each worker starts with an empty cache folder); the clock runs from starting the "
                "worker processes (model loading included) to the last run's success.",
                "",
                table(["workers", "runs", "contributions per run", "wall s", "runs per hour"], rows),
            ]
        ),
    )


if __name__ == "__main__":
    main()
