"""Every output of a small study shows no count of people that the privacy rule hides.

A study of 36 clients and 6 therapists is run end to end; with the default threshold of 10 most
of its counts of people are small cells, or are the complement of one (35 of 36 clients reveals
the 1 left out). The scan reads every output: the CSV tables, the report's visible text, the text
of the SVG figures (matplotlib writes each label as a comment beside its glyphs) and the logs,
and flags

- a count of people shown as a number that :func:`analysis.privacy.hidden_counts` hides: a small
  cell (1 to 9), or a count whose complement in a published total (the study's clients, its
  therapists, an outcome's episodes) is one;
- a rate that gives a hidden count back: a rate beside a suppressed count or denominator, or a
  rate whose denominator (count / rate) is a hidden count.

The scanner's own tests inject unsuppressed counts and revealing rates and check it catches them,
so a clean scan means something.
"""

from __future__ import annotations

import csv
import html
import math
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.privacy import hidden_counts

MIN_CELL = 10
SCAN_CLIENTS, SCAN_THERAPISTS, SCAN_SEED = 36, 6, 11

PEOPLE = r"(?:clients?|families|famil(?:y|ies)|therapists?|episodes?|people|participants?|patients?)"
# a number right before the people word ("35 clients", "35 of 36 clients", "<10 clients" is not
# a number) or right after it ("clients 35", "Clients: 35", "n_clients=35")
NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?![\d.%])"
COUNT_BEFORE = re.compile(
    r"(?<![<>\d.,\w-])" + NUMBER + r"(?:\s+of\s+(?:the\s+)?" + NUMBER + r")?\s+"
    r"(?:(?:distinct|unique|different|eligible|included|other|more|such)\s+)?" + PEOPLE + r"\b",
    re.IGNORECASE)
COUNT_AFTER = re.compile(r"\b(?:n_)?" + PEOPLE + r"\s*[:=]?\s*(?<![<>])" + NUMBER, re.IGNORECASE)
PART_OF = re.compile(r"(?<![<>\d.,-])" + NUMBER + " of " + NUMBER
                     + r" (?:attended|had|with|were)\b")
PERCENT = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)%")
# thresholds and rules, not counts: "at least 5 therapists", "fewer than 3 alliance scores"
THRESHOLD = re.compile(r"(?:at least|fewer than|more than|less than|minimum of|up to|under|over|"
                       r"below|above|needs?|per|every|each|first|last)\s*$", re.IGNORECASE)

# published tables: columns holding counts of people (``data_flow``'s count only for people units)
PEOPLE_COLUMNS = {"n_clients", "n_therapists", "n_episodes", "n_with_outcome", "n_denominator",
                  "n_families"}
TABLES_WITH_N = {"rm_corr", "reliability"}  # their ``n`` is clients
PEOPLE_UNITS = {"clients", "therapists", "episodes", "episodes_with_outcome"}


@dataclass(frozen=True)
class Finding:
    where: str
    shown: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.shown!r} ({self.why})"


def _number(text: str) -> int | None:
    text = str(text).strip().replace(",", "")
    if re.fullmatch(r"\d+(?:\.0+)?", text):
        return int(float(text))
    return None


