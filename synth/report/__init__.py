"""Render a Synthesis as a report a secretariat can circulate: HTML (self-contained) and Markdown."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader
from markupsafe import Markup

from synth.schema import Synthesis

# The characters that make emphasis, code, links, images and table cells inline. Values are never printed at a
# line's start and their line breaks are folded, so block syntax (headings, lists, quotes) cannot start.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def html_environment(loader: BaseLoader) -> Environment:
    """The one way to make a Jinja2 environment for HTML here: autoescape is on for every template, whatever its
    file name (select_autoescape keys on the extension, and ours end in .j2), so participant text, ids, group
    names, labels and file names can never become markup. Trusted markup must be wrapped in Markup explicitly."""
    return Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def markdown_escape(value: Any) -> Any:
    """Make a value print as itself in Markdown: backslash-escape Markdown's punctuation and fold line breaks.
    Markup (a macro's output, or text we built) passes untouched; HTML's own characters are then escaped by
    autoescape, which Markdown renders back as the literal characters."""
    if value is None or isinstance(value, Markup | int | float):
        return value
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def markdown_environment(loader: BaseLoader) -> Environment:
    """Markdown renderers pass raw HTML through, and a participant's ``[x](javascript:…)`` would become a link:
    every printed value is HTML-escaped (autoescape) and Markdown-escaped (finalize), by construction."""
    env = html_environment(loader)
    env.finalize = markdown_escape
    return env


@cache
def _env(markdown: bool) -> Environment:
    loader = PackageLoader("synth", "report/templates")
    return markdown_environment(loader) if markdown else html_environment(loader)


@cache
def report_css() -> tuple[Markup, str]:
    """The report's stylesheet and its CSP source: the HTML report is one self-contained file, so its style is
    inline, allowed by hash rather than by 'unsafe-inline'."""
    css = files("synth").joinpath("report/templates/report.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return Markup(css), f"'sha256-{digest}'"


def report_csp() -> str:
    """The Content-Security-Policy an HTML report needs: no script, no fetch, its own style only."""
    return f"default-src 'none'; style-src {report_css()[1]}; img-src data:; base-uri 'none'; form-action 'none'"


def report_headers() -> dict[str, str]:
    """Headers for serving a report over HTTP. A report is a document, not an application: no script, no
    same-origin powers (CSP sandbox), and only our own report preview may frame it."""
    return {
        "Content-Security-Policy": report_csp() + "; sandbox; frame-ancestors 'self'",
        "X-Frame-Options": "SAMEORIGIN",
    }


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
        "css": report_css()[0],
        "csp": report_csp(),
    }


def render_html(synthesis: Synthesis, timings: dict[str, float] | None = None, title: str = "Synthesis") -> str:
    return _env(False).get_template("report.html.j2").render(**_context(synthesis, timings, title))


def render_markdown(synthesis: Synthesis, timings: dict[str, float] | None = None, title: str = "Synthesis") -> str:
    """Quotes need no escaping in Markdown text (the template puts no participant text in an attribute), so
    they are given back as themselves for people who read the file raw; < > & stay escaped."""
    text = _env(True).get_template("report.md.j2").render(**_context(synthesis, timings, title))
    return text.replace("&#39;", "'").replace("&#34;", '"')
