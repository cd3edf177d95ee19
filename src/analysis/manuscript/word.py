"""Word documents (python-docx): APA tables as real Word tables, and saving with fixed bytes.

A table is written as APA 7 sets it: "Table n" in bold, the title in italic title case on the
next line, horizontal rules only (above and below the column headings and below the last row,
no vertical lines), a subheading row spanning the table where a table groups its rows (the
model, the outcome), statistical symbols in italics in the headings, and the notes under the
table, the general one opening with an italic "Note.".

A .docx file is a zip archive whose entries carry the time they were written, and whose core
properties carry creation and modification dates. :func:`save_document` fixes both (the dates to
:data:`FIXED_DATE`, every zip entry to the zip epoch, in the order python-docx writes them), so
the same inputs give the same bytes on every rerun.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from typing import Any, Sequence

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

from analysis.io import atomic_path
from analysis.manuscript.apa import ITALIC_HEADINGS, ApaTable

#: The creation and modification date written into every document (no clock in the output).
FIXED_DATE = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
#: The zip entries' timestamp: the earliest a zip file can hold.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: The document's font: a serif that Word, LibreOffice and the journals' templates all have.
FONT = "Times New Roman"
FONT_SIZE = Pt(11)
AUTHOR = "alliance-outcome pipeline"


def new_document(title: str) -> Any:
    """An empty document in the house style (font, size) with fixed core properties."""
    document = Document()
    normal = document.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = FONT_SIZE
    # East-Asian and complex-script slots too, or Word falls back to the theme font there.
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), FONT)
    properties = document.core_properties
    properties.title = title
    properties.author = AUTHOR
    properties.last_modified_by = AUTHOR
    properties.created = FIXED_DATE
    properties.modified = FIXED_DATE
    properties.last_printed = FIXED_DATE
    properties.revision = 1
    return document


def _border(cell: Any, edge: str, size: int = 8) -> None:
    """A single horizontal rule on one edge of a cell (size in eighths of a point)."""
    properties = cell._tc.get_or_add_tcPr()
    borders = properties.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        properties.append(borders)
    element = OxmlElement(f"w:{edge}")
    element.set(qn("w:val"), "single")
    element.set(qn("w:sz"), str(size))
    element.set(qn("w:space"), "0")
    element.set(qn("w:color"), "000000")
    borders.append(element)


def _no_borders(table: Any) -> None:
    """Remove every table-level border (APA tables have no vertical lines and no grid)."""
    properties = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    properties.append(borders)


def _cell_text(cell: Any, text: str, *, italic: bool = False, bold: bool = False,
               align: Any = None) -> None:
    paragraph = cell.paragraphs[0]
    paragraph.paragraph_format.space_after = Pt(0)
    if align is not None:
        paragraph.alignment = align
    run = paragraph.add_run(text)
    run.italic = italic
    run.bold = bold


def add_apa_table(document: Any, number: int, table: ApaTable) -> Any:
    """Add one APA table (number, title, rules, notes) to ``document``; return the Word table."""
    label = document.add_paragraph()
    label.paragraph_format.keep_with_next = True
    label.paragraph_format.space_after = Pt(0)
    label.add_run(f"Table {number}").bold = True
    title = document.add_paragraph()
    title.paragraph_format.keep_with_next = True
    title.add_run(table.title).italic = True

    width = len(table.columns)
    word_table = document.add_table(rows=1, cols=width)
    word_table.alignment = WD_TABLE_ALIGNMENT.CENTER
    _no_borders(word_table)
    header = word_table.rows[0].cells
    for i, (cell, column) in enumerate(zip(header, table.columns)):
        _cell_text(cell, column, italic=column in ITALIC_HEADINGS,
                   align=WD_ALIGN_PARAGRAPH.LEFT if i == 0 else WD_ALIGN_PARAGRAPH.CENTER)
        _border(cell, "top")
        _border(cell, "bottom")
    for row in table.rows:
        cells = word_table.add_row().cells
        if row.heading:
            merged = cells[0].merge(cells[-1]) if width > 1 else cells[0]
            _cell_text(merged, row.heading, italic=True)
            continue
        for i, (cell, text) in enumerate(zip(cells, row.cells)):
            _cell_text(cell, text,
                       align=WD_ALIGN_PARAGRAPH.LEFT if i == 0 else WD_ALIGN_PARAGRAPH.CENTER)
    for cell in word_table.rows[-1].cells:
        _border(cell, "bottom")

    for note in table.notes:
        paragraph = document.add_paragraph()
        paragraph.paragraph_format.space_before = Pt(3)
        if note.startswith("Note."):
            paragraph.add_run("Note.").italic = True
            paragraph.add_run(note.removeprefix("Note."))
        else:
            paragraph.add_run(note)
    return word_table


def tables_document(tables: Sequence[ApaTable], title: str) -> Any:
    """Every APA table in one document, numbered in order, each starting on its own page."""
    document = new_document(title)
    heading = document.add_paragraph()
    heading.add_run(title).bold = True
    for number, table in enumerate(tables, start=1):
        if number > 1:
            document.add_page_break()
        add_apa_table(document, number, table)
    if not tables:
        document.add_paragraph("No model results in this run.")
    return document


def document_bytes(document: Any) -> bytes:
    """The document as a .docx whose bytes depend on its content only (see module docstring)."""
    raw = io.BytesIO()
    document.save(raw)
    fixed = io.BytesIO()
    with zipfile.ZipFile(raw) as source, zipfile.ZipFile(fixed, "w") as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 0
            target.writestr(info, source.read(entry.filename), compresslevel=6)
    return fixed.getvalue()


def save_document(document: Any, path: str | os.PathLike[str]) -> None:
    """Write ``document`` atomically with fixed bytes (:func:`document_bytes`)."""
    content = document_bytes(document)
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def docx_tables(path: str | os.PathLike[str]) -> list[list[list[str]]]:
    """Every table of a .docx as rows of cell texts (a merged subheading row repeats its text
    in each cell it spans, as python-docx reads it)."""
    document = Document(str(path))
    return [[[cell.text for cell in row.cells] for row in table.rows]
            for table in document.tables]


__all__ = ["FIXED_DATE", "add_apa_table", "document_bytes", "docx_tables", "new_document",
           "save_document", "tables_document"]
