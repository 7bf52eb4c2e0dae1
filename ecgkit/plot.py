"""12-lead ECG plot on ECG paper: the standard 3x4 layout plus a lead II rhythm strip.

Paper speed 25 mm/s and gain 10 mm/mV, as printed by electrocardiographs: one small square is 1 mm =
0.04 s = 0.1 mV, one large square 5 mm = 0.2 s = 0.5 mV. Each of the 3x4 panels shows 2.5 s of its
lead (columns: I/II/III, aVR/aVL/aVF, V1-V3, V4-V6, each column the next 2.5 s of the recording);
the strip below shows the whole recording of lead II. A 1 mV calibration pulse starts each row. As
on paper, tall complexes may cross into the neighbouring row; the paper grows above the top row and
below the strip so that no trace is cut off at the edge. Uses matplotlib's object API (no pyplot, no
global state), so it works headless with the Agg backend.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from numpy.typing import NDArray

from ecgkit.errors import SignalError
from ecgkit.record import LEADS

#: The 3x4 panel grid, rows top to bottom, columns left to right.
LAYOUT: tuple[tuple[str, ...], ...] = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"),
                                        ("III", "aVF", "V3", "V6"))
_MM_PER_S = 25.0
_MM_PER_MV = 10.0
_ROW_MM = 30.0  # vertical space per row (3 mV)
_MINOR_COLOUR = "#f6c4c4"
_MAJOR_COLOUR = "#e88d8d"
_TRACE_COLOUR = "black"
#: left margin holding the calibration pulses (1 mV x 0.2 s = 10 x 5 mm, as electrocardiographs print)
_LEFT_MM = 8.0
#: white box behind lead names so they stay readable where a tall trace crosses them
_LABEL_BOX: dict[str, Any] = {"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5}


def _grid(ax: Axes, x0: float, x1: float, y0: float, y1: float) -> None:
    """ECG paper from (x0, y0) to (x1, y1) mm; lines sit on whole millimetres, every 5th one bold."""
    xs = np.arange(np.ceil(x0), np.floor(x1) + 0.01, 1.0)
    ys = np.arange(np.ceil(y0), np.floor(y1) + 0.01, 1.0)
    minor = [((x, y0), (x, y1)) for x in xs if x % 5] + [((x0, y), (x1, y)) for y in ys if y % 5]
    major = [((x, y0), (x, y1)) for x in xs if not x % 5] + [((x0, y), (x1, y)) for y in ys if not y % 5]
    ax.add_collection(LineCollection(minor, colors=_MINOR_COLOUR, linewidths=0.3, zorder=0))
    ax.add_collection(LineCollection(major, colors=_MAJOR_COLOUR, linewidths=0.6, zorder=0))


def _calibration_pulse(baseline: float) -> NDArray[np.float64]:
    """The 1 mV x 0.2 s standardisation pulse printed left of each row, ending at x = -1 mm."""
    x0, x1 = -_LEFT_MM + 1.0, -_LEFT_MM + 1.0 + 0.2 * _MM_PER_S
    top = baseline + _MM_PER_MV
    return np.array([(x0 - 1.0, baseline), (x0, baseline), (x0, top), (x1, top), (x1, baseline),
                     (x1 + 1.0, baseline)])


def plot_ecg(signal: NDArray[np.floating], fs: float, *, title: str | None = None, rhythm_lead: str = "II",
             fig: Figure | None = None, ax: Axes | None = None, linewidth: float = 0.6) -> Figure:
    """Plot a 12-lead ECG on ECG paper (3x4 panels of 2.5 s + a full-length rhythm strip).

    Parameters
    ----------
    signal : NDArray[np.floating], shape (12, n_samples)
        Millivolts in :data:`ecgkit.record.LEADS` order (e.g. ``Record.signal``).
    fs : float
        Sampling frequency, Hz.
    title : str or None
        Printed above the grid.
    rhythm_lead : str
        Lead of the bottom rhythm strip.
    fig, ax : matplotlib Figure / Axes, optional
        Draw into this axes (or a new axes filling ``fig``); by default a new Figure sized to the
        paper (1 inch = 25.4 mm) is made.
    linewidth : float
        Trace line width, points.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not shown; save it with ``fig.savefig``).

    Raises
    ------
    SignalError
        If ``signal`` is not (12, n) or ``fs`` is not positive.

    Examples
    --------
    >>> fig = plot_ecg(record.signal, record.fs, title=record.record_id)  # doctest: +SKIP
    >>> fig.savefig("ecg.png", dpi=150)  # doctest: +SKIP
    """
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[0] != len(LEADS) or sig.shape[1] < 2:
        raise SignalError(f"plot_ecg needs a (12, n_samples) array in millivolts, got shape {sig.shape}")
    if not fs > 0:
        raise SignalError(f"plot_ecg needs a positive sampling frequency, got {fs}")
    if rhythm_lead not in LEADS:
        raise SignalError(f"rhythm lead {rhythm_lead!r} is not one of {', '.join(LEADS)}")
    sig = np.nan_to_num(sig)
    n = sig.shape[1]
    duration = n / fs
    panel_s = duration / 4.0
    width_mm = duration * _MM_PER_S
    height_mm = 4 * _ROW_MM
    samples_per_panel = int(round(panel_s * fs))
    # paper (mm): rows at fixed baselines; extra paper, in whole 5 mm squares, where a trace of the
    # top row rises above it or the rhythm strip dips below it
    strip = sig[LEADS.index(rhythm_lead)]
    top_row = np.concatenate([sig[LEADS.index(lead), c * samples_per_panel:(c + 1) * samples_per_panel + 1]
                              for c, lead in enumerate(LAYOUT[0])])
    rise_mm = (height_mm - 0.5 * _ROW_MM) + _MM_PER_MV * float(top_row.max()) + 2.0 - height_mm
    dip_mm = 2.0 - (0.5 * _ROW_MM + _MM_PER_MV * float(strip.min()))
    y_lo = -5.0 * np.ceil(max(dip_mm, 0.0) / 5.0)
    y_hi = height_mm + 5.0 * np.ceil(max(rise_mm, 0.0) / 5.0)
    x_lo = -_LEFT_MM
    if ax is None:
        if fig is None:
            fig = Figure(figsize=((width_mm - x_lo) / 25.4 + 0.4,
                                  (y_hi - y_lo) / 25.4 + (0.6 if title else 0.3)))
        top = 0.98 if not title else 1.0 - 0.45 / fig.get_figheight()
        ax = fig.add_axes((0.01, 0.01, 0.98, top - 0.01))
    elif fig is None:
        parent = ax.get_figure()
        if not isinstance(parent, Figure):
            raise SignalError("plot_ecg was given an axes that belongs to no figure")
        fig = parent
    _grid(ax, x_lo, width_mm, y_lo, y_hi)
    t_mm = np.arange(n) / fs * _MM_PER_S
    segments: list[NDArray[np.float64]] = []
    pulses: list[NDArray[np.float64]] = []
    for r, row in enumerate(LAYOUT):
        baseline = height_mm - (r + 0.5) * _ROW_MM
        pulses.append(_calibration_pulse(baseline))
        for c, lead in enumerate(row):
            lo, hi = c * samples_per_panel, min((c + 1) * samples_per_panel + 1, n)
            y = baseline + sig[LEADS.index(lead), lo:hi] * _MM_PER_MV
            segments.append(np.column_stack([t_mm[lo:hi], y]))
            ax.text(t_mm[lo] + 1.0, baseline + 8.0, lead, fontsize=7, va="bottom", ha="left",
                    bbox=_LABEL_BOX, zorder=3)
        for c in range(1, 4):  # lead-change marks
            x = c * panel_s * _MM_PER_S
            ax.plot([x, x], [baseline - 3, baseline + 3], color=_TRACE_COLOUR, lw=linewidth)
    base_r = 0.5 * _ROW_MM
    pulses.append(_calibration_pulse(base_r))
    segments.append(np.column_stack([t_mm, base_r + strip * _MM_PER_MV]))
    ax.text(1.0, base_r + 8.0, rhythm_lead, fontsize=7, va="bottom", ha="left",
            bbox=_LABEL_BOX, zorder=3)
    ax.add_collection(LineCollection(segments, colors=_TRACE_COLOUR, linewidths=linewidth, zorder=2))
    ax.add_collection(LineCollection(pulses, colors=_TRACE_COLOUR, linewidths=linewidth, zorder=1.5))
    ax.set_xlim(x_lo, width_mm)
    ax.set_ylim(y_lo, y_hi)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(width_mm - 1, y_lo + 1, f"{_MM_PER_S:g} mm/s  {_MM_PER_MV:g} mm/mV  {fs:g} Hz", fontsize=6,
            ha="right", va="bottom", bbox=_LABEL_BOX, zorder=3)
    if title:
        fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    return fig


def ecg_panel_data(fig: Figure) -> list[Any]:
    """The trace segments drawn by :func:`plot_ecg` (13 arrays of (x_mm, y_mm)), for checks and tests."""
    ax = fig.axes[0]
    for coll in ax.collections:
        if isinstance(coll, LineCollection) and coll.get_zorder() == 2:
            return [np.asarray(s) for s in coll.get_segments()]
    return []
