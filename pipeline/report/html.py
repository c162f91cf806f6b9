"""Markdown -> the self-contained ``index.html`` (markdown-it-py; images embedded, no scripts, no fetch)."""

from __future__ import annotations

import base64
import html
import posixpath
import re
from collections import Counter
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipeline.report.document import slug

# A wide table scrolls sideways on a screen (display:block; overflow-x:auto); on paper a scroll box
# is cut at the page edge, so in print (and on narrow screens) tables go back to display:table at
# the page width and their cells wrap, long paths and numbers included.
CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#1f2328}
h1,h2,h3,h4{line-height:1.25;margin-top:1.6em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.3em .7em;text-align:left;vertical-align:top}th{background:#f6f8fa}
tr:nth-child(even) td{background:#fbfcfd}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f2f4f6;padding:.1em .3em;border-radius:4px}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;border-radius:6px}pre code{background:none;padding:0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#59636e;font-size:13px}blockquote{color:#59636e;border-left:.25em solid #d0d7de;margin:0;padding:0 1em}
@media print,(max-width:50em){body{max-width:none;margin:0;padding:0}table{display:table;width:100%}
th,td{overflow-wrap:anywhere;padding:.2em .35em}pre{white-space:pre-wrap;overflow-wrap:anywhere}}
@media print{body{font-size:11px}code{font-size:10px}figure,tr{break-inside:avoid}h2,h3,h4{break-after:avoid}}
""".strip()


def _plain_text(inline: Token) -> str:
    """The text of an inline token without its markup (for heading ids)."""
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))


def markdown_to_html(text: str, image_src) -> str:
    """Markdown -> HTML with markdown-it-py (CommonMark plus tables; raw HTML is escaped).

    Two things on top: every image's ``src`` goes through ``image_src`` (a data URI; None
    leaves the text ``[missing image: <alt>]`` instead), and every heading gets an id,
    :func:`slug` of its text, made unique with ``-1``, ``-2`` ... as GitHub does, so the
    page's navigation reaches the same anchors as the Markdown file's.
    """
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    seen: Counter[str] = Counter()
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            base = slug(_plain_text(tokens[i + 1]))
            token.attrSet("id", base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
        if token.type != "inline" or not token.children:
            continue
        for j, child in enumerate(token.children):
            if child.type != "image":
                continue
            src = image_src(str(child.attrGet("src")))
            if src:
                child.attrSet("src", src)
            else:
                missing = Token("text", "", 0)
                missing.content = f"[missing image: {child.content}]"
                token.children[j] = missing
    return md.renderer.render(tokens, md.options, {})


MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml"}


def render_html(markdown: str, out_dir: str, root: Path, title: str = "cnn-pipeline results") -> str:
    """``markdown`` (links relative to ``<root>/<out_dir>``) as one HTML file: images inlined as data URIs."""

    def image_src(target: str) -> str | None:
        if re.match(r"[a-z]+:", target):
            return None
        # normalised before touching the disk: <out_dir> itself need not exist yet
        file = root / posixpath.normpath(posixpath.join(out_dir, target))
        if not file.is_file() or file.suffix.lower() not in MIME:
            return None
        return f"data:{MIME[file.suffix.lower()]};base64," + base64.b64encode(file.read_bytes()).decode("ascii")

    body = markdown_to_html(markdown, image_src)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing may be fetched: images are data: URIs, the style is inline, there is no script.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
