"""The embedding stage on a real local Ray cluster: a head node and a second worker node started with
`ray start` on this machine. The vectors must equal the local path's, and land in the same cache."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from tests.conftest import POLIS

pytestmark = pytest.mark.enable_socket
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    port = _free_port()
    temp = Path(f"/tmp/synth-ray-{os.getpid()}")  # short: Ray's socket paths must fit in 107 characters
    # a loopback-only test cluster: no token (a real cluster sets RAY_AUTH_TOKEN on every node and the driver)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run(
        [RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard",
         "false", "--temp-dir", str(temp), *common],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        subprocess.run(
            [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            check=True, capture_output=True, env=env, timeout=120,
        )  # fmt: skip
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_embeddings_on_ray_equal_the_local_path(cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    texts = [normalise(line) for line in (POLIS / "comments.csv").read_text(encoding="utf-8").splitlines()[1:]]
    texts = sorted(set(texts * 1))[:700]  # two chunks of work, so both nodes' actors take part
    local = embed_texts(texts, None)
    monkeypatch.setenv("SYNTH_RAY_ADDRESS", cluster)
    remote = embed_texts(texts, tmp_path / "cache")
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2.0  # head and worker node
    assert len(ray.nodes()) == 2
    assert remote.shape == local.shape == (len(texts), 384)
    assert np.abs(remote - local).max() < 1e-5 and float((remote * local).sum(axis=1).min()) > 0.99999
    monkeypatch.delenv("SYNTH_RAY_ADDRESS")
    again = embed_texts(texts, tmp_path / "cache")  # read from the cache the Ray run filled, no cluster needed
    assert np.array_equal(again, remote)