class Scanner:
    """Finds counts of people a run must not publish.

    ``totals`` are the published totals the counts are parts of (clients, therapists, each
    outcome's episodes): a count whose complement in one of them is a small cell is hidden too.
    """

    def __init__(self, totals: set[int], min_cell: int = MIN_CELL):
        self.min_cell = min_cell
        self.totals = {int(t) for t in totals if t}
        self.hidden: set[int] = set(range(1, min_cell))
        for total in self.totals:
            self.hidden |= hidden_counts(total, min_cell)

    def _check(self, value: str, where: str, why: str) -> list[Finding]:
        number = _number(value)
        return [Finding(where, value, why)] if number is not None and number in self.hidden else []

    # -- tables ------------------------------------------------------------------------------
    def table(self, rows: list[dict[str, str]], name: str) -> list[Finding]:
        findings = []
        for i, row in enumerate(rows, start=2):
            where = f"{name} row {i}"
            for column, value in row.items():
                if column in PEOPLE_COLUMNS or (column == "n" and name in TABLES_WITH_N):
                    findings += self._check(value, f"{where} {column}", "count of people")
            if name == "data_flow" and row.get("unit") in PEOPLE_UNITS:
                findings += self._check(row.get("count", ""), f"{where} count",
                                        f"count of {row.get('unit')}")
            if name == "episodes_summary":
                findings += self._check(row.get("count", ""), f"{where} count", "count of people")
                findings += self.rate(row.get("count", ""), row.get("n_denominator", ""),
                                      row.get("rate", ""), where)
        return findings

    def rate(self, count: str, denominator: str, rate: str, where: str) -> list[Finding]:
        """A rate is published only beside a shown count and denominator, and its implied
        denominator (count / rate) must not be a hidden count."""
        try:
            value = float(rate)
        except (TypeError, ValueError):
            return []
        if math.isnan(value) or value == 0:
            return []
        shown_count, shown_denominator = _number(count), _number(denominator)
        if shown_count is None or shown_denominator is None:
            return [Finding(where, f"rate {rate}", f"beside a suppressed count ({count!r} of "
                                                   f"{denominator!r})")]
        implied = round(shown_count / value)
        if implied in self.hidden:
            return [Finding(where, f"rate {rate}", f"gives back the hidden denominator {implied}")]
        return []

    # -- text --------------------------------------------------------------------------------
    def text(self, text: str, where: str) -> list[Finding]:
        findings = []
        text = re.sub(r"\s+", " ", text)
        for match in COUNT_BEFORE.finditer(text):
            if THRESHOLD.search(text[max(0, match.start() - 25):match.start()]):
                continue
            context = text[max(0, match.start() - 40):match.end() + 10]
            findings += self._check(match.group(1), f"{where}: ...{context}...", "count of people")
            if match.group(2):
                findings += self._check(match.group(2), f"{where}: ...{context}...",
                                        "count of people")
        for match in COUNT_AFTER.finditer(text):
            context = text[max(0, match.start() - 40):match.end() + 10]
            findings += self._check(match.group(1), f"{where}: ...{context}...", "count of people")
        for match in PART_OF.finditer(text):
            context = text[max(0, match.start() - 40):match.end() + 10]
            for group in (1, 2):
                findings += self._check(match.group(group), f"{where}: ...{context}...",
                                        "count of people")
        findings += self.percentages(text, where)
        return findings

    def percentages(self, text: str, where: str) -> list[Finding]:
        """A percentage of people (a people word in its sentence) that only a hidden
        denominator reproduces."""
        findings = []
        for sentence in re.split(r"(?<=[.;])\s", text):
            if not re.search(PEOPLE, sentence, re.IGNORECASE):
                continue
            for match in PERCENT.finditer(sentence):
                decimals = len(match.group(1).partition(".")[2])
                value = float(match.group(1))
                limit = max(self.totals or {self.min_cell})
                fits = [d for d in range(1, limit + 1)
                        if any(round(100 * k / d, decimals) == value for k in range(d + 1))]
                if fits and all(d in self.hidden for d in fits):
                    findings.append(Finding(f"{where}: ...{sentence[:120]}...", match.group(0),
                                            f"only hidden denominators {fits} give it"))
        return findings


def visible_text(document: str) -> str:
    class Collector(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag, attrs):
            if tag in ("style", "script"):
                self.skip += 1
            if tag in ("td", "th", "tr", "caption"):
                self.parts.append(" | ")  # cells stay apart: "lag 1 | Therapists ..."

        def handle_endtag(self, tag):
            if tag in ("style", "script"):
                self.skip -= 1

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    collector = Collector()
    collector.feed(document)
    return " ".join(collector.parts)


