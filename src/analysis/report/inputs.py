"""What the report reads: the result tables and the figures with their captions."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from analysis.errors import DataError
from analysis.io import read_table
from analysis.privacy import StudyTotals


@dataclass
class ReportTables:
    """The tables the report reads; a table the pipeline did not produce stays empty.

    Attributes are named after the files: ``models`` is ``results/tables/models.csv`` and so
    on; ``sessions`` and ``scores`` are the processed Parquet files (only their ``client_id``,
    ``session``, ``day`` and ``instrument``, ``session``, ``score`` columns are used).
    """

    models: pd.DataFrame = field(default_factory=pd.DataFrame)
    random_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_fit: pd.DataFrame = field(default_factory=pd.DataFrame)
    engine_agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    rm_corr: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    therapist_icc: pd.DataFrame = field(default_factory=pd.DataFrame)
    episodes_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    jacobson_truax: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_flow: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    sessions: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the RI-CLPM check and the multiverse (empty when switched off)
    riclpm: pd.DataFrame = field(default_factory=pd.DataFrame)
    riclpm_fit: pd.DataFrame = field(default_factory=pd.DataFrame)
    multiverse: pd.DataFrame = field(default_factory=pd.DataFrame)
    multiverse_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the engagement analyses (empty when switched off)
    dropout: pd.DataFrame = field(default_factory=pd.DataFrame)
    attendance: pd.DataFrame = field(default_factory=pd.DataFrame)
    therapist_patient_alliance: pd.DataFrame = field(default_factory=pd.DataFrame)
    sudden_gains_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    # planning the next study (empty unless power.run is true)
    power: pd.DataFrame = field(default_factory=pd.DataFrame)
    power_parameters: pd.DataFrame = field(default_factory=pd.DataFrame)

    def population(self, unit: str = "clients") -> int | None:
        """The study's clients (or therapists) after cleaning: the total every published count of
        them is part of (complementary suppression, :func:`analysis.privacy.format_count`).
        From the session registry (:class:`analysis.privacy.StudyTotals`); None when it is not
        available."""
        totals = StudyTotals.from_tables(None if self.sessions.empty else self.sessions)
        return {"clients": totals.clients, "therapists": totals.therapists}[unit]

    def has_dates(self) -> bool:
        """Whether any session record carried a date (turned into a day offset at ingest)."""
        return (not self.sessions.empty and "day" in self.sessions.columns
                and bool(self.sessions["day"].notna().any()))

    def item_level(self, instrument: str) -> bool:
        """False when the run scored ``instrument`` only from pre-scored totals: R2 found no
        administration with its items (a row with n = 0); True otherwise (or unknown)."""
        if self.reliability.empty or not {"instrument", "n"} <= set(self.reliability.columns):
            return True
        rows = self.reliability.loc[self.reliability["instrument"].astype(str) == instrument]
        if rows.empty:
            return True
        n = pd.to_numeric(rows["n"], errors="coerce")
        return not bool((n == 0).all())


def read_report_tables(paths: Mapping[str, Any]) -> ReportTables:
    """Read the tables named in ``paths`` (attribute name of :class:`ReportTables` -> file).

    Names that are not attributes (figures, code, config) are ignored, so a Snakemake rule's
    ``input`` can be passed as it is.
    """
    names = {item.name for item in fields(ReportTables)}
    tables = {}
    for name in names:
        path = _get(paths, name)
        if path:
            tables[name] = read_table(str(path))
    return ReportTables(**tables)


def _get(container: Any, name: str) -> Any:
    if isinstance(container, Mapping):
        return container.get(name)
    return getattr(container, name, None)

# CSS pixels per inch: a figure is shown at the size it was drawn (capped by the page width).
CSS_PIXELS_PER_INCH = 96


@dataclass(frozen=True)
class FigureEntry:
    """A figure for the report: name, caption, PNG bytes as a data URI, display width (px)."""

    name: str
    caption: str
    data_uri: str
    width: int


def figure_entries(png_paths: Sequence[str | Path], caption_dir: str | Path,
                   dpi: int = 300) -> dict[str, FigureEntry]:
    """Load figures for embedding, each with the caption of its family.

    A figure ``<family>`` or ``<family>_<outcome>`` takes its caption from
    ``<caption_dir>/figure_<family>.rst`` (the same caption the Snakemake report shows); the
    longest matching family wins. ``dpi`` is what the PNG files were saved at
    (``figures.png_dpi``), so each figure is shown at the size it was drawn.
    """
    captions = {path.stem.removeprefix("figure_"): path.read_text(encoding="utf-8").strip()
                for path in sorted(Path(caption_dir).glob("figure_*.rst"))}
    entries = {}
    for png in sorted(Path(p) for p in png_paths):
        families = [family for family in captions
                    if png.stem == family or png.stem.startswith(family + "_")]
        caption = captions[max(families, key=len)] if families else png.stem.replace("_", " ")
        content = png.read_bytes()
        encoded = base64.b64encode(content).decode("ascii")
        entries[png.stem] = FigureEntry(png.stem, caption, f"data:image/png;base64,{encoded}",
                                        _display_width(content, dpi))
    return entries


def _display_width(png: bytes, dpi: int) -> int:
    # The PNG header holds the width in pixels (bytes 16-19); figures are saved at ``dpi``.
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError("a figure file is not a PNG image; rerun the figure rules.")
    width_pixels = int.from_bytes(png[16:20], "big")
    return round(width_pixels / dpi * CSS_PIXELS_PER_INCH)
