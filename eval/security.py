"""Replays the security review's attacks (issue 8) against `synth serve` as a separate process on loopback
(SQLite), measures what the server does (status, the server process's memory, other clients' latency), and
writes the table of before (as the review found it) and after into eval/RESULTS.md (section "security").

The same attacks are asserted in tests/test_security_api.py and tests/test_security_pages.py; this script
gives the figures."""

from __future__ import annotations

import csv
import io
import os
import re
import select
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx

from eval.common import ROOT, machine, synth_server, table, write_section

POLIS = ROOT / "tests" / "fixtures" / "polis-brexit"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_chunked(port: int, path: str, headers: dict[str, str], total: int) -> tuple[int, int]:
    """POST `total` bytes chunked, stopping when the server answers; (status, MB sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode())
    chunk = b"%x\r\n" % (1 << 20) + b"[" * (1 << 20) + b"\r\n"
    sent = 0
    try:
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(chunk)
            sent += 1
    except OSError:
        pass
    data = b""
    try:
        while b"\r\n" not in data:
            part = sock.recv(4096)
            if not part:
                break
            data += part
    except OSError:
        pass
    sock.close()
    return (int(data.split(b" ")[1]) if data else 0), sent


def wide_csv(rows: int) -> bytes:
    with (POLIS / "comments.csv").open(encoding="utf-8") as f:
        texts = [r["comment-body"] for r in csv.DictReader(f)]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "text"])
    for i in range(rows):
        w.writerow([f"r{i}", f"{texts[i % len(texts)]} ({i})"])
    return out.getvalue().encode()


def main() -> None:  # noqa: PLR0915 - one scenario after another, in order
    tmp = Path(tempfile.mkdtemp(prefix="synth-security-"))
    env = {**os.environ, "SYNTH_DATABASE_URL": f"sqlite:///{tmp / 'sec.db'}", "SYNTH_AUDIT_KEY": "eval"}
    rows: list[list[object]] = []
    with synth_server(env, "--no-workers-in-process") as (server, port, admin):
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": admin}, timeout=120)
        pid = client.post("/v1/projects", json={"name": "attack"}).json()["id"]
        key = client.post(f"/v1/projects/{pid}/keys", json={"role": "facilitator", "name": "F"}).json()

        base = rss_mb(server.pid)
        status, sent = stream_chunked(port, "/v1/projects", {"content-type": "application/json"}, 300)
        rows.append(
            [
                "300 MB chunked body, no key, `POST /v1/projects`",
                "401 after reading it all; RSS 197 → 977 MB",
                f"{status} after {sent} MB sent; RSS {base:.0f} → {rss_mb(server.pid):.0f} MB",
            ]
        )
        base = rss_mb(server.pid)
        status, sent = stream_chunked(
            port,
            f"/v1/projects/{pid}/contributions",
            {"content-type": "application/json", "x-api-key": key["key"]},
            400,
        )
        rows.append(
            [
                "400 MB chunked upload with a valid key",
                "413 after reading it all; RSS to 814 MB",
                f"{status} after {sent} MB sent (limit 20 MB); RSS {base:.0f} → {rss_mb(server.pid):.0f} MB",
            ]
        )

        body = wide_csv(20_000)
        latencies: list[float] = []
        done = threading.Event()

        def poll() -> None:
            with httpx.Client(base_url=client.base_url, headers={"X-API-Key": key["key"]}) as other:
                while not done.is_set():
                    t0 = time.perf_counter()
                    other.get(f"/v1/projects/{pid}")
                    latencies.append(time.perf_counter() - t0)
                    time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        t0 = time.perf_counter()
        r = client.post(
            f"/v1/projects/{pid}/contributions",
            files={"file": ("big.csv", body, "text/csv")},
            headers={"X-API-Key": key["key"]},
        )
        upload_s = time.perf_counter() - t0
        done.set()
        poller.join()
        rows.append(
            [
                "20,000-row upload while another client reads",
                "every other request frozen for 13.8 s",
                f"{r.status_code} in {upload_s:.1f} s; other client's slowest request {max(latencies) * 1000:.0f} ms "
                f"({len(latencies)} requests)",
            ]
        )

        fkey = {"X-API-Key": key["key"]}
        r = client.post(f"/v1/projects/{pid}/runs", json={"config": {"umap_epochs": 100_000_000}}, headers=fkey)
        r2 = client.post(f"/v1/projects/{pid}/runs", json={"config": {"n_keywords": -3}}, headers=fkey)
        rows.append(
            [
                "run config `umap_epochs: 1e8`, `n_keywords: -3`",
                "accepted (202); the worker held indefinitely",
                f"{r.status_code}, {r2.status_code} (bounds in the OpenAPI schema)",
            ]
        )

        hostile = [
            ("deeply nested JSON", "deep.json", b"[" * 100_000, "auto"),
            ("JSONL id of 5,000 digits", "x.jsonl", b'{"id": ' + b"9" * 5000 + b', "text": "hi"}\n', "auto"),
            ("file name `..`", "..", b"id,text\n1,hello\n", "csv"),
            ("file name of 300 characters", "x" * 300 + ".csv", b"id,text\n1,hello\n", "auto"),
            ("`format=polis`, file not named comments.csv", "export.csv", b"comment-id,comment-body\n1,hi\n", "polis"),
            ("CSV with a 10 MB field", "big.csv", b"id,text\n1," + b"a" * 10_000_000 + b"\n", "csv"),
        ]
        for name, filename, data, fmt in hostile:
            r = client.post(
                f"/v1/projects/{pid}/contributions",
                files={"file": (filename, data, "application/octet-stream")},
                data={"format": fmt},
                headers=fkey,
            )
            rows.append([f"upload: {name}", "500 (plain text)", f"{r.status_code} {r.headers['content-type']}"])
        for revision, before in (("99999999999999999999", "500 (SQLite)"), ("2147483648", "500 (PostgreSQL)")):
            r = client.get(f"/v1/projects/{pid}/runs/x/result?revision={revision}", headers=fkey)
            rows.append([f"`?revision={revision}`", before, f"{r.status_code} {r.headers['content-type']}"])

        bound = client.post(f"/v1/projects/{pid}/keys", json={"role": "admin"}).json()["key"]
        r = client.post("/v1/projects", json={"name": "orphan"}, headers={"X-API-Key": bound})
        rows.append(["project-bound admin key creates a project", "201 (then cannot see it)", str(r.status_code)])
        client.delete(f"/v1/projects/{pid}/keys/{key['id']}")
        r = client.get(f"/v1/projects/{pid}", headers=fkey)
        rows.append(["a revoked key", "no way to revoke a key", f"{r.status_code} after `DELETE …/keys/{{id}}`"])

        web = httpx.Client(base_url=client.base_url, follow_redirects=False)
        page = web.get("/web/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        new = client.post(f"/v1/projects/{pid}/keys", json={"role": "facilitator"}).json()
        web.post("/web/login", data={"csrf": csrf, "key": new["key"]})
        stolen = dict(web.cookies)
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get(f"/web/projects/{pid}").text).group(1)
        web.post("/web/logout", data={"csrf": csrf})
        replay = httpx.Client(base_url=client.base_url, cookies=stolen, follow_redirects=False)
        r = replay.get(f"/web/projects/{pid}")
        rows.append(
            [
                "session cookie replayed after sign-out",
                "still signed in (stateless 14-day cookie)",
                f"{r.status_code} to the sign-in page",
            ]
        )
        r = client.get("/web/")
        csp = r.headers.get("content-security-policy", "none")
        rows.append(["security headers on the review pages", "none", f"CSP `{csp}`; X-Frame-Options, nosniff"])
    rows += [
        [
            "hostile corpus (script, event handlers, `javascript:` URLs, markup in ids, groups, labels, file names, "
            "key names) rendered in Chromium: every review page, the report preview, the CLI's HTML report, the "
            "Markdown report through a raw-HTML Markdown renderer",
            "83 script executions (CLI report), 116 (web preview); a script renamed a theme as the facilitator",
            "0 dialogs, 0 injected elements, 0 CSP violations (tests/test_security_pages.py)",
        ],
        [
            "PostgreSQL stopped 3 s while the in-process worker idles, then a run is queued",
            "worker thread dead; run queued until restart",
            "run picked up within 10 s, worker alive (test_queued_run_is_picked_up_after_a_postgresql_restart)",
        ],
        [
            "a stage longer than the stale limit",
            "second worker requeued it; UNIQUE(run_id, revision) clash",
            "heartbeat thread beats every ≤ 10 s through every stage; no requeue (test_heartbeat_…)",
        ],
        [
            "cancel a running run",
            "200 'cancelled', run went on (1 in 8 succeeded on PostgreSQL)",
            "202, stops at the next check; a cancel during the last stage wins (test_cancel_…)",
        ],
        [
            "two concurrent edits of one revision (12 rounds)",
            "500 in 9/12 (SQLite), 10/12 (PostgreSQL)",
            "201 or 409 problem, revisions contiguous (test_concurrent_edits_…)",
        ],
        [
            "audit: delete the newest events; rewrite one and recompute every hash",
            "not detected",
            "detected (HMAC per event and on the head, key outside the database)",
        ],
        ["delete a project", "audit trail erased, no record", "audit kept, ends in project.delete; deletion record"],
        ["edit form with `Referer: https://evil.example/`", "redirected off-site", "redirect to the run overview"],
        # found by a second review of the fix itself
        [
            "verify the chain while events are appended",
            "(after the first fix) 249/901 checks on PostgreSQL, 314/786 on SQLite said 'broken'",
            "0 of 150 (the head is read first; test_verify_is_not_fooled_…)",
        ],
        [
            "8 processes create the audit key at once",
            "(after the first fix) 60/100 rounds: some used an empty key",
            "one non-empty key, mode 0600 (written whole, then linked into place)",
        ],
        ["a key named with 200 characters uploads (PostgreSQL)", "400: actor too long for the audit log", "200"],
        ["NUL in a contribution or project name", "SQLite 201, PostgreSQL 400", "422 on both"],
        ["`Transfer-Encoding: Chunked` (httptools) without a key", "body read before the 401", "401, body unread"],
        ["an unhandled error", "500 without security headers", "500 problem with every header"],
        ["`--root-path /synth`", "uploads held to the 1 MB limit; pages without their CSP", "paths matched without it"],
        ["browser upload over the limit", "a raw JSON 413 page", "back to the project page with the reason"],
        ["cancel while a worker claims the run", "'cancelled' but the worker carried on", "202 and the worker stops"],
        ["downgrade migration 0002 on SQLite", "every contribution deleted (cascade)", "data kept"],
    ]
    write_section(
        "security",
        "\n".join(
            [
                "## Security: the review's attacks replayed (`python -m eval.security`)",
                "",
                f"{machine()}. `synth serve` as its own process on 127.0.0.1 (SQLite), default limits "
                "(20 MB uploads, 1 MB other bodies); RSS of the server process read from /proc. Rows below the "
                "measured ones are asserted by the named tests (SQLite and PostgreSQL).",
                "",
                table(["attack", "before (issue 8)", "after"], rows),
            ]
        ),
    )
    print(table(["attack", "before (issue 8)", "after"], rows))


if __name__ == "__main__":
    main()
