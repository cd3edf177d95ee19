"""The APA tables as LaTeX: booktabs rules, one file to ``\\input`` and a standalone wrapper.

:func:`tables_latex` gives the body a manuscript ``\\input``s: one ``table`` float per
:class:`~analysis.manuscript.apa.ApaTable` with the number and italic title above (APA style,
through ``\\caption``), ``\\toprule``/``\\midrule``/``\\bottomrule`` only, subheading rows spanning
the table in italics, and the notes in a ``minipage`` under it. It needs the packages
:data:`PACKAGES` in the preamble; :func:`standalone_latex` is a complete document that loads them
and inputs the body, so ``pdflatex tables_standalone.tex`` compiles it as it is. Tables are set
in ``\\footnotesize`` and may be split by the author; nothing depends on the clock.
"""

from __future__ import annotations

import re
from typing import Sequence

from analysis.manuscript.apa import ITALIC_HEADINGS, ApaTable

#: The packages the body needs (booktabs for the rules, caption for APA-style captions) and the
#: wrapper's page. The symbols the tables print (β, χ², →, ×, <) are set in math mode, so the
#: default fonts (Type 1 Computer Modern, in texlive-latex-base) have every glyph and nothing
#: is generated on the fly.
PACKAGES = ("[utf8]{inputenc}", "{booktabs}",
            "[labelfont=bf,textfont=it,singlelinecheck=false,justification=raggedright,"
            "labelsep=newline]{caption}", "[a4paper,margin=1.5cm]{geometry}")

_SPECIAL = {
    "\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\~{}", "^": r"\^{}",
    "<": r"$<$", ">": r"$>$",
    "β": r"$\beta$", "χ": r"$\chi$", "²": r"$^{2}$", "→": r"$\rightarrow$",
    "×": r"$\times$", "–": r"--", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$",
    "Δ": r"$\Delta$", "α": r"$\alpha$", "√": r"$\surd$", "−": r"$-$",
}
_SPECIAL_PATTERN = re.compile("|".join(re.escape(char) for char in _SPECIAL))


def escape(text: str) -> str:
    """Text as LaTeX prints it literally (specials escaped, the tables' symbols in math).

    >>> escape("p adj. < .001 (Holm) & β_1")
    'p adj. $<$ .001 (Holm) \\\\& $\\\\beta$\\\\_1'
    """
    text = _SPECIAL_PATTERN.sub(lambda match: _SPECIAL[match.group(0)], str(text))
    # a minus sign in a number, not a hyphen
    return re.sub(r"(?<![\w-])-(?=\d|\.\d)", "$-$", text)


def _heading(column: str) -> str:
    return rf"\textit{{{escape(column)}}}" if column in ITALIC_HEADINGS else escape(column)


def table_latex(number: int, table: ApaTable) -> str:
    """One table float (see the module docstring). LaTeX numbers the floats itself: ``number``
    is the position in this file, the same as LaTeX's numbering when the file is input first."""
    width = len(table.columns)
    spec = "l" + "c" * (width - 1)
    lines = [
        r"\begin{table}[p]",
        r"\centering",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{2.75pt}",
        rf"\caption{{{escape(table.title)}}}",
        rf"\label{{tab:{table.key}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(_heading(column) for column in table.columns) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(table.rows):
        if row.heading:
            if i:
                lines.append(r"\addlinespace")
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{escape(row.heading)}}}}} \\")
        else:
            lines.append(" & ".join(escape(cell) for cell in row.cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip")
        lines.append(r"\begin{minipage}{\linewidth}\footnotesize")
        for note in table.notes:
            if note.startswith("Note."):
                lines.append(r"\textit{Note.}" + escape(note.removeprefix("Note.")) + r"\par")
            else:
                lines.append(escape(note) + r"\par")
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def tables_latex(tables: Sequence[ApaTable]) -> str:
    """Every table, numbered in order: the file a manuscript ``\\input``s."""
    header = ("% APA-style tables of the alliance-outcome pipeline, from the result tables of "
              "one run.\n% Needs in the preamble: "
              + ", ".join(rf"\usepackage{package}" for package in PACKAGES[1:3]) + ".\n")
    body = "\n".join(table_latex(number, table) for number, table in
                     enumerate(tables, start=1))
    return header + (body or "% No model results in this run.\n")


def standalone_latex(input_name: str, title: str) -> str:
    """A complete document that inputs the tables file ``input_name`` (same folder)."""
    packages = "\n".join(rf"\usepackage{package}" for package in PACKAGES)
    return (f"\\documentclass[11pt]{{article}}\n{packages}\n"
            f"\\title{{{escape(title)}}}\n\\date{{}}\n"
            "\\begin{document}\n\\maketitle\n"
            f"\\input{{{input_name}}}\n"
            "\\end{document}\n")


__all__ = ["PACKAGES", "escape", "standalone_latex", "table_latex", "tables_latex"]
