"""Webhooks against a real receiver on the loopback interface: allow-listed hosts only, a signed body that
verifies with the project's secret, retries with back-off after a failure, every attempt visible."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from synth.service.webhooks import BACKOFF, deliver_due
from synth.store.models import WebhookDelivery, now
from tests.conftest import h, make_project, work

pytestmark = pytest.mark.enable_socket


class Receiver:
    """An HTTP server that records what it is sent and answers with the next status in `answers`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.answers.pop(0) if outer.answers else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _project_with_hook(api: TestClient, receiver: Receiver) -> tuple[str, dict[str, str], str]:
    pid, keys = make_project(api, "Webhooks")
    rows = [{"id": f"c{i}", "text": f"Contribution number {i} about buses and fares."} for i in range(12)]
    api.post(f"/v1/projects/{pid}/contributions", json={"contributions": rows}, headers=h(keys["platform"]))
    r = api.put(f"/v1/projects/{pid}/webhooks", json={"allowed_hosts": [receiver.host]}, headers=h(keys["admin"]))
    assert r.status_code == 200 and r.json()["secret"].startswith("whsec_")
    again = api.put(f"/v1/projects/{pid}/webhooks", json={"allowed_hosts": [receiver.host]}, headers=h(keys["admin"]))
    assert again.json()["secret"] is None  # shown once
    return pid, keys, r.json()["secret"]


def test_a_finished_run_calls_back_signed(api: TestClient, receiver: Receiver) -> None:
    pid, keys, secret = _project_with_hook(api, receiver)
    url = f"http://{receiver.host}/hooks/synth"
    elsewhere = {"callback_url": "http://127.0.0.2:9/hook"}
    refused = api.post(f"/v1/projects/{pid}/runs", json=elsewhere, headers=h(keys["platform"]))
    assert refused.status_code == 422 and "allow-list" in refused.json()["detail"]
    run = api.post(f"/v1/projects/{pid}/runs", json={"callback_url": url}, headers=h(keys["platform"])).json()
    assert run["callback_url"] == url
    work(api)
    assert deliver_due(api.app.state.db) == 1
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-synth-signature"], expected)
    event = json.loads(body)
    assert event["event"] == "run.finished" and event["run"]["id"] == run["id"]
    assert event["run"]["status"] == "succeeded" and headers["x-synth-event"] == "run.finished"
    listed = api.get(f"/v1/projects/{pid}/runs/{run['id']}/deliveries", headers=h(keys["platform"])).json()["items"]
    assert listed[0]["status"] == "delivered" and listed[0]["attempts"][0]["status_code"] == 204
    assert deliver_due(api.app.state.db) == 0  # nothing is sent twice


def test_failed_deliveries_are_retried_with_backoff_then_given_up(api: TestClient, receiver: Receiver) -> None:
    pid, keys, _ = _project_with_hook(api, receiver)
    url = f"http://{receiver.host}/hook"
    run = api.post(f"/v1/projects/{pid}/runs", json={"callback_url": url}, headers=h(keys["platform"])).json()
    assert api.post(f"/v1/projects/{pid}/runs/{run['id']}/cancel", headers=h(keys["platform"])).status_code == 200
    receiver.answers = [500] * (len(BACKOFF) + 1)
    db = api.app.state.db
    waits = []
    for _ in range(len(BACKOFF) + 1):
        assert deliver_due(db) == 1
        assert deliver_due(db) == 0  # not due again until its back-off has passed
        with db.session() as s:
            d = s.query(WebhookDelivery).filter(WebhookDelivery.run_id == run["id"]).one()
            if d.next_at is not None:
                waits.append(round((d.next_at - now()).total_seconds()))
                d.next_at = now() - timedelta(seconds=1)  # time passes
    assert [w >= b - 2 and w <= b for w, b in zip(waits, BACKOFF, strict=True)] == [True] * len(BACKOFF)
    assert len(receiver.received) == len(BACKOFF) + 1
    assert json.loads(receiver.received[0][1])["run"]["status"] == "cancelled"
    listed = api.get(f"/v1/projects/{pid}/runs/{run['id']}/deliveries", headers=h(keys["platform"])).json()["items"]
    assert listed[0]["status"] == "failed" and [a["status_code"] for a in listed[0]["attempts"]] == [500] * 5
    ids = {headers["x-synth-delivery"] for headers, _ in receiver.received}
    assert len(ids) == 1  # a retry carries the same delivery id, so a receiver can drop duplicates


def test_webhooks_in_the_openapi_document(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    hook = doc["webhooks"]["run.finished"]["post"]
    assert "X-Synth-Signature" in hook["description"]
    assert hook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunFinished")
