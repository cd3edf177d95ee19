"""The reviewer report's methods section as a Word document, with its reference list.

The section is the one the report shows: :func:`methods_html` renders the report's own methods
template with the context :func:`analysis.report.methods.methods_context` builds from the result
tables and the study, so the paper's methods and the report's never differ. :func:`methods_document`
turns that HTML into Word content (headings, paragraphs with bold, italic and code runs, bullet
lists, and each table as an APA table) and appends the references of the works the text cites
(:mod:`analysis.manuscript.references`) with APA's hanging indent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from docx.shared import Cm, Pt

from analysis.manuscript.apa import ApaRow, ApaTable
from analysis.manuscript.references import cited_references
from analysis.manuscript.word import add_apa_table, new_document
from analysis.report.inputs import ReportTables
from analysis.report.methods import methods_context
from analysis.report.render import environment, shared_context
from analysis.report.view import ReportView
from analysis.study import ReportSettings

CODE_FONT = "Courier New"


def methods_html(tables: ReportTables, settings: ReportSettings) -> str:
    """The methods section exactly as the reviewer report renders it (HTML)."""
    view = ReportView(settings)
    return environment().get_template("report/methods.html.j2").render(
        **shared_context(view, {}, {}), methods=methods_context(tables, view))


@dataclass
class _Run:
    text: str
    bold: bool = False
    italic: bool = False
    code: bool = False
    line_break: bool = False


@dataclass
class Block:
    """A block of the section: a heading, a paragraph, a list item or a table."""

    kind: str  # "heading1", "heading2", "paragraph", "note", "item", "table"
    runs: list[_Run] = field(default_factory=list)
    table: ApaTable | None = None

    @property
    def text(self) -> str:
        return "".join(run.text if not run.line_break else "\n" for run in self.runs).strip()


class _Reader(HTMLParser):
    """Reads the section's HTML into :class:`Block` s (the report's templates use few tags)."""

    BLOCKS = {"h2": "heading1", "h3": "heading2", "p": "paragraph", "li": "item",
              "summary": "note"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.current: Block | None = None
        self.style = {"bold": 0, "italic": 0, "code": 0}
        self.table: dict[str, Any] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        if tag == "table":
            self.table = {"caption": "", "header": [], "rows": [], "in_head": False}
        elif self.table is not None:
            if tag == "thead":
                self.table["in_head"] = True
            elif tag == "tr":
                self.table["row"] = []
            elif tag in ("td", "th", "caption"):
                self.cell = []
        elif tag in self.BLOCKS:
            kind = self.BLOCKS[tag]
            if tag == "p" and "note" in classes.split():
                kind = "note"
            self.current = Block(kind)
        elif tag in ("strong", "b"):
            self.style["bold"] += 1
        elif tag in ("em", "i"):
            self.style["italic"] += 1
        elif tag == "code" or (tag == "span" and "formula" in classes.split()):
            self.style["code"] += 1
        elif tag == "br" and self.current is not None:
            self.current.runs.append(_Run("", line_break=True))

    def handle_endtag(self, tag: str) -> None:
        if self.table is not None:
            if tag in ("td", "th") and self.cell is not None:
                self.table["row"].append(_squash("".join(self.cell)))
                self.cell = None
            elif tag == "caption" and self.cell is not None:
                self.table["caption"] = _squash("".join(self.cell))
                self.cell = None
            elif tag == "tr":
                target = "header" if self.table["in_head"] else "rows"
                if target == "header":
                    self.table["header"] = self.table["row"]
                else:
                    self.table["rows"].append(self.table["row"])
            elif tag == "thead":
                self.table["in_head"] = False
            elif tag == "table":
                self.blocks.append(Block("table", table=ApaTable(
                    f"methods_{len([b for b in self.blocks if b.kind == 'table']) + 1}",
                    self.table["caption"], tuple(self.table["header"]),
                    tuple(ApaRow(tuple(row)) for row in self.table["rows"]))))
                self.table = None
            return
        if tag in self.BLOCKS and self.current is not None:
            if self.current.text:
                self.blocks.append(self.current)
            self.current = None
        elif tag in ("strong", "b"):
            self.style["bold"] -= 1
        elif tag in ("em", "i"):
            self.style["italic"] -= 1
        elif tag in ("code", "span") and self.style["code"]:
            self.style["code"] -= 1

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
            return
        if self.current is None or self.table is not None:
            return
        text = re.sub(r"\s+", " ", data)
        if not self.current.runs or self.current.runs[-1].line_break:
            text = text.lstrip()
        if text:
            self.current.runs.append(_Run(text, bold=self.style["bold"] > 0,
                                          italic=self.style["italic"] > 0,
                                          code=self.style["code"] > 0))


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def methods_blocks(html: str) -> list[Block]:
    """The section's HTML as blocks (headings, paragraphs, list items, tables)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.blocks


def methods_document(html: str, title: str) -> Any:
    """The methods section (HTML from :func:`methods_html`) as a Word document with references."""
    document = new_document(title)
    table_number = 0
    for block in methods_blocks(html):
        if block.kind == "table" and block.table is not None:
            if block.table.rows:
                table_number += 1
                add_apa_table(document, table_number, block.table)
            continue
        if block.kind == "heading1":
            document.add_heading(block.text, level=1)
            continue
        if block.kind == "heading2":
            document.add_heading(block.text, level=2)
            continue
        paragraph = document.add_paragraph(style="List Bullet" if block.kind == "item" else None)
        for i, run in enumerate(block.runs):
            if run.line_break:
                paragraph.add_run().add_break()
                continue
            text = run.text.rstrip() if i == len(block.runs) - 1 else run.text
            word_run = paragraph.add_run(text)
            word_run.bold = run.bold or None
            word_run.italic = run.italic or (block.kind == "note") or None
            if run.code:
                word_run.font.name = CODE_FONT
                word_run.font.size = Pt(10)
    references = cited_references(html_text(html))
    if references:
        document.add_heading("References", level=1)
        for reference in references:
            paragraph = document.add_paragraph()
            paragraph.paragraph_format.left_indent = Cm(1.27)
            paragraph.paragraph_format.first_line_indent = Cm(-1.27)
            for text, italic in reference.segments():
                paragraph.add_run(text).italic = italic or None
    return document


def html_text(html: str) -> str:
    """The visible text of the HTML (what a reader sees, for finding citations)."""
    return " ".join(block.text if block.kind != "table" or block.table is None
                    else " ".join([block.table.title, *block.table.columns,
                                   *(" ".join(row) for row in block.table.data_rows)])
                    for block in methods_blocks(html))


__all__ = ["Block", "html_text", "methods_blocks", "methods_document", "methods_html"]
