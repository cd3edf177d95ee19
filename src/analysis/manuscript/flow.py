"""The participant flow diagram in the CONSORT style, from the published data flow.

Boxes joined by arrows, top to bottom: the records read from each input file (and the
questionnaires in them), beside it the exclusions at ingest with their reasons; the clients,
therapists and sessions kept; the questionnaires scored, beside it those that could not be
scored; then one column per outcome: its episodes (one per client) and those with an outcome
(at least two scored sessions), and the clients in each model's primary analysis.

Every count is a cell of ``results/tables/data_flow.csv``, the published copy with the privacy
suppression already applied (:mod:`analysis.privacy`): a suppressed cell is shown as published
("<10", ">26"), nothing is added up or recomputed, so the diagram cannot show a count the
table hides. :func:`flow_diagram` builds the boxes (each line remembers the row it came from);
:func:`draw_flow_diagram` draws them; the text stays text in the SVG, so a reader (and the
tests) can find each count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd

from analysis.presentation import finite, model_title, name_process

#: A line's key: the data-flow row it shows (stage, source, instrument, unit, reason).
RowKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class FlowLine:
    """One line of a box: a label and the count of one data-flow row, as published."""

    label: str
    count: str
    key: RowKey

    @property
    def text(self) -> str:
        if self.count[:1] in ("<", ">"):
            return f"{self.label}: n {self.count[0]} {self.count[1:]}"
        return f"{self.label}: n = {self.count}"


@dataclass(frozen=True)
class FlowBox:
    """A box of the diagram: a title and its lines; ``side`` boxes hang to the right of the
    main box of their step (exclusions)."""

    title: str
    lines: tuple[FlowLine, ...]
    side: bool = False


@dataclass(frozen=True)
class FlowStep:
    """One level of the diagram: a main box and an optional side box."""

    main: FlowBox
    side: FlowBox | None = None


@dataclass
class FlowDiagram:
    """The diagram: steps every client goes through, then one column of steps per outcome."""

    steps: list[FlowStep] = field(default_factory=list)
    outcome_columns: list[tuple[str, list[FlowStep]]] = field(default_factory=list)

    def lines(self) -> list[FlowLine]:
        """Every line, in drawing order."""
        boxes = [box for step in self.steps for box in (step.main, step.side) if box]
        boxes += [box for _, steps in self.outcome_columns for step in steps
                  for box in (step.main, step.side) if box]
        return [line for box in boxes for line in box.lines]


def published_count(value: Any) -> str:
    """A count as the published table shows it: a number with thousands separators, or a
    suppressed cell ("<10") as it is."""
    number = finite(value)
    if number is not None:
        return f"{int(number):,}"
    return str(value).strip()


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _rows(flow: pd.DataFrame, **conditions: str) -> list[dict[str, Any]]:
    if flow.empty:
        return []
    mask = pd.Series(True, index=flow.index)
    for column, value in conditions.items():
        mask &= flow[column].map(_text) == value
    return flow.loc[mask].to_dict("records")


def _line(row: dict[str, Any], label: str) -> FlowLine:
    key = tuple(_text(row.get(column)) for column in
                ("stage", "source", "instrument", "unit", "reason"))
    return FlowLine(label, published_count(row.get("count")), key)  # type: ignore[arg-type]


def _reason(text: str) -> str:
    return text.replace("_", " ")


def flow_diagram(flow: pd.DataFrame, outcomes: Sequence[str], name_of: Callable[[str], str],
                 models: Sequence[str] = (), process: str = "alliance") -> FlowDiagram:
    """The boxes of the diagram from the published data flow.

    Parameters
    ----------
    flow : DataFrame
        ``results/tables/data_flow.csv`` (``stage, source, instrument, unit, reason, count``),
        small counts already suppressed.
    outcomes : sequence of str
        The outcome instruments, in config order (one column each).
    name_of : callable
        Instrument key -> label (``ReportView.name_of``).
    models : sequence of str
        Model ids in the order to list them (``ReportView.models_run``); analyses of other
        models follow in table order.
    """
    diagram = FlowDiagram()
    read = [_line(row, f"{row['source']} file, records") for row in
            _rows(flow, stage="read", unit="rows")]
    read += [_line(row, f"{name_of(row['instrument'])} questionnaires")
             for row in _rows(flow, stage="read", unit="administrations")]
    excluded = [_line(row, f"{row['source']} file: {_reason(row['reason'])}")
                for row in _rows(flow, stage="rejected", unit="rows")]
    excluded += [_line(row, f"{name_of(row['instrument'])}: {_reason(row['reason'])}")
                 for row in _rows(flow, stage="rejected", unit="administrations")]
    diagram.steps.append(FlowStep(
        FlowBox("Records read", tuple(read)),
        FlowBox("Excluded at ingest", tuple(excluded), side=True) if excluded else None))

    kept = [_line(row, {"clients": "Clients", "therapists": "Therapists",
                        "sessions": "Sessions"}.get(_text(row["unit"]), _text(row["unit"])))
            for row in _rows(flow, stage="registry")]
    kept += [_line(row, f"{row['source']} file, records kept")
             for row in _rows(flow, stage="kept", unit="rows")]
    diagram.steps.append(FlowStep(FlowBox("Kept after ingest", tuple(kept))))

    scored_rows = _rows(flow, stage="scored")
    scored = [_line(row, f"{name_of(row['instrument'])}: {row['reason']}")
              for row in scored_rows if not _text(row["reason"]).startswith("not scored")]
    not_scored = [_line(row, f"{name_of(row['instrument'])}: "
                              f"{_text(row['reason']).removeprefix('not scored: ')}")
                  for row in scored_rows if _text(row["reason"]).startswith("not scored")]
    if scored:
        diagram.steps.append(FlowStep(
            FlowBox("Questionnaires scored", tuple(scored)),
            FlowBox("Not scored", tuple(not_scored), side=True) if not_scored else None))

    for outcome in outcomes:
        steps = []
        episodes = [_line(row, "Episodes (clients)") for row in
                    _rows(flow, stage="episodes", source=outcome, unit="episodes")]
        episodes += [_line(row, f"with an outcome ({row['reason']})") for row in
                     _rows(flow, stage="episodes", source=outcome, unit="episodes_with_outcome")]
        if episodes:
            steps.append(FlowStep(FlowBox(f"{name_of(outcome)} episodes", tuple(episodes))))
        analysed = _analysis_lines(flow, outcome, models, process)
        if analysed:
            steps.append(FlowStep(FlowBox(f"{name_of(outcome)}: clients analysed (primary "
                                          "analysis)", tuple(analysed))))
        if steps:
            diagram.outcome_columns.append((name_of(outcome), steps))
    return diagram


def _analysis_lines(flow: pd.DataFrame, outcome: str, models: Sequence[str],
                    process: str) -> list[FlowLine]:
    rows = [row for row in _rows(flow, stage="analysis", unit="clients")
            if _text(row["source"]).startswith(f"{outcome} ")
            and _text(row["source"]).endswith(" primary")]
    by_model = {_text(row["source"]).removeprefix(f"{outcome} ").removesuffix(" primary"): row
                for row in rows}
    order = [model for model in models if model in by_model]
    order += [model for model in by_model if model not in order]
    return [_line(by_model[model], name_process(model_title(model), process))
            for model in order]


# -- drawing ----------------------------------------------------------------------------------

FONT_PT = 7.0
TITLE_PT = 7.5
LINE_INCHES = 0.145
PAD_INCHES = 0.07
GAP_INCHES = 0.28
WIDTH_MM = 175.0


def _box_height(box: FlowBox) -> float:
    return PAD_INCHES * 2 + LINE_INCHES * (len(box.lines) + 1)


def _step_height(step: FlowStep) -> float:
    return max(_box_height(step.main), _box_height(step.side) if step.side else 0.0)


def draw_flow_diagram(diagram: FlowDiagram, font: str = "DejaVu Sans") -> Any:
    """The diagram as a matplotlib figure, 175 mm wide (text as text, one element per line)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, Rectangle

    width = WIDTH_MM / 25.4
    columns = max(len(diagram.outcome_columns), 1)
    column_steps = max((len(steps) for _, steps in diagram.outcome_columns), default=0)
    column_heights = [sum(_step_height(step) for step in steps) + GAP_INCHES * (len(steps) - 1)
                      for _, steps in diagram.outcome_columns] or [0.0]
    height = (sum(_step_height(step) for step in diagram.steps)
              + GAP_INCHES * (len(diagram.steps) + (1 if column_steps else 0) - 1)
              + max(column_heights) + 2 * PAD_INCHES)
    figure = Figure(figsize=(width, max(height, 1.0)))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(0, max(height, 1.0))
    axes.axis("off")
    text_style = {"fontfamily": font, "fontsize": FONT_PT, "va": "top", "ha": "left"}

    def draw_box(box: FlowBox, left: float, top: float, box_width: float) -> tuple[float, float]:
        box_height = _box_height(box)
        axes.add_patch(Rectangle((left, top - box_height), box_width, box_height, fill=False,
                                 linewidth=0.6, edgecolor="black"))
        axes.text(left + PAD_INCHES, top - PAD_INCHES, box.title,
                  **{**text_style, "fontsize": TITLE_PT, "fontweight": "bold"})
        for i, line in enumerate(box.lines, start=1):
            axes.text(left + PAD_INCHES, top - PAD_INCHES - i * LINE_INCHES, line.text,
                      **text_style)
        return top - box_height, box_height

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        axes.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>",
                                       mutation_scale=7, linewidth=0.6, color="black",
                                       shrinkA=0, shrinkB=0))

    margin = PAD_INCHES
    main_width = width * 0.5
    side_left = margin + main_width + 0.35
    side_width = width - side_left - margin
    centre = margin + main_width / 2
    top = height - PAD_INCHES
    previous_bottom = None
    for step in diagram.steps:
        if previous_bottom is not None:
            arrow(centre, previous_bottom, centre, top)
        main_bottom, box_height = draw_box(step.main, margin, top, main_width)
        if step.side is not None:
            side_top = top - (box_height - _box_height(step.side)) / 2 if (
                _box_height(step.side) < box_height) else top
            draw_box(step.side, side_left, side_top, side_width)
            middle = side_top - _box_height(step.side) / 2
            arrow(margin + main_width, min(middle, top - PAD_INCHES),
                  side_left, min(middle, top - PAD_INCHES))
        previous_bottom = main_bottom
        top = top - _step_height(step) - GAP_INCHES

    column_width = (width - 2 * margin - 0.2 * (columns - 1)) / columns
    for index, (_, steps) in enumerate(diagram.outcome_columns):
        left = margin + index * (column_width + 0.2)
        column_top = top
        column_previous = previous_bottom
        for step in steps:
            if column_previous is not None:
                start_x = centre if column_previous == previous_bottom else left + column_width / 2
                arrow(start_x, column_previous, left + column_width / 2, column_top)
            draw_box(step.main, left, column_top, column_width)
            column_previous = column_top - _step_height(step)
            column_top = column_previous - GAP_INCHES
    return figure


__all__ = ["FlowBox", "FlowDiagram", "FlowLine", "FlowStep", "draw_flow_diagram",
           "flow_diagram", "published_count"]
