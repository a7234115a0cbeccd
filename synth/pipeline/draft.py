"""Optional LLM drafting that fails closed: titles, theme summaries, section overviews and minority statements
written by a language model from the evidence synth already chose, each kept only if code can check it.

For every drafted text, in order (the first failure drops it, with its reason recorded in
`metadata.drafting.dropped`, and the extractive text stays):
1. it cites at least one evidence id, and only ids it was given;
2. words it puts in quotation marks are a verbatim span of a cited segment, else the marks go (a paraphrase is
   never dressed as a quote);
3. its length suits what it is (a title of 2-20 words, a sentence of at most 60);
4. its cosine with the mean of what it cites is at least `draft_min_support` (0.5 by default);
5. the entailment judge (the same model, a separate call with its own prompt) says the sources support every
   claim in it.
Kept texts are marked as drafted everywhere (`kind: "drafted"`, `drafted_by`), never shown in quotation marks.
An endpoint that is down, or a spent token budget, ends drafting with a warning; the run still succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from string import Template

import numpy as np

from synth.config import SynthConfig
from synth.llm import BudgetExceeded, ChatClient, Endpoint, LLMError, MalformedAnswer, remote_warning
from synth.pipeline.cluster import unit
from synth.schema import (
    Citation,
    DraftDropped,
    DraftedText,
    Drafting,
    MinorityView,
    Section,
    Segment,
    SummarySentence,
    Synthesis,
    Theme,
)

PROMPT_VERSION = "v1"
EVIDENCE_CHARS = 400  # of each segment shown to the model: bounds the prompt
_QUOTED = re.compile(r"[\u201c\"]([^\u201d\"]{1,500})[\u201d\"]")
_WORD = re.compile(r"\w+")
_TITLE = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "string"}}},
    "required": ["title", "evidence"],
}  # noqa: E501
_STATEMENT = {
    "type": "object",
    "properties": {"text": {"type": "string"}, "evidence": {"type": "array", "items": {"type": "string"}}},
    "required": ["text", "evidence"],
}  # noqa: E501
_SENTENCES = {
    "type": "object",
    "properties": {"sentences": {"type": "array", "items": _STATEMENT}},
    "required": ["sentences"],
}  # noqa: E501
JUDGE_SCHEMA = {"type": "object", "properties": {"supported": {"type": "boolean"}}, "required": ["supported"]}

Embed = Callable[[list[str]], np.ndarray]


def prompt(name: str) -> Template:
    """A versioned prompt template shipped in the package (synth/prompts/NAME.v1.txt)."""
    return Template(resources.files("synth").joinpath("prompts", f"{name}.{PROMPT_VERSION}.txt").read_text("utf-8"))


def evidence_text(texts: dict[str, str]) -> str:
    """Evidence as the prompts show it: one '[id] text' line each, bounded in length."""
    return "\n".join(f"[{eid}] {text[:EVIDENCE_CHARS]}" for eid, text in texts.items())


def judge_message(quotes: list[str], sentence: str) -> list[dict[str, str]]:
    """The entailment judge's request for a sentence and what it cites (drafted, or a reviewer's wording)."""
    evidence = evidence_text({f"e{k}": q for k, q in enumerate(quotes, start=1)})
    return [{"role": "user", "content": prompt("judge").safe_substitute(evidence=evidence, sentence=sentence)}]


class Drafter:
    """Drafts and checks; records what it kept and dropped in `report`."""

    def __init__(self, client: ChatClient, report: Drafting, embed: Embed, min_support: float):
        self.client, self.report, self.embed, self.min_support = client, report, embed, min_support
        self.by = f"{client.endpoint.model} ({PROMPT_VERSION})"

    def evidence_block(self, evidence: dict[str, Segment]) -> str:
        return evidence_text({eid: seg.text for eid, seg in evidence.items()})

    def ask(self, name: str, schema: dict, max_tokens: int, scope: str, part: str, **values: str) -> dict | None:
        """The model's JSON answer; None (recorded as dropped) when this one answer stays malformed."""
        text = prompt(name).safe_substitute(**values)
        try:
            return self.client.complete_json([{"role": "user", "content": text}], schema, max_tokens)
        except MalformedAnswer as exc:
            what = "the judge's answer" if name == "judge" else "the answer"
            self.report.dropped.append(DraftDropped(scope=scope, part=part, text="", reason=f"{what} was {exc}"))
            return None

    def check(
        self, scope: str, part: str, text: object, cited: object, evidence: dict[str, Segment], max_words: int
    ) -> DraftedText | None:
        """The checks of the module docstring; None (and a record of why) when the text fails one."""

        def drop(reason: str) -> None:
            self.report.dropped.append(DraftDropped(scope=scope, part=part, text=str(text)[:1000], reason=reason))

        if not isinstance(text, str) or not text.strip():
            return drop("empty or not text")
        ids = [c for c in cited if isinstance(c, str)] if isinstance(cited, list) else []
        if not ids:
            return drop("cites no evidence")
        unknown = [c for c in ids if c not in evidence]
        if unknown:
            return drop(f"cites evidence it was not given: {', '.join(unknown[:5])}")
        ids = list(dict.fromkeys(ids))
        segs = [evidence[c] for c in ids]
        text = " ".join(text.split())
        for m in list(_QUOTED.finditer(text)):
            if not any(m.group(1) in s.text for s in segs):  # a paraphrase in quotation marks: the marks go
                text = text.replace(m.group(0), m.group(1))
        n_words = len(_WORD.findall(text))
        if not 2 <= n_words <= max_words:
            return drop(f"{n_words} words (wanted 2 to {max_words})")
        vectors = self.embed([text, *[s.text for s in segs]])
        support = round(float(vectors[0] @ unit(vectors[1:].mean(axis=0))), 4)
        if support < self.min_support:
            return drop(f"too far from what it cites (similarity {support:.2f} < {self.min_support})")
        cited_block = self.evidence_block(dict(zip(ids, segs, strict=True)))
        verdict = self.ask("judge", JUDGE_SCHEMA, 20, scope, part, evidence=cited_block, sentence=text)
        if verdict is None:
            return None
        if verdict.get("supported") is not True:
            return drop("the entailment judge found a claim the cited contributions do not support")
        self.report.kept += 1
        citations = [Citation.of(s) for s in segs]
        return DraftedText(text=text, citations=citations, support=support, judged="supported", drafted_by=self.by)

    def title(self, theme: Theme, evidence: dict[str, Segment], question: str) -> None:
        answer = self.ask(
            "title", _TITLE, 60, theme.id, "title", evidence=self.evidence_block(evidence), question=question
        )
        if answer is None:
            return
        drafted = self.check(theme.id, "title", answer.get("title"), answer.get("evidence"), evidence, 20)
        if drafted is not None:
            theme.drafted_title = drafted

    def sentences(self, scope: str, part: str, name: str, evidence: dict[str, Segment], question: str) -> list:
        answer = self.ask(name, _SENTENCES, 300, scope, part, evidence=self.evidence_block(evidence), question=question)
        if answer is None:
            return []
        items = answer.get("sentences") if isinstance(answer.get("sentences"), list) else []
        if not items:
            self.report.dropped.append(
                DraftDropped(scope=scope, part=part, text=str(answer)[:1000], reason="no sentences")
            )
        out = []
        for item in items[:5]:  # the prompt asks for 2 or 3
            item = item if isinstance(item, dict) else {}
            drafted = self.check(scope, part, item.get("text"), item.get("evidence"), evidence, 60)
            if drafted is not None:
                out.append(
                    SummarySentence(
                        text=drafted.text,
                        citations=drafted.citations,
                        kind="drafted",
                        support=drafted.support,
                        drafted_by=drafted.drafted_by,
                        judged=drafted.judged,
                    )
                )
        return out

    def statement(self, view: MinorityView, evidence: dict[str, Segment], question: str) -> None:
        block = self.evidence_block(evidence)
        answer = self.ask("statement", _STATEMENT, 80, view.id, "statement", evidence=block, question=question)
        if answer is None:
            return
        drafted = self.check(view.id, "statement", answer.get("text"), answer.get("evidence"), evidence, 30)
        if drafted is not None:
            view.drafted_statement = drafted


