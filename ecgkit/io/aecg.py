"""Reader for HL7 v3 annotated ECG (aECG) XML (root element ``AnnotatedECG``, namespace ``urn:hl7-org:v3``).

Layout: ``component/series`` with ``code code="RHYTHM"`` holds the recording; its
``derivation/derivedSeries`` (``REPRESENTATIVE_BEAT``) is a median beat and is never used. The
series' ``component/sequenceSet`` has one ``component/sequence`` per channel: a time sequence
(``TIME_ABSOLUTE`` or ``TIME_RELATIVE``, ``value/increment`` gives the sampling interval) and one
``SLIST_PQ`` sequence per lead (``code`` ``MDC_ECG_LEAD_*``) whose physical value is
``origin + scale * digit`` in the unit of ``origin``/``scale``. Interpretation statements, when a
device writes them, are ``annotation`` elements coded ``MDC_ECG_INTERPRETATION*`` with a text value.
The subject is ``trialSubject``: ``id/@extension`` (patient id), ``administrativeGenderCode``,
``birthTime`` (used only to compute age; never stored).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from lxml import etree

from ecgkit.errors import FormatError, SignalError
from ecgkit._deid import names_repair, scrub_names
from ecgkit.io._leads import to_canonical
from ecgkit.io._limits import check_fs, check_scale, clean_text, cleaned_repair
from ecgkit.io._xml import age_in_years, find, findall, hl7_datetime, local_name, parse_number_list, parse_xml, text
from ecgkit.record import Record

logger = logging.getLogger(__name__)

_UNIT_TO_MV = {"uv": 1e-3, "\u00b5v": 1e-3, "\u03bcv": 1e-3, "mv": 1.0, "v": 1e3, "nv": 1e-6}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _code(element: etree._Element) -> str:
    code = find(element, "code")
    return (code.get("code") or "") if code is not None else ""


def _rhythm_series(root: etree._Element) -> etree._Element | None:
    series = findall(root, "component/series")
    for s in series:
        if _code(s).upper() == "RHYTHM":
            return s
    return series[0] if series else None


def _quantity(element: etree._Element | None, what: str, table: dict[str, float], path: Path,
              rid: str) -> float:
    """Value of a PQ element converted with ``table`` (value * table[unit])."""
    if element is None:
        raise FormatError(f"{what} is missing", path=path, record_id=rid)
    unit = (element.get("unit") or "").strip().lower()
    if unit not in table:
        raise FormatError(f"{what} has unknown unit {element.get('unit')!r}", path=path, record_id=rid)
    try:
        return float(element.get("value") or "") * table[unit]
    except ValueError as exc:
        raise FormatError(f"{what} value {element.get('value')!r} is not a number", path=path,
                          record_id=rid) from exc


def _statements(root: etree._Element) -> list[str]:
    out = []
    for ann in root.iter("{*}annotation"):
        if not _code(ann).upper().startswith("MDC_ECG_INTERPRETATION"):
            continue
        value = find(ann, "value")
        if value is None or not (value.get(_XSI_TYPE) or "").endswith("ST"):
            continue
        line = text(value) or ""
        if line and not line.lower().startswith("confirmed by"):
            out.append(line)
    return out


def read_aecg(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read an HL7 aECG XML file at its native sampling frequency and length.

    Parameters
    ----------
    path : str or Path
        The ``.xml`` file (root element ``AnnotatedECG``).
    record_id : str or None
        Record id; default: the file stem.

    Returns
    -------
    Record
        ``signal`` float32 mV, shape (12, n_samples) from the RHYTHM series;
        ``source_format="aecg"``; ``statements`` from interpretation annotations ([] when none).

    Raises
    ------
    FormatError
        Malformed XML, not an aECG, no rhythm series, or unknown units.
    SignalError
        A lead is missing, not numeric, or its length differs from the other leads.

    Examples
    --------
    >>> rec = read_aecg("../shared/data/hl7-aecg/subject1_0.xml")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs, rec.patient_id
    ((12, 5000), 500.0, 'subject1')
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    root = parse_xml(path, record_id=rid)
    if local_name(root) != "AnnotatedECG":
        raise FormatError(f"root element <{local_name(root)}> is not HL7 aECG's <AnnotatedECG>",
                          path=path, record_id=rid)
    series = _rhythm_series(root)
    if series is None:
        raise FormatError("no rhythm waveform: no component/series", path=path, record_id=rid)
    sequences = findall(series, "component/sequenceSet/component/sequence")
    interval_s = None
    names: list[str] = []
    columns: list[np.ndarray] = []
    for seq in sequences:
        code = _code(seq)
        value = find(seq, "value")
        if value is None:
            continue
        if code.upper().startswith("TIME_"):
            interval_s = _quantity(find(value, "increment"), f"{code} increment", _TIME_TO_S, path, rid)
            continue
        digits = find(value, "digits")
        if digits is None:
            continue
        origin = _quantity(find(value, "origin"), f"{code} origin", _UNIT_TO_MV, path, rid)
        scale = _quantity(find(value, "scale"), f"{code} scale", _UNIT_TO_MV, path, rid)
        check_scale(scale, what=f"{code} scale", path=path, record_id=rid)
        try:  # digits are integers by the standard; integer parsing is ~10x faster than float
            samples = parse_number_list(digits.text, sep=" ", dtype=np.int32, what=f"lead {code}",
                                        path=path, record_id=rid)
        except SignalError:
            samples = parse_number_list(digits.text, sep=" ", dtype=np.float64, what=f"lead {code}",
                                        path=path, record_id=rid)
        names.append(code)
        columns.append((origin + scale * samples).astype(np.float32))
    if not columns:
        raise FormatError("no rhythm waveform: the RHYTHM series has no lead sequences",
                          path=path, record_id=rid)
    if interval_s is None or not np.isfinite(interval_s) or interval_s <= 0:
        raise FormatError("the RHYTHM series has no time sequence with a positive increment",
                          path=path, record_id=rid)
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        detail = ", ".join(f"{n}={len(c)}" for n, c in zip(names, columns))
        raise SignalError(f"leads have different sample counts: {detail}", path=path, record_id=rid)
    signal, repairs = to_canonical(names, np.stack(columns), path=str(path), record_id=rid)
    fs = check_fs(round(1.0 / interval_s, 6), path=path, record_id=rid)

    subject = find(root, "componentOf/timepointEvent/componentOf/subjectAssignment/subject/trialSubject")
    patient_id = None
    sex = None
    birth = None
    person_names: list[str] = []
    if subject is not None:
        sid = find(subject, "id")
        if sid is not None:
            patient_id, changed = clean_text(sid.get("extension") or sid.get("root") or "")
            if changed:
                repairs = tuple(repairs) + (cleaned_repair(["trialSubject/id"]),)
        person = find(subject, "subjectDemographicPerson")
        if person is not None:
            person_names = [v for v in (text(el) for el in findall(person, "name")) if v]
            gender = find(person, "administrativeGenderCode")
            code = (gender.get("code") or "").upper() if gender is not None else ""
            sex = code if code in ("M", "F") else None
            bt = find(person, "birthTime")
            birth = hl7_datetime(bt.get("value")) if bt is not None else None
    eff = find(root, "effectiveTime")
    acquired = None
    if eff is not None:
        for tag in ("center", "low"):
            el = find(eff, tag)
            if el is not None and acquired is None:
                acquired = hl7_datetime(el.get("value"))
    if acquired is None:
        low = find(series, "effectiveTime/low")
        acquired = hl7_datetime(low.get("value")) if low is not None else None

    # the names are read only to be removed from the statements, and go no further
    statements, n_names = scrub_names(_statements(root), person_names)
    return Record(
        record_id=rid,
        patient_id=patient_id,
        signal=signal,
        fs=fs,
        source_format="aecg",
        source_path=str(path),
        statements=statements,
        acquired_at=acquired,
        age=age_in_years(birth, acquired),
        sex=sex,
        native_fs=fs,
        native_leads=tuple(names),
        codes={},
        repairs=tuple(repairs) + names_repair(n_names),
    )
