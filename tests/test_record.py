"""Canonical lead names and the Record invariants."""
from __future__ import annotations

import numpy as np
import pytest

from ecgkit.errors import SignalError
from ecgkit.record import LEADS, Record, canonical_lead, lead_order


@pytest.mark.parametrize("name,expected", [
    ("I", "I"), ("i", "I"), ("Lead II", "II"), (" III ", "III"), ("AVR", "aVR"), ("avr", "aVR"),
    ("aVL", "aVL"), ("MDC_ECG_LEAD_AVF", "aVF"), ("V1 ", "V1"), ("v6", "V6"), ("MLII", None), ("vx", None),
    ("V7", None), ("", None), ("ECG II", "II"), ("ECG Lead V1", "V1"), ("ekg_avf", "aVF"), ("DI", "I"),
    ("DIII", "III"), ("D2", "II"), ("Lead_aVL", "aVL"), ("ECG", None), ("-aVR", None), ("V1-V2", None),
])
def test_canonical_lead(name: str, expected: str | None) -> None:
    assert canonical_lead(name) == expected


def test_lead_order_maps_source_channels() -> None:
    names = ["V6", "V5", "V4", "V3", "V2", "V1", "AVF", "AVL", "AVR", "III", "II", "I", "vx"]
    assert lead_order(names).tolist() == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]


def test_lead_order_names_missing_leads() -> None:
    names = [lead for lead in LEADS if lead != "V3"]
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3; the source has I, II"):
        lead_order(names, record_id="r1")


def test_two_lead_record_is_not_a_12_lead_ecg() -> None:
    with pytest.raises(SignalError, match="not a 12-lead ECG: 2 channel"):
        lead_order(["MLII", "V5"], record_id="100")


def test_record_enforces_shape_and_dtype() -> None:
    rec = Record("r", None, np.zeros((12, 10), dtype=np.float64), 500.0, "wfdb", "x.hea")
    assert rec.signal.dtype == np.float32 and rec.n_samples == 10 and rec.duration_s == 0.02
    assert rec.native_fs == 500.0
    with pytest.raises(SignalError, match=r"shape \(12, n_samples\), got \(8, 10\)") as err:
        Record("r2", None, np.zeros((8, 10), dtype=np.float32), 500.0, "wfdb", "x.hea")
    assert "r2" in str(err.value)
