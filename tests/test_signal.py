"""Resampling, crop/pad, QC flags, and the fused int16 decoder against NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

from ecgkit.io._decode import decode_int16
from ecgkit.record import LEADS
from ecgkit.signal import lead_stats, qc_flags, qc_flags_from_stats, resample


def test_decode_int16_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(-3000, 3000, size=(997, 15), dtype=np.int16)
    data[5, 3] = -32768  # WFDB missing sample
    data[10:20, 7] = data[:, 7].max()  # plateau at the maximum
    order = np.array([14, 3, 7, 0], dtype=np.int64)
    base = np.array([0, 10, -5, 3], dtype=np.float32)
    inv_gain = np.array([1 / 1000, 1 / 200, 1 / 2000, 1e-3 / 1000], dtype=np.float32)
    out, stats = decode_int16(data, order, base, inv_gain)
    ref = (data[:, order].T.astype(np.float64) - base[:, None]) * inv_gain[:, None]
    ref[1, 5] = np.nan
    np.testing.assert_allclose(out, ref, rtol=1e-6, equal_nan=True)
    ref_stats = lead_stats(ref)
    np.testing.assert_allclose(stats, ref_stats, rtol=1e-6)
    assert stats[1, 4] == 1 and stats[2, 2] >= 11


def test_decode_int16_rejects_bad_order() -> None:
    with pytest.raises(ValueError, match="does not index"):
        decode_int16(np.zeros((4, 2), np.int16), np.array([2]), np.zeros(1, np.float32), np.ones(1, np.float32))


def test_qc_flags_each_problem() -> None:
    t = np.arange(5000) / 500
    # leads of different amplitudes (12 identical ranges would be flagged "identical_ptp")
    sig = (np.sin(2 * np.pi * t)[None, :] * np.linspace(0.6, 1.7, 12)[:, None]).astype(np.float32)
    assert qc_flags(sig, 500) == []
    bad = sig.copy()
    bad[LEADS.index("V3")] = 0.001  # flat
    bad[LEADS.index("II"), 100] = np.nan
    bad[LEADS.index("I")] = np.clip(bad[0], -0.5, 0.5)  # clipped: many samples at both rails
    bad[LEADS.index("V1")] *= 30  # 30 mV: implausible
    assert qc_flags(bad, 500) == ["nan:II", "flat:V3", "amplitude:V1", "clipped:I"]
    assert qc_flags(sig[:, :2000], 500) == ["short:4.0s"]
    all_nan = sig.copy()
    all_nan[LEADS.index("aVF")] = np.nan
    assert qc_flags(all_nan, 500) == ["nan:aVF", "flat:aVF"]
    # flags from precomputed stats equal flags from the array
    assert qc_flags_from_stats(lead_stats(bad), 5000, 500) == qc_flags(bad, 500)


def test_qc_never_changes_data() -> None:
    sig = np.full((12, 5000), np.nan, dtype=np.float32)
    before = sig.copy()
    qc_flags(sig, 500)
    np.testing.assert_array_equal(sig, before)


def test_resample_polyphase_keeps_a_sine() -> None:
    t = np.arange(10000) / 1000
    sig = np.tile(np.sin(2 * np.pi * 5 * t), (12, 1)).astype(np.float32)
    out = resample(sig, 1000, 500)
    assert out.shape == (12, 5000) and out.dtype == np.float32
    expected = np.sin(2 * np.pi * 5 * np.arange(5000) / 500)
    np.testing.assert_allclose(out[:, 100:-100], np.tile(expected, (12, 1))[:, 100:-100], atol=1e-3)
    with pytest.raises(ValueError, match="small rational ratio"):
        resample(sig, 1000, 500 * np.pi)


def test_baseline_offset_and_identical_ptp_flags(ptbxl_record1) -> None:
    import shutil

    from ecgkit.io import read_native

    rec = read_native(ptbxl_record1)
    sig = rec.signal.astype(np.float64)
    assert not any(f.startswith("baseline:") or f == "identical_ptp" for f in rec.qc_flags)
    shifted = sig.copy()
    shifted[LEADS.index("V2")] += 5.0  # a DC offset the export never removed
    assert qc_flags(shifted, 500)[-1:] == ["baseline:V2"]
    lo, hi = sig.min(axis=1, keepdims=True), sig.max(axis=1, keepdims=True)
    normalised = 2 * (sig - lo) / (hi - lo) - 1  # every lead scaled to [-1, 1]
    assert "identical_ptp" in qc_flags(normalised, 500)
    assert "identical_ptp" not in qc_flags(sig, 500)
    # the WFDB fast path computes QC in its decoder; read_native adds the baseline check to it
    hea = ptbxl_record1.read_text().splitlines()
    folder = ptbxl_record1.parent.parent.parent / "offset"
    folder.mkdir(exist_ok=True)
    shutil.copy(ptbxl_record1.with_suffix(".dat"), folder / "00001_hr.dat")
    fields = hea[1].split()
    fields[2] = "1000.0(-4000)/mV"  # baseline -4000: every V of lead I reads 4 mV high
    (folder / "00001_hr.hea").write_text("\n".join([hea[0], " ".join(fields), *hea[2:]]) + "\n")
    assert "baseline:I" in read_native(folder / "00001_hr.hea").qc_flags
