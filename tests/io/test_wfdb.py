"""WFDB reader against wfdb-python (the reference implementation) on real PTB-XL, Challenge and PTB files."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.signal import resample_poly

from ecgkit.errors import FormatError, SignalError
from ecgkit.io import read_native, read_record
from ecgkit.io.wfdb import read_wfdb
from ecgkit.record import LEADS


def _copy_record(src_hea: Path, dst_dir: Path) -> Path:
    for f in src_hea.parent.glob(src_hea.stem + ".*"):
        shutil.copy(f, dst_dir / f.name)
    return dst_dir / src_hea.name


def test_ptbxl_record1_equals_rdsamp(ptbxl_record1: Path) -> None:
    rec = read_record(ptbxl_record1)
    ref, fields = wfdb.rdsamp(str(ptbxl_record1.with_suffix("")))
    assert rec.signal.shape == (12, 5000)
    assert rec.signal.dtype == np.float32
    assert rec.fs == 500.0 and rec.native_fs == 500.0
    # PTB-XL stores leads in canonical order already (upper-case AVR/AVL/AVF)
    assert [n.upper() for n in fields["sig_name"]] == [lead.upper() for lead in LEADS]
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6, rtol=0)
    assert rec.native_leads == tuple(fields["sig_name"])
    assert rec.record_id == "00001_hr" and rec.source_format == "wfdb" and rec.repairs == ()


def test_challenge_mat_record_with_snomed_statements(shared_data: Path) -> None:
    hea = shared_data / "cinc2021" / "E07500.hea"
    rec = read_record(hea)
    ref, _ = wfdb.rdsamp(str(hea.with_suffix("")))
    np.testing.assert_allclose(rec.signal, ref.T, atol=1e-6, rtol=0)
    # header: "# Dx: 67741000119109,426177001", "# Age: 78", "# Sex: Male"
    assert rec.codes == {"snomed": ["67741000119109", "426177001"]}
    assert rec.statements == ["Left atrial enlargement", "Sinus bradycardia"]
    assert rec.age == 78.0 and rec.sex == "M"


def test_every_challenge_record_reads(shared_data: Path) -> None:
    for hea in sorted((shared_data / "cinc2021").glob("*.hea")):
        rec = read_record(hea)
        assert rec.signal.shape == (12, 5000), hea.name
        assert len(rec.statements) == len(rec.codes["snomed"]) >= 1
        assert not any(s.startswith("SNOMED-CT ") for s in rec.statements), (hea.name, rec.statements)


def test_ptb_diagnostic_15_signals_resampled_to_500hz(shared_data: Path) -> None:
    hea = shared_data / "physionet-samples" / "s0010_re.hea"
    native = read_native(hea)
    assert native.fs == 1000.0 and native.n_samples == 38400
    assert len(native.native_leads) == 15 and native.native_leads[-3:] == ("vx", "vy", "vz")
    rec = read_record(hea, fs=500)
    assert rec.signal.shape == (12, 19200)  # 38.4 s kept
    assert rec.duration_s == pytest.approx(38.4)
    assert rec.repairs == ("resampled 1000->500 Hz",)
    ref, _ = wfdb.rdsamp(str(hea.with_suffix("")), channels=list(range(12)))
    expected = resample_poly(ref.T, 1, 2, axis=1)
    np.testing.assert_allclose(rec.signal, expected, atol=1e-4)
    assert rec.age == 81.0 and rec.sex == "F" and rec.acquired_at.year == 1990
    # "Reason for admission", the acute infarct's site and "Additional diagnoses"; "Former infarction: no" is not one
    assert rec.statements == ["Myocardial infarction", "Acute infarction (localization): infero-latera",
                              "Diabetes mellitus"]


def test_crop_and_pad(ptbxl_record1: Path) -> None:
    assert read_record(ptbxl_record1, seconds=8).signal.shape == (12, 4000)
    padded = read_record(ptbxl_record1, seconds=12)
    assert padded.signal.shape == (12, 6000)
    assert np.all(padded.signal[:, 5000:] == 0)
    assert padded.repairs == ("padded 5000->6000 samples",)
    with pytest.raises(SignalError, match="shorter than the required 12 s"):
        read_record(ptbxl_record1, seconds=12, short="reject")


def test_truncated_dat_is_an_error(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    dat = hea.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:70000])
    with pytest.raises(SignalError) as err:
        read_wfdb(hea)
    msg = str(err.value)
    assert "00001_hr" in msg and "truncated" in msg and "120000 bytes" in msg and "70000 bytes" in msg


def test_header_promising_more_samples_is_an_error(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    hea.write_text(hea.read_text().replace("00001_hr 12 500 5000", "00001_hr 12 500 6000"))
    with pytest.raises(SignalError, match="promises 6000 samples"):
        read_wfdb(hea)


def test_missing_lead_is_an_error_not_a_zero_row(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    hea.write_text(hea.read_text().replace(" 0 V3\n", " 0 X3\n"))
    with pytest.raises(SignalError, match=r"missing lead\(s\) V3") as err:
        read_wfdb(hea)
    assert "00001_hr" in str(err.value)


def test_non_utf8_header(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    hea.write_bytes(hea.read_bytes() + "# Kommentar: gr\xf6\xdfe\n".encode("latin-1"))
    with pytest.raises(FormatError, match="not UTF-8") as err:
        read_wfdb(hea)
    assert str(hea) in str(err.value)


def test_unusual_fs_is_resampled(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    hea.write_text(hea.read_text().replace("00001_hr 12 500 5000", "00001_hr 12 250 5000"))
    rec = read_record(hea, fs=500)
    assert rec.native_fs == 250.0 and rec.signal.shape == (12, 10000)


def test_lead_names_match_case_and_spelling_insensitively(ptbxl_record1: Path, tmp_path: Path) -> None:
    hea = _copy_record(ptbxl_record1, tmp_path)
    text = hea.read_text()
    lines = text.splitlines()
    # shuffle spellings and order: reversed channel order with mixed spelling
    sig = lines[1:13]
    renamed = [ln.rsplit(" ", 1)[0] + " " + name for ln, name in
               zip(sig, ["i", "Lead II", "III ", "avr", "aVL", "AVF", "v1", "V2", "V3", "v4", "V5", "v6"])]
    hea.write_text("\n".join([lines[0]] + renamed[::-1]) + "\n")
    # The .dat keeps its byte order, so file channel k is now described by the line of lead 11-k
    # (all PTB-XL channels share gain 1000 and baseline 0). The reader must follow the names:
    # the row it calls V6 holds file channel 0, the row it calls I holds file channel 11.
    rec = read_wfdb(hea)
    ref = read_wfdb(ptbxl_record1)
    assert rec.native_leads == ("v6", "V5", "v4", "V3", "V2", "v1", "AVF", "aVL", "avr", "III", "Lead II", "i")
    np.testing.assert_array_equal(rec.signal, ref.signal[::-1])
