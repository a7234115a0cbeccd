"""The stages in order, nothing else: run(contributions) -> Synthesis."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.config import SynthConfig, default_cache_dir
from synth.formats import LoadedInput
from synth.pipeline.breakdown import breakdowns
from synth.pipeline.cluster import cluster
from synth.pipeline.embed import embed_texts
from synth.pipeline.label import SectionData, label_themes
from synth.pipeline.minority import find_minority_views
from synth.pipeline.prepare import PreparedCorpus, embedding_texts, normalise, prepare
from synth.pipeline.summarize import summarize
from synth.pipeline.verify import verify
from synth.provenance import coverage, metadata
from synth.schema import Code, Section, Synthesis

Progress = Callable[[str, int, int], None]


@dataclass
class RunResult:
    """The Synthesis (deterministic) and the wall times per stage (not, since they vary)."""

    synthesis: Synthesis
    timings: dict[str, float] = field(default_factory=dict)


class Laps:
    """Wall time per stage (added up when a stage recurs, e.g. per section), reported to `progress`."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress
        self.clock = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - self.clock, 3)
        self.clock = now
        if self.progress:
            self.progress(stage, 1, 1)


def embed_prepared(
    prepared: PreparedCorpus, config: SynthConfig, cache: Path | None, progress: Progress | None = None
) -> np.ndarray:
    """One unit vector per segment, of what it is embedded as (see embedding_texts)."""
    by_id = {c.id: c for c in prepared.contributions}
    texts = embedding_texts(
        [s.text for s in prepared.segments],
        [by_id[s.contribution_id].question for s in prepared.segments],
        config.shared_phrase_share,
        cache,
    )
    return embed_texts(texts, cache, config.batch_size, progress, config.encoder)


def section_data(
    prepared: PreparedCorpus, vectors: np.ndarray, config: SynthConfig, cache: Path | None
) -> list[SectionData]:
    """The segments of each question, in order of first appearance; ids get a `q1-` prefix when there are
    several questions."""
    by_id = {c.id: c for c in prepared.contributions}
    questions = list(dict.fromkeys(by_id[s.contribution_id].question for s in prepared.segments))
    out = []
    for q_no, question in enumerate(questions, start=1):
        idx = np.array([i for i, s in enumerate(prepared.segments) if by_id[s.contribution_id].question == question])
        out.append(
            SectionData(
                question=question,
                prefix=f"q{q_no}-" if len(questions) > 1 else "",
                segments=[prepared.segments[i] for i in idx],
                vectors=vectors[idx],
                contributions=by_id,
                duplicates=prepared.duplicates,
                lemmas=prepared.lemmas,
                cache=cache,
                embed=lambda texts: embed_texts(
                    [normalise(x) for x in texts], cache, config.batch_size, runtime=config.encoder
                ),
            )
        )
    return out


def build_section(
    data: SectionData, config: SynthConfig, lap: Callable[[str], None], codebook: list[Code] | None = None
) -> Section:
    """One question's themes, minority views, summaries and breakdowns (and its coding against `codebook`, when
    one is given); `lap(stage)` after each stage."""
    clustering = cluster(data.vectors, config, data.cache)
    lap("cluster")
    themes = label_themes(data, clustering, config)
    lap("label")
    unassigned = np.flatnonzero(clustering.labels < 0)
    views = find_minority_views(data, themes, unassigned, config)
    lap("minority")
    summaries = summarize(data, themes, views, [data.segments[i] for i in unassigned])
    lap("summarize")
    coding = None
    if codebook:
        from synth.pipeline.code import code_section

        coding = code_section(data, codebook, config)
        lap("code")
    return Section(
        coding=coding,
        question=data.question,
        n_contributions=len({s.contribution_id for s in data.segments}),
        n_participants=len({data.participant(s.contribution_id) for s in data.segments}),
        themes=themes,
        minority_views=views,
        summaries=summaries,
        unassigned_segment_ids=[data.segments[i].id for i in unassigned],
        groups=data.groups(),
        breakdowns=breakdowns(data, themes, config),
        parameters=clustering.params,
    )


def run(
    loaded: LoadedInput,
    config: SynthConfig | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None | bool = True,
    codebook: list[Code] | None = None,
) -> RunResult:
    """Ingested input -> verified Synthesis. cache_dir: True = default cache, None/False = no cache."""
    config = config or SynthConfig()
    cache = default_cache_dir() if cache_dir is True else (cache_dir or None)
    lap = Laps(progress)

    prepared = prepare(loaded.contributions, loaded.excluded, config, progress, cache)
    lap("prepare")
    vectors = embed_prepared(prepared, config, cache, progress)
    lap("embed")
    all_data = section_data(prepared, vectors, config, cache)
    sections = []
    for q_no, data in enumerate(all_data, start=1):
        sections.append(build_section(data, config, lap, codebook))
        if progress:
            progress("sections", q_no, len(all_data))

    synthesis = Synthesis(
        metadata=metadata(loaded, config, cache),
        contributions=prepared.contributions,
        segments=prepared.segments,
        sections=sections,
        excluded=prepared.excluded,
        coverage=coverage(prepared.contributions, prepared.segments, prepared.excluded, sections),
    )
    usage: dict[str, float] = {}
    if config.draft:
        from synth.pipeline.draft import draft

        usage = draft(synthesis, config, all_data[0].embed if all_data else None, cache, progress)
        lap("draft")
    verify(synthesis, config.min_support)
    lap("verify")
    return RunResult(synthesis, {**lap.timings, **usage})
