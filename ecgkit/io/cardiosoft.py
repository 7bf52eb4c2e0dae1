"""Reader for GE CardioSoft resting ECG XML (root element ``CardiologyXML``).

Layout (CardioSoft V6.x):

- ``StripData``: the 10 s 12-lead rhythm record: ``SampleRate`` (Hz), ``Resolution``
  (``units="uVperLsb"``), ``ChannelSampleCountTotal`` and one ``WaveformData lead="..."`` per lead
  holding comma-separated integers. This is the waveform ecgkit reads.
- ``MedianSamples`` is a 1.2 s representative beat and is never used. ``FullDisclosure`` holds a
  longer multiplexed recording whose channel layout is not documented; it is not used either.
- ``Interpretation/Conclusion/ConclusionText`` (the final, possibly edited conclusion) and
  ``Interpretation/Diagnosis/DiagnosisText`` (the analysis program's statements) hold the
  statement lines; ``---`` lines are separators.
- ``PatientInfo/PID``, ``Age units=...``, ``Gender``; ``ObservationDateTime`` with one child per field.
  Names are read only to remove them from the statements (never kept); birth dates are never read.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
from lxml import etree

from ecgkit.errors import FormatError, SignalError
from ecgkit._deid import names_repair, scrub_names
from ecgkit.io._leads import to_canonical
from ecgkit.io._limits import check_fs, check_scale, cleaned_repair
from ecgkit.io._xml import find, findall, local_name, parse_number_list, parse_xml, text
from ecgkit.record import Record

logger = logging.getLogger(__name__)

# Resolution units -> millivolts per unit.
_UNIT_TO_MV = {"uvperlsb": 1e-3, "nvperlsb": 1e-6, "mvperlsb": 1.0}
# Age units -> years per unit.
_AGE_UNITS = {"years": 1.0, "months": 1 / 12, "weeks": 7 / 365.25, "days": 1 / 365.25}
_SEX = {"MALE": "M", "M": "M", "FEMALE": "F", "F": "F"}


def _statements(root: etree._Element, cleaned: list[str]) -> list[str]:
    lines = [text(e, cleaned=cleaned) for e in findall(root, "Interpretation/Conclusion/ConclusionText")]
    if not any(lines):
        lines = [text(e, cleaned=cleaned) for e in findall(root, "Interpretation/Diagnosis/DiagnosisText")]
    out = []
    for line in lines:
        if not line or not line.strip("-= "):
            continue  # empty or a separator such as "---"
        if line.lower().startswith("confirmed by"):
            continue
        out.append(line)
    return out


def _acquired_at(root: etree._Element) -> datetime | None:
    obs = find(root, "ObservationDateTime")
    if obs is None:
        return None
    try:
        fields = ("Year", "Month", "Day", "Hour", "Minute", "Second")
        y, mo, d, h, mi, s = (int(text(obs, name) or "") for name in fields)
        return datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None


def _age(root: etree._Element) -> float | None:
    el = find(root, "PatientInfo/Age")
    value = text(el)
    if el is None or value is None:
        return None
    factor = _AGE_UNITS.get((el.get("units") or "years").lower())
    try:
        return None if factor is None else float(value) * factor
    except ValueError:
        return None


def read_cardiosoft(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read a GE CardioSoft XML resting ECG at its native sampling frequency and length.

    Parameters
    ----------
    path : str or Path
        The ``.xml`` file (root element ``CardiologyXML``).
    record_id : str or None
        Record id; default: the file stem.

    Returns
    -------
    Record
        ``signal`` float32 mV, shape (12, ChannelSampleCountTotal) from ``StripData``;
        ``source_format="cardiosoft"``; ``statements`` from ``ConclusionText`` (or ``DiagnosisText``
        when there is no conclusion), separators and "Confirmed by" lines removed.

    Raises
    ------
    FormatError
        Malformed XML, not a CardioSoft file, no ``StripData`` waveform, or unknown units.
    SignalError
        A lead is missing, not numeric, or has a sample count other than the declared one.

    Examples
    --------
    >>> rec = read_cardiosoft("../shared/data/ge-cardiosoft/example-XML1.xml")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs, rec.statements[0]
    ((12, 5000), 500.0, 'Sinus bradycardia')
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    root = parse_xml(path, record_id=rid)
    if local_name(root) != "CardiologyXML":
        raise FormatError(f"root element <{local_name(root)}> is not CardioSoft's <CardiologyXML>",
                          path=path, record_id=rid)
    strip = find(root, "StripData")
    if strip is None:
        raise FormatError("no rhythm waveform: <StripData> is missing", path=path, record_id=rid)
    try:
        fs = float(text(strip, "SampleRate") or "")
    except ValueError as exc:
        raise FormatError("StripData/SampleRate is missing or not a number",
                          path=path, record_id=rid) from exc
    check_fs(fs, what="StripData/SampleRate", path=path, record_id=rid)
    res_el = find(strip, "Resolution")
    unit = ((res_el.get("units") if res_el is not None else None) or "uVperLsb").lower()
    if unit not in _UNIT_TO_MV:
        raise FormatError(f"StripData/Resolution has unknown units {unit!r}", path=path, record_id=rid)
    try:
        mv_per_lsb = float(text(res_el) or "") * _UNIT_TO_MV[unit]
    except ValueError as exc:
        raise FormatError("StripData/Resolution is missing or not a number",
                          path=path, record_id=rid) from exc
    check_scale(mv_per_lsb, what="StripData/Resolution", path=path, record_id=rid)
    declared = text(strip, "ChannelSampleCountTotal")

    waves = findall(strip, "WaveformData")
    if not waves:
        raise FormatError("no rhythm waveform: <StripData> has no <WaveformData>", path=path, record_id=rid)
    names = [w.get("lead") or "" for w in waves]
    columns = [parse_number_list(w.text, sep=",", what=f"lead {name}", path=path, record_id=rid)
               for w, name in zip(waves, names)]
    n_expected = int(declared) if declared and declared.isdigit() else len(columns[0])
    for name, col in zip(names, columns):
        if len(col) != n_expected:
            raise SignalError(f"lead {name} has {len(col)} samples, expected {n_expected} "
                              f"(ChannelSampleCountTotal)", path=path, record_id=rid)
    data = np.stack(columns).astype(np.float32) * np.float32(mv_per_lsb)
    signal, repairs = to_canonical(names, data, path=str(path), record_id=rid)

    sex = _SEX.get((text(root, "PatientInfo/Gender") or "").upper())
    cleaned: list[str] = []
    patient_id = text(root, "PatientInfo/PID", cleaned=cleaned)
    statements = _statements(root, cleaned)
    if cleaned:
        repairs = tuple(repairs) + (cleaned_repair(cleaned),)
    # the names are read only to be removed from the statements, and go no further
    statements, n_names = scrub_names(statements, (text(root, f"PatientInfo/Name/{tag}") for tag in (
        "FamilyName", "GivenName", "MiddleName")))
    repairs = tuple(repairs) + names_repair(n_names)
    return Record(
        record_id=rid,
        patient_id=patient_id,
        signal=signal,
        fs=fs,
        source_format="cardiosoft",
        source_path=str(path),
        statements=statements,
        acquired_at=_acquired_at(root),
        age=_age(root),
        sex=sex,
        native_fs=fs,
        native_leads=tuple(names),
        codes={},
        repairs=repairs,
    )