def evidence_for(segment_ids: list[str], first: list[str], segs: dict[str, Segment], n: int) -> dict[str, Segment]:
    """At most n segments, ids e1..en: those in `first` (representatives), then members spread evenly through
    the theme (a deterministic sample of long themes)."""
    chosen = [i for i in dict.fromkeys(first) if i in segs][:n]
    rest = [i for i in segment_ids if i not in set(chosen)]
    if rest and len(chosen) < n:
        step = max(1, len(rest) // (n - len(chosen)))
        chosen += rest[::step][: n - len(chosen)]
    return {f"e{k}": segs[i] for k, i in enumerate(chosen, start=1)}


def _segment_of(citation: Citation, by_contribution: dict[str, list[Segment]]) -> str | None:
    """The passage a citation points into (its contribution's passages only, not every passage)."""
    return next(
        (x.id for x in by_contribution.get(citation.contribution_id, []) if x.start <= citation.start < x.end), None
    )


def draft(s: Synthesis, config: SynthConfig, embed: Embed, cache_dir, progress=None) -> dict[str, float]:  # noqa: ANN001
    """Draft into `s` in place (see the module docstring); returns the LLM's usage for timings.json."""
    endpoint = Endpoint.of(config)
    if endpoint is None:
        s.metadata.drafting = Drafting(
            model="", base_url="", loopback=True, prompt_version=PROMPT_VERSION,
            warnings=["Drafting was asked for but no endpoint is configured (set SYNTH_LLM_BASE_URL and "
                      "SYNTH_LLM_MODEL, or llm_base_url and llm_model): the synthesis is extractive only."],
        )  # fmt: skip
        return {}
    report = Drafting(
        model=endpoint.model, base_url=endpoint.base_url, loopback=endpoint.loopback, prompt_version=PROMPT_VERSION
    )
    if (warning := remote_warning(endpoint)) is not None:
        report.warnings.append(warning)
    client = ChatClient(endpoint, config.llm_token_budget or 200_000, cache_dir, seed=config.seed)
    drafter = Drafter(client, report, embed, 0.5 if config.draft_min_support is None else config.draft_min_support)
    n = config.llm_evidence_segments or 12
    segs = {x.id: x for x in s.segments}
    all_segs: dict[str, list[Segment]] = {}
    for x in s.segments:
        all_segs.setdefault(x.contribution_id, []).append(x)
    try:
        for q_no, sec in enumerate(s.sections):
            question = sec.question or "(no question given)"
            _draft_section(drafter, sec, q_no, question, segs, all_segs, n, progress)
    except BudgetExceeded as exc:
        report.warnings.append(f"Drafting stopped: {exc}; the rest of the synthesis is extractive.")
    except LLMError as exc:
        report.warnings.append(f"Drafting stopped, the model was not usable ({exc}); the rest is extractive.")
    finally:
        client.close()
    report.prompt_tokens, report.completion_tokens = client.usage.prompt_tokens, client.usage.completion_tokens
    s.metadata.drafting = report
    u = client.usage
    return {"llm_seconds": round(u.seconds, 3), "llm_calls": u.calls, "llm_cached": u.cached, "llm_tokens": u.tokens}


def _draft_section(
    drafter: Drafter,
    sec: Section,
    q_no: int,
    question: str,
    segs: dict[str, Segment],
    all_segs: dict[str, list[Segment]],
    n: int,
    progress,  # noqa: ANN001
) -> None:
    themes = [t for t in sec.themes]
    for k, theme in enumerate(themes, start=1):
        first = [i for r in theme.representatives if (i := _segment_of(r, all_segs))]
        evidence = evidence_for(theme.segment_ids, first, segs, n)
        drafter.title(theme, evidence, question)
        if theme.parent_id is None:
            drafted = drafter.sentences(theme.id, "summary", "summary", evidence, question)
            summary = next((x for x in sec.summaries if x.scope == theme.id), None)
            if summary is not None and drafted:
                summary.sentences[1:1] = drafted  # after the counted sentence, before the verbatim quotes
        if progress:
            progress(f"draft q{q_no + 1}", k, len(themes))
    tops = [t for t in sec.themes if t.parent_id is None]
    overview_evidence: dict[str, Segment] = {}
    for t in tops[:n]:
        sid = _segment_of(t.title_citation, all_segs) if t.title_citation else None
        sid = sid or (t.segment_ids[0] if t.segment_ids else None)
        if sid:
            overview_evidence[f"e{len(overview_evidence) + 1}"] = segs[sid]
    overview = next((x for x in sec.summaries if x.scope == "overview"), None)
    if overview is not None and overview_evidence:
        drafted = drafter.sentences(f"overview q{q_no + 1}", "overview", "overview", overview_evidence, question)
        overview.sentences[1:1] = drafted
    for view in sec.minority_views:
        if view.segment_ids:
            drafter.statement(view, evidence_for(view.segment_ids, [], segs, n), question)
