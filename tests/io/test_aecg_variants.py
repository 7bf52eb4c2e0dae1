"""HL7 aECG variants built from the standard's example: units, origins and time types it allows.

Each test edits a copy of ``subject1_0.xml`` (text substitution on the real file) the way other
aECG writers fill the same fields, and compares with the reader's output on the original.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ecgkit.errors import FormatError
from ecgkit.io.aecg import read_aecg


@pytest.fixture(scope="module")
def aecg_text(shared_data: Path) -> str:
    return (shared_data / "hl7-aecg" / "subject1_0.xml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def reference(shared_data: Path):
    return read_aecg(shared_data / "hl7-aecg" / "subject1_0.xml")


def _write(tmp_path: Path, text: str, name: str = "variant.xml") -> Path:
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


def test_time_increment_in_milliseconds(aecg_text: str, reference, tmp_path: Path) -> None:
    text = aecg_text.replace('<increment value="0.002" unit="s"/>', '<increment value="2" unit="ms"/>')
    assert text != aecg_text
    rec = read_aecg(_write(tmp_path, text))
    assert rec.fs == 500.0
    np.testing.assert_array_equal(rec.signal, reference.signal)


def test_scale_in_millivolts_with_an_origin(aecg_text: str, reference, tmp_path: Path) -> None:
    text = aecg_text.replace('<scale value="2.5" unit="uV"/>', '<scale value="0.0025" unit="mV"/>')
    text = text.replace('<origin value="0" unit="uV"/>', '<origin value="100" unit="uV"/>')
    rec = read_aecg(_write(tmp_path, text))
    np.testing.assert_allclose(rec.signal, reference.signal + 0.1, atol=1e-5)


@pytest.mark.parametrize("unit", ["\u00b5V", "\u03bcV"])
def test_micro_sign_units(aecg_text: str, reference, tmp_path: Path, unit: str) -> None:
    text = aecg_text.replace('unit="uV"', f'unit="{unit}"')
    rec = read_aecg(_write(tmp_path, text))
    np.testing.assert_array_equal(rec.signal, reference.signal)


def test_relative_time_sequence(aecg_text: str, reference, tmp_path: Path) -> None:
    # TIME_RELATIVE with a GLIST_PQ (head 0 s) instead of TIME_ABSOLUTE with a GLIST_TS
    text = re.sub(r'code="TIME_ABSOLUTE"', 'code="TIME_RELATIVE"', aecg_text)
    text = re.sub(r'xsi:type="GLIST_TS">\s*<head value="[0-9.]+"\s*/>',
                  'xsi:type="GLIST_PQ"><head value="0" unit="s"/>', text)
    assert "TIME_RELATIVE" in text and "GLIST_PQ" in text
    rec = read_aecg(_write(tmp_path, text))
    assert rec.fs == 500.0
    np.testing.assert_array_equal(rec.signal, reference.signal)


def test_unknown_scale_unit_is_an_error(aecg_text: str, tmp_path: Path) -> None:
    text = aecg_text.replace('<scale value="2.5" unit="uV"/>', '<scale value="2.5" unit="mmHg"/>', 1)
    with pytest.raises(FormatError, match="MDC_ECG_LEAD_I scale has unknown unit 'mmHg'") as err:
        read_aecg(_write(tmp_path, text, "mmhg.xml"))
    assert "mmhg" in str(err.value)
