"""A small client for OpenAI-compatible chat-completions endpoints (Ollama, llama.cpp's server, vLLM,
LM Studio, hosted APIs), for the optional drafter. It never decides what enters a synthesis: the drafter checks
every answer. What it does: ask for JSON, retry what is worth retrying, stop at a token budget, and cache each
answer by everything that shaped it, so a re-run gives the same bytes without calling the model again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from synth.cache import Cache
from synth.config import SynthConfig

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


class LLMError(RuntimeError):
    """The endpoint could not give a usable answer (down, refusing, or not JSON after one repair)."""


class BudgetExceeded(LLMError):
    """The run's token budget is spent."""


class MalformedAnswer(LLMError):
    """One answer was not a JSON object even after a repair: that item fails, the model may still answer others."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str | None
    timeout: float

    @classmethod
    def of(cls, config: SynthConfig) -> Endpoint | None:
        """From the run's settings, else the environment; None when no endpoint or model is configured. The key
        is read from $SYNTH_LLM_API_KEY only, so it is never stored with a run."""
        base = config.llm_base_url or os.environ.get("SYNTH_LLM_BASE_URL")
        model = config.llm_model or os.environ.get("SYNTH_LLM_MODEL")
        if not base or not model:
            return None
        return cls(base.rstrip("/"), model, os.environ.get("SYNTH_LLM_API_KEY"), config.llm_timeout_seconds or 120.0)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def loopback(self) -> bool:
        """True only when the host is this machine: anything else receives the contributions."""
        host = self.host
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def remote_warning(endpoint: Endpoint) -> str | None:
    if endpoint.loopback:
        return None
    return (
        f"Contributions are sent to {endpoint.host}, a host that is not this machine, for drafting: make sure "
        "that is allowed for this consultation."
    )


@dataclass
class Usage:
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ChatClient:
    endpoint: Endpoint
    budget: int
    cache_dir: Path | None
    seed: int = 0
    attempts: int = 4
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self._cache = Cache(self.cache_dir, hashlib.sha256(self.endpoint.model.encode()).hexdigest(), "llm")
        headers = {"Authorization": f"Bearer {self.endpoint.api_key}"} if self.endpoint.api_key else {}
        self._http = httpx.Client(timeout=self.endpoint.timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def complete_json(self, messages: list[dict[str, str]], schema: dict, max_tokens: int) -> dict:
        """The model's answer as a JSON object. One repair attempt when it is not JSON; then LLMError."""
        payload = {
            "model": self.endpoint.model,
            "messages": messages,
            "temperature": 0,
            "seed": self.seed,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_object", "schema": schema},
        }
        key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        hit = self._cache.get([key]).get(key)
        if hit is not None:
            record = json.loads(hit)
            self.usage.cached += 1
            self.usage.prompt_tokens += record["usage"][0]
            self.usage.completion_tokens += record["usage"][1]
            return record["answer"]
        content, used = self._post(payload)
        try:
            answer = _parse(content)
        except ValueError as exc:
            repair = {
                **payload,
                "messages": [
                    *messages,
                    {"role": "assistant", "content": content[:2000]},
                    {"role": "user", "content": f"That was not a valid JSON object ({exc}). Reply with the JSON only."},
                ],
            }
            content, more = self._post(repair)
            used = (used[0] + more[0], used[1] + more[1])
            try:
                answer = _parse(content)
            except ValueError as again:
                raise MalformedAnswer(f"not a JSON object, even after one repair ({again})") from None
        self._cache.put({key: json.dumps({"answer": answer, "usage": list(used)}).encode()})
        return answer

    def _post(self, payload: dict) -> tuple[str, tuple[int, int]]:
        """One completion, retried with backoff on timeouts, lost connections, 429 and 5xx (honouring a short
        Retry-After). Refuses to start once the token budget is spent."""
        if self.usage.tokens >= self.budget:
            raise BudgetExceeded(f"the run's LLM token budget ({self.budget:,}) is spent")
        url = f"{self.endpoint.base_url}/chat/completions"
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)))
            started = time.perf_counter()
            try:
                r = self._http.post(url, json=payload)
            except httpx.TimeoutException:
                last = f"no answer within {self.endpoint.timeout:g} s"
                continue
            except httpx.TransportError as exc:
                last = f"cannot reach {self.endpoint.host}: {type(exc).__name__}"
                continue
            finally:
                self.usage.seconds += time.perf_counter() - started
                self.usage.calls += 1
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}"
                wait = r.headers.get("retry-after", "")
                if wait.isdigit() and attempt + 1 < self.attempts:
                    self.sleep(min(30.0, float(wait)))
                continue
            if r.status_code >= 400:
                raise LLMError(f"HTTP {r.status_code} from {self.endpoint.host}: {r.text[:200]}")
            try:
                body = r.json()
                content = body["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                raise LLMError(f"not a chat-completions answer from {self.endpoint.host}") from None
            usage = body.get("usage") or {}
            used = (int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
            self.usage.prompt_tokens += used[0]
            self.usage.completion_tokens += used[1]
            return content, used
        raise LLMError(f"{last} after {self.attempts} attempts")


def _parse(content: str) -> dict:
    text = _FENCE.sub("", content.strip())
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value
