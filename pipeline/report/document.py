"""The report under construction: Markdown blocks, headings with their anchors, links rebased onto ``report/``."""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.report.inputs import OUT, REPORTS, Inputs


def link(rel: str) -> str:
    """The link from ``report/`` to ``reports/<rel>``: ``tdm_max/eval/x.png`` -> ``../reports/tdm_max/eval/x.png``."""
    return posixpath.relpath(posixpath.normpath(posixpath.join(REPORTS, rel)), OUT)


def ref(rel: str) -> str:
    """A Markdown link to ``reports/<rel>`` labelled with its path from the repository root."""
    return f"[`{posixpath.normpath(posixpath.join(REPORTS, rel))}`]({link(rel)})"


def md_escape(text: Any) -> str:
    """Make a value safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- blocks
# The report is a list of these; each renders itself as Markdown (the HTML page is that
# Markdown through markdown-it-py, so both say the same).


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # inline Markdown

    def markdown(self) -> str:
        return f"{'#' * self.level} {self.text}"


@dataclass(frozen=True)
class Paragraph:
    text: str  # inline Markdown (may hold a fenced code block the answers write)

    def markdown(self) -> str:
        return self.text


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]

    def markdown(self) -> str:
        return "\n".join(f"- {item}" for item in self.items)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(md_escape(h) for h in self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Code:
    text: str

    def markdown(self) -> str:
        return "```\n" + self.text.rstrip("\n") + "\n```"


@dataclass(frozen=True)
class Figure:
    caption: str
    target: str  # relative to report/

    def markdown(self) -> str:
        return f"![{self.caption}]({self.target})"


@dataclass(frozen=True)
class Note:
    """Why something is not shown (a missing file, a figure a stage does not write)."""

    text: str

    def markdown(self) -> str:
        return f"> {self.text}"


@dataclass(frozen=True)
class Included:
    """A Markdown file another stage wrote, headings shifted and links rebased (:meth:`Markdown.include_markdown`)."""

    markdown_text: str

    def markdown(self) -> str:
        return self.markdown_text


Block = Heading | Paragraph | Bullets | Table | Code | Figure | Note | Included


@dataclass
class Markdown:
    """The report under construction: a list of blocks plus the images it links."""

    inputs: Inputs
    blocks: list[Block] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # link targets, relative to report/
    anchors: Counter[str] = field(default_factory=Counter)  # heading slugs so far, for unique ids
    answer_links: dict[str, list[str]] = field(default_factory=dict)  # assignment key -> links to its answers

    def heading(self, level: int, text: str) -> str:
        """Add a heading; return its anchor (the id GitHub and :func:`markdown_to_html` give it)."""
        self.blocks.append(Heading(level, text))
        return self._anchor(text)

    def _anchor(self, text: str) -> str:
        base = slug(text)
        anchor = base if not self.anchors[base] else f"{base}-{self.anchors[base]}"
        self.anchors[base] += 1
        return anchor

    def para(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def bullets(self, items: Iterable[str]) -> None:
        items = tuple(items)
        if items:
            self.blocks.append(Bullets(items))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(Table(tuple(str(h) for h in header), tuple(tuple(str(c) for c in row) for row in rows)))

    def code(self, text: str) -> None:
        self.blocks.append(Code(text))

    def missing(self, rel: str, what: str | None = None) -> None:
        self.blocks.append(Note(f"{what or f'`reports/{rel}`'}: {self.inputs.missing(rel)}."))

    def json(self, rel: str, what: str) -> Any | None:
        """``reports/<rel>`` parsed, or None after noting in the report why it is missing (``what`` names it)."""
        value = self.inputs.json(rel)
        if value is None:
            self.missing(rel, what)
        return value

    def figure(self, rel: str, caption: str) -> None:
        """Link ``reports/<rel>`` if it exists, else say why it is not there."""
        if self.inputs.exists(rel):
            self.images.append(link(rel))
            self.blocks.append(Figure(caption, link(rel)))
            return
        folder = self.inputs.path(rel).parent
        stage = self.inputs.stage_for(rel)
        a_stage = stage is not None and not stage.startswith("!")
        if a_stage and folder.is_dir() and any(p.is_file() for p in folder.iterdir()):
            # The stage that writes it ran and wrote its other files here, but not this one.
            self.blocks.append(Note(f"{caption}: `reports/{rel}` is not written by `{stage}` for this variant."))
        else:
            self.missing(rel, caption)

    def include_markdown(self, rel: str, level: int, title: str | None = None) -> None:
        """A Markdown file another stage wrote, its headings shifted, its links rebased onto report/.

        ``title`` (if given) is written at ``level`` and the file's headings are shifted below it,
        unless the file starts with a heading that already names it (contains ``title``): then that
        heading takes its place at ``level``. Without ``title`` the file's top heading goes to
        ``level``. A missing file: ``title`` and why it is missing.
        """
        text = self.inputs.text(rel)
        lines = text.strip("\n").splitlines() if text is not None else []
        named = bool(lines) and bool(_HEADING.match(lines[0])) and _plain(title or "") in _plain(lines[0].lstrip("#"))
        if title is not None and not named:
            self.heading(level, title)
            level += 1
        if text is None:
            self.missing(rel)
            return
        if not lines:
            self.para(f"`{REPORTS}/{rel}` is empty.")
            return
        levels, fenced = [], False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and (heading := _HEADING.match(line)):
                levels.append(len(heading.group(1)))
        shift = level - min(levels) if levels else 0
        base = posixpath.dirname(rel)
        out, fenced = [], False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced:
                heading = _HEADING.match(line)
                if heading:
                    line = "#" * max(1, min(6, len(heading.group(1)) + shift)) + line[len(heading.group(1)) :]
                    self._anchor(line.lstrip("#").strip())  # counted, so later ids stay unique
                line = _LINK.sub(lambda m: _rebase(m, base, self), line)
            out.append(line)
        self.blocks.append(Included("\n".join(out)))

    def text(self) -> str:
        return "\n\n".join(block.markdown() for block in self.blocks) + "\n"


_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


_HEADING = re.compile(r"(#{1,6}) ")


def _plain(text: str) -> str:
    """Heading text without code / bold marks, for comparing two headings."""
    return re.sub(r"[`*]", "", text).strip().lower()


def _rebase(match: re.Match, base: str, doc: Markdown) -> str:
    """A relative link of a file under ``reports/<base>/``, made relative to report/."""
    bang, label, target = match.groups()
    if re.match(r"[a-z]+:|#|/", target):
        return match.group(0)
    rel = posixpath.normpath(posixpath.join(base, target))
    if bang:
        if not doc.inputs.exists(rel):
            return f"[missing image: {label}]"
        doc.images.append(link(rel))
    return f"{bang}[{label}]({link(rel)})"


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces -> hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")
