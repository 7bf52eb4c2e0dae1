"""plot_ecg: the 3x4 + rhythm-strip layout on ECG paper, drawn headless."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from ecgkit.errors import SignalError
from ecgkit.plot import LAYOUT, ecg_panel_data, plot_ecg
from ecgkit.record import LEADS


def _ramp_signal() -> np.ndarray:
    # each lead carries its index as a constant offset (mV) so panels can be identified by value
    return np.repeat(np.arange(12, dtype=np.float32)[:, None] * 0.1, 5000, axis=1)


def test_layout_positions_and_scale(tmp_path: Path) -> None:
    sig = _ramp_signal()
    fig = plot_ecg(sig, 500, title="test record")
    assert isinstance(fig, Figure)
    segs = ecg_panel_data(fig)
    assert len(segs) == 13  # 12 panels + rhythm strip
    # 25 mm/s: each panel spans 2.5 s = 62.5 mm; the strip spans 10 s = 250 mm
    widths = [s[:, 0].max() - s[:, 0].min() for s in segs]
    np.testing.assert_allclose(widths[:12], 62.5, atol=0.06)
    assert widths[12] == pytest.approx(249.95, abs=0.06)
    # 10 mm/mV: panel (row r, lead) sits at row baseline + 10 * value
    k = 0
    for r, row in enumerate(LAYOUT):
        baseline = 120 - (r + 0.5) * 30
        for c, lead in enumerate(row):
            np.testing.assert_allclose(segs[k][:, 1], baseline + 10 * 0.1 * LEADS.index(lead), atol=1e-9)
            assert segs[k][0, 0] == pytest.approx(c * 62.5)
            k += 1
    np.testing.assert_allclose(segs[12][:, 1], 15 + 10 * 0.1 * LEADS.index("II"))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(LEADS) <= texts
    out = tmp_path / "ecg.png"
    fig.savefig(out, dpi=50)
    assert out.stat().st_size > 5000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_draws_into_given_axes_and_rejects_bad_shapes() -> None:
    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    assert plot_ecg(_ramp_signal(), 500, ax=ax) is fig
    with pytest.raises(SignalError, match=r"\(12, n_samples\).*\(8, 5000\)"):
        plot_ecg(np.zeros((8, 5000)), 500)
    with pytest.raises(SignalError, match="sampling frequency"):
        plot_ecg(np.zeros((12, 5000)), 0)


def test_tall_traces_get_more_paper_and_rows_start_with_calibration_pulse() -> None:
    sig = np.zeros((12, 5000), dtype=np.float32)
    sig[LEADS.index("V1"), 2600] = 3.2   # top row, third column: peak at 105 + 32 = 137 mm
    sig[LEADS.index("II"), 100] = -2.4   # rhythm strip: trough at 15 - 24 = -9 mm
    fig = plot_ecg(sig, 500)
    ax = fig.axes[0]
    y_lo, y_hi = ax.get_ylim()
    # paper grows in whole 5 mm squares (with >= 2 mm to spare) so that no trace touches the edge
    assert (y_lo, y_hi) == (-15.0, 140.0)
    for seg in ecg_panel_data(fig):
        assert seg[:, 1].min() > y_lo and seg[:, 1].max() < y_hi
    # a quiet signal keeps the standard 4 rows x 30 mm
    assert plot_ecg(_ramp_signal() * 0, 500).axes[0].get_ylim() == (0.0, 120.0)
    # one 1 mV x 0.2 s (10 mm x 5 mm) pulse left of each of the 4 rows, ending before the traces
    pulses = [c for c in ax.collections if c.get_zorder() == 1.5][0].get_segments()
    assert len(pulses) == 4
    for p, baseline in zip(pulses, (105.0, 75.0, 45.0, 15.0)):
        p = np.asarray(p)
        assert p[:, 1].max() - p[:, 1].min() == pytest.approx(10.0)
        assert p[:, 1].min() == pytest.approx(baseline)
        top = p[p[:, 1] == p[:, 1].max(), 0]
        assert top.max() - top.min() == pytest.approx(5.0)
        assert p[:, 0].max() < 0
