"""What a report is made of: sections of figures, tables and notes.

Each result kind builds its sections in its own module of this room
(``report/run.py``, ``report/sweep.py``, ``report/walkforward.py``,
``report/montecarlo.py``); one renderer turns a list of sections into a
self-contained HTML file.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True)
class Section:
    """One part of a report: a heading, what it shows, its figures and tables.

    Parameters
    ----------
    title
        The section's heading.
    figures
        Plotly figures, drawn in order (resampled series: a report stays a
        few MB whatever the run's length).
    tables
        Frames shown as tables under the figures (column names are the
        headers, already human: "Sharpe", "max drawdown %").
    notes
        Plain sentences under the heading: what the section shows and on
        which grid or assumptions (e.g. "returns on a 1 h grid, 412 periods").
    """

    title: str
    figures: tuple[go.Figure, ...] = ()
    tables: tuple[pd.DataFrame, ...] = ()
    notes: tuple[str, ...] = ()