def svg_text(document: str) -> str:
    """The text of a matplotlib SVG: each label is written as a comment beside its glyphs."""
    labels = re.findall(r"<!-- (.*?) -->", document, flags=re.DOTALL)
    labels += re.findall(r"<text[^>]*>(.*?)</text>", document, flags=re.DOTALL)
    return " ; ".join(html.unescape(label) for label in labels)


def docx_texts(path: Path) -> list[str]:
    """The text of a Word document as a reader takes it in: each paragraph, and each table row
    with its cells kept apart (a percentage in a row is read with that row, not with the
    table's other rows)."""
    import docx

    document = docx.Document(str(path))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        parts += [" | ".join(cell.text for cell in row.cells) for row in table.rows]
    return parts


def tex_text(source: str) -> str:
    """LaTeX source as a reader sees it: "$<$10 clients" is "<10 clients"."""
    return source.replace("$<$", "<").replace("$>$", ">").replace("\\&", " | ")


def table_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def html_table_rows(document: str) -> list[list[str]]:
    """Every row of every table in the report, as the text of its cells."""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", document, flags=re.DOTALL):
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                     for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.DOTALL)])
    return rows


def report_tables(document: str) -> list[tuple[str, list[dict[str, str]]]]:
    """The report's tables as (caption, rows keyed by header)."""
    tables = []
    for caption, body in re.findall(r"<caption>(.*?)</caption>(.*?)</table>", document,
                                    flags=re.DOTALL):
        rows = html_table_rows(body)
        if not rows:
            continue
        header, *cells = rows
        tables.append((html.unescape(caption), [dict(zip(header, row)) for row in cells]))
    return tables


REPORT_PEOPLE_HEADERS = {"Clients", "Therapists", "Episodes", "With outcome"}


def scan_report(scanner: Scanner, document: str, where: str) -> list[Finding]:
    findings = scanner.text(visible_text(document), where)
    for caption, rows in report_tables(document):
        for i, row in enumerate(rows, start=1):
            for header, value in row.items():
                if header in REPORT_PEOPLE_HEADERS:
                    findings += scanner._check(value, f"{where} table {caption[:50]!r} row {i} "
                                                      f"{header}", "count of people")
            if caption.startswith("Episode outcomes"):
                rate = row.get("Rate", "")
                value = str(float(rate.rstrip("%")) / 100) if rate.endswith("%") else ""
                findings += scanner.rate(row.get("Count", ""), row.get("With outcome", ""),
                                         value, f"{where} episode table row {i}") \
                    if row.get("Measure") == "has outcome" else []
    return findings


def scan_outputs(root: Path, scanner: Scanner) -> list[Finding]:
    """Every published output of a run under ``root``: tables, report, figures, logs."""
    findings: list[Finding] = []
    for path in sorted((root / "results" / "tables").glob("*.csv")):
        findings += scanner.table(table_rows(path), path.stem)
    for path in sorted((root / "results").rglob("*.html")):
        findings += scan_report(scanner, path.read_text(encoding="utf-8"),
                                str(path.relative_to(root)))
    for path in sorted((root / "results" / "figures").glob("*.svg")):
        findings += scanner.text(svg_text(path.read_text(encoding="utf-8")),
                                 str(path.relative_to(root)))
    manuscript = root / "results" / "manuscript"
    for path in sorted(manuscript.rglob("*.svg")):
        findings += scanner.text(svg_text(path.read_text(encoding="utf-8")),
                                 str(path.relative_to(root)))
    for path in sorted(manuscript.glob("*.docx")):
        for text in docx_texts(path):
            findings += scanner.text(text, str(path.relative_to(root)))
    for path in sorted(manuscript.glob("*.tex")):
        findings += scanner.text(tex_text(path.read_text(encoding="utf-8")),
                                 str(path.relative_to(root)))
    for path in sorted((root / "logs").rglob("*.log")):
        findings += scanner.text(path.read_text(encoding="utf-8", errors="replace"),
                                 str(path.relative_to(root)))
    return findings


