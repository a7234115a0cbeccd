"""API benchmark: requests per second and p50/p95 latency for reading results and for uploads, with a
load generator (httpx, 8 threads) against `synth serve` on loopback (uvicorn, SQLite). Bounded in count.
Writes the table into eval/RESULTS.md (section "api-bench")."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from eval.common import DATASETS, machine, read_csv, synth_server, table, write_section

REQUESTS = 400
THREADS = 8


def load(client: httpx.Client, method: str, path: str, bodies: list | None, threads: int) -> tuple[float, list[float]]:
    def one(i: int) -> float:
        t = time.perf_counter()
        r = client.get(path) if method == "GET" else client.post(path, json=bodies[i % len(bodies)])
        r.raise_for_status()
        return (time.perf_counter() - t) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(one, range(REQUESTS)))
    return REQUESTS / (time.perf_counter() - start), latencies


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="synth-api-bench-"))
    env = {**os.environ, "SYNTH_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"}
    rows = []
    with synth_server(env) as (_, port, key):
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=120)
        pid = client.post("/v1/projects", json={"name": "bench"}).json()["id"]
        args = read_csv(DATASETS / "argkp" / "arguments_train.csv")[:2000]
        client.post(
            f"/v1/projects/{pid}/contributions",
            json={"contributions": [{"id": r["arg_id"], "text": r["argument"]} for r in args]},
        )
        rid = client.post(f"/v1/projects/{pid}/runs", json={}).json()["id"]
        while client.get(f"/v1/projects/{pid}/runs/{rid}").json()["status"] in ("queued", "running"):
            time.sleep(0.5)
        themes = client.get(f"/v1/projects/{pid}/runs/{rid}/themes").json()["items"]
        big = max(themes, key=lambda t: t["n_contributions"])
        cases = [
            ("GET theme page (50 members)", "GET", f"/v1/projects/{pid}/runs/{rid}/themes/{big['id']}?limit=50", None),
            ("GET theme list", "GET", f"/v1/projects/{pid}/runs/{rid}/themes", None),
            ("GET contributions page (50)", "GET", f"/v1/projects/{pid}/contributions?limit=50", None),
            (
                "POST upload (10 contributions, JSON)",
                "POST",
                f"/v1/projects/{pid}/contributions",
                [
                    {"contributions": [{"id": f"u{i}-{j}", "text": f"Upload {i} item {j}"} for j in range(10)]}
                    for i in range(REQUESTS)
                ],
            ),
        ]
        for name, method, path, bodies in cases:
            for threads in (1, THREADS):
                load(client, method, path, bodies, threads)  # warm-up
                rps, lat = load(client, method, path, bodies, threads)
                q = statistics.quantiles(lat, n=100)
                rows.append([name, threads, REQUESTS, f"{rps:.0f}", f"{q[49]:.1f}", f"{q[94]:.1f}"])
                print(rows[-1], flush=True)
    write_section(
        "api-bench",
        "\n".join(
            [
                "## API benchmark (`python -m eval.api_bench`)",
                "",
                f"{machine()}. `synth serve` (uvicorn, one process, SQLite file) on 127.0.0.1; "
                f"1 and {THREADS} client threads (httpx, on the same 2 cores as the server), "
                f"{REQUESTS} requests per row after a warm-up round; "
                "a 2,000-argument argkp run. Latency in ms, measured by the client. "
                "Target: p95 < 50 ms for a theme page of 50 members.",
                "",
                table(["request", "client threads", "n", "req/s", "p50 ms", "p95 ms"], rows),
            ]
        ),
    )


if __name__ == "__main__":
    main()
