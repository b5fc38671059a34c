"""HTML rendering: Jinja templates with autoescaping everywhere, numbers formatted one way,
strategy code highlighted by Pygments (which escapes it) and Markdown notes rendered without raw
HTML and then sanitised by nh3."""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

CODE_CLASS = "code"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tracker.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=number,
        pct=percent,
        size=size,
        js=as_json,
        code=highlight,
        diff=highlight_diff,
        markdown=markdown,
        when=when,
        pick=pick,
        flat=flat,
    )
    env.globals.update(query=query_string)
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def number(value: Any, digits: int = 4) -> str:
    """A number as people read it: 4 significant digits, - for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}g}"
    return str(value)


def pick(value: Any, key: str) -> Any:
    """The leaf of nested dicts at a dotted key (a key with dots of its own is tried first)."""
    if not isinstance(value, dict):
        return None
    if key in value:
        return value[key]
    head, _, rest = key.partition(".")
    return pick(value.get(head), rest) if rest else None


def flat(value: Any) -> list[tuple[str, Any]]:
    """A dict's leaves by dotted key, for key-value tables."""
    from tracker.reports.analysis import flat as leaves

    return list(leaves(value).items()) if isinstance(value, dict) else []


def size(n: int) -> str:
    """A byte count as people read it: 900 B, 12.3 KiB, 4.0 MiB."""
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def when(value: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    return "-" if not value else value[:19].replace("T", " ")


def as_json(value: Any) -> str:
    """A value as indented JSON text (escaped by the template like any text)."""
    return json.dumps(value, indent=2, sort_keys=False, default=str, allow_nan=True, ensure_ascii=False)


def highlight(code: str | None) -> Markup:
    """Strategy code as highlighted HTML. Pygments escapes every character of the source."""
    from pygments import highlight as pygments_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    if not code:
        return Markup("")
    return Markup(pygments_highlight(code, PythonLexer(), HtmlFormatter(cssclass=CODE_CLASS)))  # noqa: S704


def highlight_diff(text: str | None) -> Markup:
    """A unified diff as highlighted HTML (Pygments' diff lexer, which escapes every character)."""
    from pygments import highlight as pygments_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer

    if not text:
        return Markup("")
    return Markup(pygments_highlight(text, DiffLexer(), HtmlFormatter(cssclass=CODE_CLASS)))  # noqa: S704


@cache
def code_css() -> str:
    from pygments.formatters import HtmlFormatter

    return str(HtmlFormatter(cssclass=CODE_CLASS, style="default").get_style_defs(f".{CODE_CLASS}"))


def markdown(text: str | None) -> Markup:
    """Markdown notes as HTML: raw HTML in the source is not rendered, and the result is
    sanitised (nh3: an allow-list of tags and attributes, no scripts, no event handlers, no
    javascript: links)."""
    import nh3
    from markdown_it import MarkdownIt

    if not text:
        return Markup("")
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return Markup(nh3.clean(html, link_rel="noopener noreferrer nofollow"))  # noqa: S704


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """`params` with `changes` applied (None removes a key), as ?a=1&b=2."""
    merged = {**params, **changes}
    pairs: list[tuple[str, Any]] = []
    for key, value in merged.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs += [(key, v) for v in value]
        else:
            pairs.append((key, value))
    return "?" + urlencode(pairs) if pairs else "?"