def published_totals(root: Path) -> set[int]:
    """The totals a reader can see: the clients and therapists of the registry and every
    outcome's episodes, from the full data flow (what the published copy stands for)."""
    full = root / "data" / "processed" / "data_flow.csv"
    totals = set()
    for row in table_rows(full):
        if (row["stage"], row["unit"]) in {("registry", "clients"), ("registry", "therapists"),
                                           ("episodes", "episodes")}:
            totals.add(int(row["count"]))
    return totals


# -- the scanner catches what it should -------------------------------------------------------

def test_scanner_catches_an_injected_count_in_a_table():
    scanner = Scanner({36})
    rows = [{"outcome": "phq9", "model": "M2", "n_clients": "<10"},
            {"outcome": "gad7", "model": "M2", "n_clients": "35"},   # 36 - 35 = 1: revealed
            {"outcome": "gad7", "model": "M1", "n_clients": "7"},    # a small cell
            {"outcome": "gad7", "model": "M0", "n_clients": "20"}]
    found = scanner.table(rows, "models")
    assert [f.shown for f in found] == ["35", "7"]
    flow = [{"stage": "registry", "unit": "clients", "count": "36"},
            {"stage": "registry", "unit": "therapists", "count": "6"},
            {"stage": "read", "unit": "rows", "count": "5"}]          # rows are not people
    assert [f.shown for f in scanner.table(flow, "data_flow")] == ["6"]


def test_scanner_catches_counts_in_sentences_figures_and_logs():
    scanner = Scanner({36, 64})
    assert scanner.text("Within clients r = .2 (<10 clients); 20 clients.", "report") == []
    caught = scanner.text("35 clients with two or more scores (<10 with fewer)", "figure")
    assert [f.shown for f in caught] == ["35"]
    assert [f.shown for f in scanner.text("(62 clients)", "R1")] == ["62"]
    assert [f.shown for f in scanner.text("Clients: 3", "log")] == ["3"]
    assert [f.shown for f in scanner.text("3 of 36 attended fewer than three", "x")] == ["3"]
    # thresholds are rules, not counts
    assert scanner.text("when a study has at least 5 therapists", "methods") == []
    assert scanner.text("clients with fewer than 3 alliance scores drop out", "methods") == []


def test_scanner_catches_rates_that_reveal_a_hidden_count():
    scanner = Scanner({64})
    # 22 of 62 = 35.5%: the 62 is hidden (64 - 62 = 2), so is the rate
    assert scanner.rate("22", ">54", "0.3548", "episodes")
    assert scanner.rate("22", "62", "0.3548", "episodes")
    assert not scanner.rate("22", "50", "0.44", "episodes")
    assert not scanner.rate("<10", ">54", "", "episodes")
    # a percentage in a sentence about people that only a hidden denominator gives
    # (17 of 62 = 27.4% and no shown denominator up to 64 gives 27.4%; 35.5% is also 11 of 31,
    # so on its own it reveals nothing)
    assert scanner.percentages("27.4% of clients improved", "report")
    assert not scanner.percentages("35.5% of clients improved", "report")
    assert not scanner.percentages("50.0% of clients improved", "report")
    summary = [{"outcome": "phq9", "measure": "reliable_improvement", "n_episodes": "64",
                "n_with_outcome": ">54", "n_denominator": ">54", "count": "22",
                "rate": "0.3548387"}]
    assert scanner.table(summary, "episodes_summary")


def test_scanner_reads_report_tables_and_svg_labels():
    scanner = Scanner({36})
    document = ("<table><caption>Repeated-measures correlation</caption><thead><tr>"
                "<th>Outcome</th><th>r</th><th>Clients</th></tr></thead><tbody>"
                "<tr><td>PHQ-9</td><td>-.2</td><td>35</td></tr>"
                "<tr><td>GAD-7</td><td>-.1</td><td>&lt;10</td></tr></tbody></table>")
    assert [f.shown for f in scan_report(scanner, document, "report")] == ["35"]
    svg = "<svg><!-- 35 clients with two or more scores (&lt;10 with fewer) --></svg>"
    assert "35 clients" in svg_text(svg)
    assert [f.shown for f in scanner.text(svg_text(svg), "figure")] == ["35"]


