"""`synth worker` in its own process takes a queued run from the database and finishes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from synth.formats import load_contributions
from synth.service import add_contributions, create_project, start_run
from synth.store import Database, upgrade
from synth.store.models import Run
from tests.conftest import POLIS


def test_worker_process_runs_a_queued_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'synth.db'}"
    db = Database(url)
    upgrade(db.engine)
    with db.session() as s:
        p = create_project(s, "w", "test")
        add_contributions(s, p.id, load_contributions(POLIS), "test")
        run_id = start_run(s, p.id, {}, "test").id
    env = {**os.environ, "SYNTH_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "synth.cli", "worker"], env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with db.session() as s:
                status = s.get(Run, run_id).status
            if status not in ("queued", "running"):
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(10)
    assert status == "succeeded"


def test_two_worker_processes_share_one_database(api, tmp_path: Path) -> None:  # noqa: ANN001
    """The deployment compose.yaml describes: several `synth worker` processes against one database (SQLite
    and PostgreSQL here). Every queued run is done exactly once; both workers take part."""
    from tests.conftest import h, make_project

    pid, keys = make_project(api, "Workers")
    rows = [{"id": f"c{i}", "text": f"Contribution {i}: buses, fares and cycle lanes in the {i % 7} district."}
            for i in range(40)]  # fmt: skip
    api.post(f"/v1/projects/{pid}/contributions", json={"contributions": rows}, headers=h(keys["platform"]))
    api.app.state.limits = api.app.state.limits.__class__(
        **{**vars(api.app.state.limits), "queued_runs_per_project": 6}
    )
    runs = [api.post(f"/v1/projects/{pid}/runs", json={"config": {"seed": s}}, headers=h(keys["platform"])).json()["id"]
            for s in range(4)]  # fmt: skip
    env = {**os.environ, "SYNTH_DATABASE_URL": str(api.app.state.db.engine.url.render_as_string(hide_password=False))}
    env["SYNTH_DATABASE_URL"] = env["SYNTH_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    workers = [subprocess.Popen([sys.executable, "-m", "synth.cli", "worker"], env=env) for _ in range(2)]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with api.app.state.db.session() as s:
                done = [s.get(Run, r) for r in runs]
                if all(r.status not in ("queued", "running") for r in done):
                    break
            time.sleep(0.5)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(10)
    with api.app.state.db.session() as s:
        done = [s.get(Run, r) for r in runs]
        assert [r.status for r in done] == ["succeeded"] * 4
        assert [r.attempts for r in done] == [1] * 4  # nobody ran a run twice
        assert len({r.worker_id for r in done}) == 2  # both workers took runs
