"""Manuscript outputs: every number printed comes from the result tables of the same run.

On small frames: the APA tables, the Word writer (real tables, fixed bytes), the LaTeX writer
(compiled with pdflatex where installed; required in CI with ALLIANCE_REQUIRE_TEX=1), the flow
diagram (counts as published, suppressed cells kept) and the reference list. On the shared
pipeline run: the Word tables opened with python-docx and their cells compared with
``models.csv``; the flow diagram's SVG text compared with ``data_flow.csv``; the methods document
against the report; the journal figures' widths and fonts; the manuscript step rerun in another
folder gives the same bytes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.catalogue import FILES, MANUSCRIPT_FIGURE_FILE
from analysis.manuscript.apa import manuscript_term
from analysis.presentation import analysis_label, model_title
from analysis.report.formatting import format_ci, format_number, format_p

PDFLATEX = shutil.which("pdflatex")
# A test that compiles LaTeX: skipped without pdflatex, required in CI (ALLIANCE_REQUIRE_TEX=1).
needs_tex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get "
                               "install texlive-latex-base texlive-latex-recommended)")

MANUSCRIPT_OUTPUTS = ["manuscript_tables", "manuscript_tables_latex",
                      "manuscript_tables_standalone", "flow_diagram_svg", "flow_diagram_pdf",
                      "manuscript_methods"]


# -- small frames -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def view():
    from analysis.config import check_config
    from analysis.report.view import ReportView
    from analysis.study import resolve_study

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml")
                            .read_text())
    return ReportView(resolve_study(check_config(config)).report)


def small_models() -> pd.DataFrame:
    rows = []
    for outcome in ("phq9", "gad7"):
        for model, terms in (("M2", ["(Intercept)", "alliance_within", "alliance_between_c"]),
                             ("DPM", ["alliance_lagged", "symptom_lagged"])):
            for analysis in ("primary", "completers"):
                for i, term in enumerate(terms):
                    rows.append({
                        "outcome": outcome, "model": model, "analysis": analysis, "term": term,
                        "estimate": -0.123456 * (i + 1), "se": 0.0456 + i / 100,
                        "df": 120.4 if model == "M2" else float("nan"), "t": -2.7,
                        "p": 0.0071 / (i + 1), "p_holm": 0.0142 if term == "alliance_lagged"
                        else float("nan"),
                        "p_bh": 0.03 if term == "alliance_within" else float("nan"),
                        "ci_low": -0.2134, "ci_high": -0.0335, "std_estimate": -0.08,
                        "n_obs": 1234, "n_clients": "<10" if analysis == "completers" else 150,
                        "n_therapists": 12})
    return pd.DataFrame(rows)


def test_fixed_effects_table_prints_models_csv(view):
    from analysis.manuscript.apa import fixed_effects_tables

    models = small_models()
    tables = fixed_effects_tables(models, view)
    assert [table.key for table in tables] == ["fixed_effects_phq9", "fixed_effects_gad7"]
    table = tables[0]
    headings = [row.heading for row in table.rows if row.heading]
    assert headings[0].startswith(model_title("M2")) and "150 clients" in headings[0]
    first = models.iloc[1]  # phq9 M2 primary alliance_within
    assert table.data_rows[1] == ("Within-client alliance", format_number(first.estimate),
                                  format_number(first.se), "[-0.21, -0.0335]", "120.4",
                                  "-2.70", ".004", ".030 (BH)", "-0.0800")


def test_word_tables_are_real_tables_with_fixed_bytes(view, tmp_path):
    import docx

    from analysis.manuscript.apa import manuscript_tables
    from analysis.manuscript.word import (FIXED_DATE, ZIP_EPOCH, docx_tables, save_document,
                                          tables_document)

    empty = pd.DataFrame()
    tables = manuscript_tables(small_models(), empty, empty, empty, empty, view)
    first, second = tmp_path / "a.docx", tmp_path / "b.docx"
    save_document(tables_document(tables, "Tables"), first)
    save_document(tables_document(tables, "Tables"), second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {ZIP_EPOCH}
    document = docx.Document(str(first))
    assert document.core_properties.created == FIXED_DATE
    assert len(document.tables) == len(tables)
    cells = docx_tables(first)
    assert cells[0][0] == list(tables[0].columns)
    assert tuple(cells[0][2]) == tables[0].data_rows[0]
    # APA: no vertical rules; horizontal rules only above and below the headings and at the end
    xml = document.tables[0]._tbl.xml
    assert not re.search(r'<w:(left|right|insideV|start|end) w:val="(?!nil)', xml)
    assert len(re.findall(r'<w:(top|bottom) w:val="single"', xml)) == 3 * len(tables[0].columns)
    paragraphs = [paragraph for paragraph in document.paragraphs if paragraph.text]
    title = next(paragraph for paragraph in paragraphs if paragraph.text == tables[0].title)
    assert all(run.italic for run in title.runs)
    assert any(paragraph.text.startswith("Note.") for paragraph in paragraphs)


@pytest.mark.parametrize("text, latex", [
    ("p < .001 & 50% of b_1", r"p $<$ .001 \& 50\% of b\_1"),
    ("β = -0.12 [-0.20, -0.03]", r"$\beta$ = $-$0.12 [$-$0.20, $-$0.03]"),
    ("χ²(158) → ×", r"$\chi$$^{2}$(158) $\rightarrow$ $\times$"),
    ("DPM-reverse – M2", r"DPM-reverse -- M2"),
])
def test_latex_escapes_what_the_tables_print(text, latex):
    from analysis.manuscript.latex import escape

    assert escape(text) == latex


def compile_latex(folder: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", name],
                          cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.mark.tex
@needs_tex
def test_latex_tables_compile(view, tmp_path):
    from analysis.manuscript.apa import manuscript_tables
    from analysis.manuscript.latex import standalone_latex, tables_latex

    empty = pd.DataFrame()
    tables = manuscript_tables(small_models(), empty, empty, empty, empty, view)
    (tmp_path / "tables.tex").write_text(tables_latex(tables), encoding="utf-8")
    (tmp_path / "doc.tex").write_text(standalone_latex("tables", "Tables & more"),
                                      encoding="utf-8")
    result = compile_latex(tmp_path, "doc.tex")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
    body = (tmp_path / "tables.tex").read_text()
    assert body.count(r"\toprule") == len(tables) and r"\vline" not in body and "|" not in body


def small_flow() -> pd.DataFrame:
    rows = [
        ("read", "sessions", "", "rows", "", "1,000"),
        ("rejected", "sessions", "", "rows", "exact_duplicate", "12"),
        ("read", "outcomes", "phq9", "administrations", "", "900"),
        ("rejected", "outcomes", "phq9", "administrations", "item_out_of_range", "<10"),
        ("registry", "sessions", "", "clients", "", "120"),
        ("registry", "sessions", "", "therapists", "", "<10"),
        ("kept", "sessions", "", "rows", "", "988"),
        ("scored", "scores", "phq9", "administrations", "scored from every item", "850"),
        ("scored", "scores", "phq9", "administrations", "not scored: too many missing items",
         "<10"),
        ("episodes", "phq9", "", "episodes", "", "120"),
        ("episodes", "phq9", "", "episodes_with_outcome", ">= 2 scored sessions", ">110"),
        ("analysis", "phq9 M2 primary", "", "clients", "", "101"),
        ("analysis", "phq9 M2 primary", "", "observations", "", "700"),
        ("analysis", "phq9 M2 completers", "", "clients", "", "55"),
        ("analysis", "phq9 DPM primary", "", "clients", "", ">110"),
    ]
    frame = pd.DataFrame(rows, columns=["stage", "source", "instrument", "unit", "reason",
                                        "count"])
    return frame.assign(count=frame["count"].str.replace(",", ""))


def expected_count_text(count: str) -> str:
    count = str(count)
    if count[:1] in "<>":
        return f"n {count[0]} {count[1:]}"
    return f"n = {int(float(count)):,}"


def svg_lines(path: Path) -> list[str]:
    import html

    return [html.unescape(text) for text in
            re.findall(r"<text[^>]*>(.*?)</text>", path.read_text(encoding="utf-8"), re.S)]


def test_flow_diagram_shows_the_published_counts(view, tmp_path):
    from analysis.manuscript.figures import save_journal_figure
    from analysis.manuscript.flow import draw_flow_diagram, flow_diagram

    flow = small_flow()
    diagram = flow_diagram(flow, ["phq9"], view.name_of, ["DPM", "M2"])
    keys = [line.key for line in diagram.lines()]
    shown = {tuple(row[:5]) for row in flow.fillna("").itertuples(index=False)
             if row.unit not in ("observations",) and not row.source.endswith("completers")}
    assert set(keys) == shown and len(keys) == len(shown)
    # the analysed clients follow the order of the models asked for
    assert [line.key[1] for line in diagram.lines() if line.key[0] == "analysis"] == [
        "phq9 DPM primary", "phq9 M2 primary"]
    svg, pdf = tmp_path / "flow.svg", tmp_path / "flow.pdf"
    save_journal_figure(draw_flow_diagram(diagram), pdf, svg)
    texts = [text for text in svg_lines(svg) if re.search(r": n [=<>] ", text)]
    by_key = {tuple(row[:5]): row.count for row in flow.fillna("").itertuples(index=False)}
    assert [text.rsplit(": ", 1)[1] for text in texts] == [
        expected_count_text(by_key[key]) for key in keys]
    assert "Therapists: n < 10" in texts and "PHQ-9: item out of range: n < 10" in texts
    assert pdf.read_bytes().startswith(b"%PDF")


def test_references_are_the_works_the_text_names():
    from analysis.manuscript.references import REFERENCES, cited_references

    text = ("fitted with mixedlm (a port of lme4) (Bates, Kliegl, Vasishth & Baayen, 2015; "
            "Matuschek et al., 2017); Holm-adjusted")
    cited = [reference.plain.split(" (")[0] for reference in cited_references(text)]
    assert cited == ["Bates, D., Kliegl, R., Vasishth, S., & Baayen, H.",
                     "Bates, D., Mächler, M., Bolker, B., & Walker, S.", "Holm, S.",
                     "Matuschek, H., Kliegl, R., Vasishth, S., Baayen, H., & Bates, D."]
    assert all(reference.segments()[0][1] is False for reference in REFERENCES)
    assert cited_references("nothing cited here") == []


def test_journal_width_follows_the_drawn_width():
    from matplotlib.figure import Figure

    from analysis.manuscript.figures import MIN_FONT_PT, to_journal_width

    narrow, wide = Figure(figsize=(5.0, 4.0)), Figure(figsize=(10.0, 3.8))
    narrow.text(0.5, 0.5, "label", fontsize=8)  # 8 pt x 0.67 = 5.4 pt: raised to 6
    assert to_journal_width(narrow) == 85.0 and to_journal_width(wide) == 175.0
    assert narrow.get_size_inches()[0] == pytest.approx(85 / 25.4)
    assert narrow.get_size_inches()[1] == pytest.approx(4.0 * 85 / 25.4 / 5.0)
    assert narrow.texts[0].get_fontsize() == MIN_FONT_PT


# -- the pipeline run ------------------------------------------------------------------------

def output(run, name: str) -> Path:
    return run.root / FILES[name].path


def word_rows(path: Path) -> list[tuple[str, str, list[str], list[str]]]:
    """(table title, current subheading, header, cells) of every data row of every table."""
    import docx

    document = docx.Document(str(path))
    titles = [paragraph.text for paragraph in document.paragraphs
              if paragraph.runs and all(run.italic for run in paragraph.runs)
              and paragraph.text and not paragraph.text.startswith("Note.")]
    rows = []
    for title, table in zip(titles, document.tables):
        header = [cell.text for cell in table.rows[0].cells]
        heading = ""
        for row in table.rows[1:]:
            cells = [cell.text for cell in row.cells]
            if len(set(cells)) == 1 and len(cells) > 1:
                heading = cells[0]
                continue
            rows.append((title, heading, header, cells))
    return rows


def test_the_run_writes_every_manuscript_output(pipeline_run):
    for name in MANUSCRIPT_OUTPUTS:
        assert output(pipeline_run, name).stat().st_size > 0, name


def test_word_cells_equal_models_csv(pipeline_run, view):
    models = pd.read_csv(output(pipeline_run, "models"))
    rows = word_rows(output(pipeline_run, "manuscript_tables"))
    fixed = {}
    for title, heading, header, cells in rows:
        if title.startswith("Fixed Effects of the Primary Models: "):
            outcome = title.rsplit(": ", 1)[1]
            record = dict(zip(header, cells))
            fixed[(outcome, heading.rsplit(" (", 1)[0], record["Term"])] = record
    primary = models.loc[models["analysis"] == "primary"]
    assert len(fixed) == len(primary) > 0
    for row in primary.to_dict("records"):
        record = fixed[(view.name_of(row["outcome"]), model_title(row["model"]),
                        manuscript_term(row["term"]))]
        assert (record["b"], record["SE"], record["95% CI"], record["p"]) == (
            format_number(row["estimate"]), format_number(row["se"]),
            format_ci(row["ci_low"], row["ci_high"]), format_p(row["p"])), row

    sensitivity = {}
    for title, heading, header, cells in rows:
        if title.startswith("Alliance Terms Across"):
            record = dict(zip(header, cells))
            sensitivity[(title.rsplit(": ", 1)[1], heading, record["Term"],
                         record["Analysis"])] = record
    from analysis.presentation import select_alliance_terms

    terms = select_alliance_terms(models)
    assert len(sensitivity) == len(terms) > 0
    for row in terms.to_dict("records"):
        record = sensitivity[(view.name_of(row["outcome"]), model_title(row["model"]),
                              manuscript_term(row["term"]), analysis_label(row["analysis"]))]
        assert (record["b"], record["SE"], record["95% CI"], record["p"]) == (
            format_number(row["estimate"]), format_number(row["se"]),
            format_ci(row["ci_low"], row["ci_high"]), format_p(row["p"])), row


def test_word_random_effects_equal_random_effects_csv(pipeline_run):
    effects = pd.read_csv(output(pipeline_run, "random_effects"))
    primary = effects.loc[effects["analysis"] == "primary"]
    printed = [(cells[2], cells[3], cells[4]) for title, _, _, cells in
               word_rows(output(pipeline_run, "manuscript_tables"))
               if title.startswith("Random Effects")]
    assert sorted(printed) == sorted(
        (format_number(row["variance"], 3), format_number(row["sd"], 3),
         format_number(row["corr"], 3)) for row in primary.to_dict("records")) and printed


def test_flow_diagram_numbers_equal_data_flow_csv(pipeline_run, view):
    flow = pd.read_csv(output(pipeline_run, "data_flow"), dtype=str).fillna("")
    texts = svg_lines(output(pipeline_run, "flow_diagram_svg"))
    shown = {text.rsplit(": n ", 1)[0]: "n " + text.rsplit(": n ", 1)[1]
             for text in texts if ": n " in text}
    assert shown, texts[:10]

    def count(**where) -> str:
        rows = flow
        for column, value in where.items():
            rows = rows.loc[rows[column] == value]
        assert len(rows) == 1, where
        return expected_count_text(rows.iloc[0]["count"])

    assert shown["Clients"] == count(stage="registry", unit="clients")
    assert shown["Therapists"] == count(stage="registry", unit="therapists")
    for row in flow.loc[flow["stage"] == "rejected"].to_dict("records"):
        who = (f"{row['source']} file" if row["unit"] == "rows"
               else view.name_of(row["instrument"]))
        assert shown[f"{who}: {row['reason'].replace('_', ' ')}"] == expected_count_text(
            row["count"])
    for outcome in view.outcomes:
        analysed = flow.loc[(flow["stage"] == "analysis") & (flow["unit"] == "clients")
                            & flow["source"].str.match(rf"^{outcome} \S+ primary$")]
        assert len(analysed)
        labels = [text for text in texts if ": n " in text]
        for row in analysed.to_dict("records"):
            model = row["source"].split(" ")[1]
            assert f"{model_title(model)}: {expected_count_text(row['count'])}" in labels
    # every count shown is a cell of the published table: nothing added up or recomputed
    published = {expected_count_text(value) for value in flow["count"]}
    assert set(shown.values()) <= published


def test_methods_document_is_the_report_section_with_references(pipeline_run):
    import docx

    document = docx.Document(str(output(pipeline_run, "manuscript_methods")))
    paragraphs = [paragraph.text for paragraph in document.paragraphs]
    assert paragraphs[0] == "Methods" and "References" in paragraphs
    references = paragraphs[paragraphs.index("References") + 1:]
    for author in ("Allison, P. D.", "Bakdash", "Bates, D., Kliegl", "Matuschek",
                   "Falkenström"):
        assert any(reference.startswith(author) for reference in references), author
    html = output(pipeline_run, "report").read_text(encoding="utf-8")
    section = html.split('<section id="methods">', 1)[1].split("</section>", 1)[0]
    first = re.search(r"<p>(The pipeline read .*?)</p>", section, re.S).group(1)
    assert re.sub(r"\s+", " ", first) in paragraphs
    assert len(document.tables) >= 2  # the instruments and every fit, as Word tables


def test_journal_figures_have_journal_widths_and_truetype_fonts(pipeline_run):
    figures = sorted((pipeline_run.root / "results" / "figures").glob("*.svg"))
    folder = pipeline_run.root / Path(MANUSCRIPT_FIGURE_FILE).parent
    from analysis.figures.table import FAMILIES

    stems = tuple(family.stem for family in FAMILIES)
    expected = {svg.stem for svg in figures if svg.stem.startswith(stems)}
    assert {pdf.stem for pdf in folder.glob("*.pdf")} == expected and expected
    for pdf in folder.glob("*.pdf"):
        content = pdf.read_bytes()
        width = float(re.search(rb"/MediaBox \[ ?0 0 ([\d.]+)", content).group(1))
        assert round(width / 72 * 25.4) in (85, 175), pdf.name
        assert b"/FontFile2" in content and b"/Type3" not in content, pdf.name
        assert b"/CreationDate" not in content


@pytest.mark.tex
@needs_tex
def test_latex_of_the_run_compiles(pipeline_run, tmp_path):
    for name in ("manuscript_tables_latex", "manuscript_tables_standalone"):
        shutil.copy(output(pipeline_run, name), tmp_path)
    result = compile_latex(tmp_path, Path(FILES["manuscript_tables_standalone"].path).name)
    assert result.returncode == 0, result.stdout[-3000:]


def test_manuscript_step_gives_the_same_bytes_again(pipeline_run, tmp_path):
    from analysis.config import check_config
    from analysis.manuscript.stage import write_manuscript
    from analysis.study import resolve_study

    root = pipeline_run.root
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    settings = resolve_study(check_config(config)).report.params()
    inputs = {name: str(root / entry.path) for name, entry in FILES.items()
              if (root / entry.path).is_file() and entry.path.endswith((".csv", ".parquet"))}
    outputs = {name: str(tmp_path / Path(FILES[name].path).name) for name in MANUSCRIPT_OUTPUTS}
    write_manuscript(inputs, settings, outputs)
    for name in MANUSCRIPT_OUTPUTS:
        assert Path(outputs[name]).read_bytes() == output(pipeline_run, name).read_bytes(), name