def test_report_paths_suppress_against_the_study_total():
    """The report's own counts of people: complementary suppression against the registry."""
    from analysis.privacy import format_count, publish_rate

    assert format_count(62, MIN_CELL, 64) == ">54"
    assert format_count(62, MIN_CELL) == "62"  # without its total the complement is unknown
    assert math.isnan(publish_rate(22, 62, MIN_CELL, total=64))
    assert publish_rate(22, 50, MIN_CELL, total=64) == pytest.approx(0.44)


def test_the_scan_of_a_run_catches_a_leak_in_every_kind_of_output(tmp_path):
    """A run's folder with one unsuppressed count in each kind of output: each is found."""
    processed = tmp_path / "data" / "processed"
    tables, figures = tmp_path / "results" / "tables", tmp_path / "results" / "figures"
    report, logs = tmp_path / "results" / "report", tmp_path / "logs" / "fit_model"
    for folder in (processed, tables, figures, report, logs):
        folder.mkdir(parents=True)
    (processed / "data_flow.csv").write_text(
        "stage,source,instrument,unit,reason,count\n"
        "registry,sessions,,clients,,36\nregistry,sessions,,therapists,,6\n"
        "episodes,phq9,,episodes,,36\n")
    (tables / "models.csv").write_text("outcome,model,n_clients,n_therapists\n"
                                       "phq9,M2,35,<10\ngad7,M2,>26,<10\n")
    (tables / "data_flow.csv").write_text("stage,source,instrument,unit,reason,count\n"
                                          "analysis,phq9 M2 primary,,clients,,>26\n")
    (figures / "residuals_phq9.svg").write_text(
        "<svg><!-- Normal Q-Q plot of client random intercepts (35 clients) --></svg>")
    (report / "index.html").write_text(
        "<html><body><p>The model used 34 of 36 clients.</p></body></html>")
    (logs / "phq9.log").write_text("INFO fitted M2 on 640 observations; therapists: 4\n")
    import docx

    manuscript = tmp_path / "results" / "manuscript"
    manuscript.mkdir()
    document = docx.Document()
    document.add_paragraph("M2 Lagged alliance (640 obs., 33 clients, <10 therapists)")
    document.save(str(manuscript / "tables.docx"))
    (manuscript / "tables.tex").write_text(r"\textit{M1 (640 obs., 2 clients)} \\" + "\n")
    totals = published_totals(tmp_path)
    assert totals == {36, 6}
    findings = scan_outputs(tmp_path, Scanner(totals))
    where = sorted({finding.where.split(":")[0].split(" row ")[0] for finding in findings})
    assert where == ["logs/fit_model/phq9.log", "models", "results/figures/residuals_phq9.svg",
                     "results/manuscript/tables.docx", "results/manuscript/tables.tex",
                     "results/report/index.html"], findings
    assert sorted(finding.shown for finding in findings) == ["2", "33", "34", "35", "35", "4"]


# -- a small study, end to end -----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from conftest import make_project_copy

    project = make_project_copy(tmp_path_factory.mktemp("small") / "project",
                                n_clients=SCAN_CLIENTS, n_therapists=SCAN_THERAPISTS,
                                seed=SCAN_SEED)
    project.snakemake()
    return project.root


def test_no_output_of_a_small_study_reveals_a_hidden_count(small_run):
    totals = published_totals(small_run)
    assert SCAN_CLIENTS - 1 <= max(totals) <= SCAN_CLIENTS + 1
    findings = scan_outputs(small_run, Scanner(totals))
    assert not findings, "counts of people shown that the privacy rule hides:\n" + "\n".join(
        map(str, findings[:60]))
