"""Render a Synthesis as a report a secretariat can circulate: HTML (self-contained) and Markdown."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape

from synth.schema import Synthesis, Theme


@cache
def _env(markdown: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("synth", "report/templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False) if not markdown else False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def size_chart(themes: list[Theme], width: int = 640) -> str:
    """Horizontal bars of theme sizes as inline SVG (no script, prints well)."""
    from markupsafe import escape

    top = [t for t in themes if t.parent_id is None]
    if not top:
        return ""
    bar_h, gap, label_w = 18, 6, 260
    most = max(t.n_contributions for t in top)
    height = len(top) * (bar_h + gap)
    rows = []
    for i, t in enumerate(top):
        y = i * (bar_h + gap)
        w = max(1.0, (width - label_w - 60) * t.n_contributions / most)
        rows.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(t.label[:40])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#3b6ea8"><title>{escape(t.label)}: '
            f"{t.n_contributions} contributions</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{t.n_contributions}</text>'
        )
    return (
        f'<svg role="img" aria-label="Theme sizes in contributions" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" font-size="12" font-family="sans-serif">{"".join(rows)}</svg>'
    )


def _context(synthesis: Synthesis, timings: dict[str, float] | None, title: str) -> dict:
    anchors = {c.id: f"c{i + 1}" for i, c in enumerate(synthesis.contributions)}
    excluded = {e.contribution_id: e for e in synthesis.excluded}
    segments = {s.id: s for s in synthesis.segments}
    return {
        "s": synthesis,
        "title": title,
        "timings": timings or {},
        "anchor": anchors,
        "excluded": excluded,
        "segments": segments,
        "contributions": {c.id: c for c in synthesis.contributions},
        "size_chart": size_chart,
    }


def render_html(synthesis: Synthesis, timings: dict[str, float] | None = None, title: str = "Synthesis") -> str:
    return _env(False).get_template("report.html.j2").render(**_context(synthesis, timings, title))


def render_markdown(synthesis: Synthesis, timings: dict[str, float] | None = None, title: str = "Synthesis") -> str:
    return _env(True).get_template("report.md.j2").render(**_context(synthesis, timings, title))
