"""A small map of a run: each passage placed by meaning (PCA of its embedding to 2-D), coloured by theme."""

from __future__ import annotations

import hashlib
import re

import numpy as np
from markupsafe import escape

from synth.config import default_cache_dir
from synth.pipeline.embed import embed_texts
from synth.pipeline.prepare import normalise
from synth.schema import Synthesis

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
)


_NUMBERED = re.compile(r"(?:q(\d+)-)?t(\d+)(?:-s(\d+))?$")


def colour_of(theme_id: str) -> str:
    """A theme's colour follows its id, not its rank: after a merge or split the other themes keep theirs."""
    m = _NUMBERED.match(theme_id)
    if m is None:
        return PALETTE[int(hashlib.sha256(theme_id.encode()).hexdigest()[:8], 16) % len(PALETTE)]
    question, number, split = (int(x) if x else 0 for x in m.groups())
    return PALETTE[(number - 1 + 3 * split + 5 * max(0, question - 1)) % len(PALETTE)]


def theme_colours(s: Synthesis) -> dict[str, str]:
    return {t.id: colour_of(t.id) for sec in s.sections for t in sec.themes if t.parent_id is None}


def theme_map(s: Synthesis, width: int = 420, height: int = 300, most: int = 3000) -> str:
    segs = s.segments[:most]
    if len(segs) < 3:
        return "<p>Too few passages for a map.</p>"
    colours = theme_colours(s)
    theme_of = {x: t.id for sec in s.sections for t in sec.themes if t.parent_id is None for x in t.segment_ids}
    title_of = {t.id: t.title or t.label for sec in s.sections for t in sec.themes if t.parent_id is None}
    runtime = str(s.metadata.config.get("encoder", "torch"))  # results made before the ONNX runtime: torch
    vecs = embed_texts([normalise(x.text) for x in segs], default_cache_dir(), runtime=runtime)
    centred = vecs - vecs.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    xy = (xy - xy.min(axis=0)) / np.maximum(xy.max(axis=0) - xy.min(axis=0), 1e-9)
    dots = []
    for seg, (x, y) in zip(segs, xy, strict=True):
        colour = colours.get(theme_of.get(seg.id, ""), "#b0b0b0")
        dots.append(
            f'<circle cx="{8 + x * (width - 16):.1f}" cy="{8 + y * (height - 16):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(title_of.get(theme_of.get(seg.id, ''), 'No theme'))}: #{escape(seg.contribution_id)}"
            "</title></circle>"
        )
    return (
        f'<svg role="img" aria-label="Map of {len(segs)} passages coloured by theme" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect width="{width}" height="{height}" fill="#fafafa"/>{"".join(dots)}</svg>'
    )
