"""Reader for Philips Sierra ECG XML 1.03 / 1.04 / 1.04.01 (root element ``restingecgdata``).

Layout and quirks:

- ``waveforms/parsedwaveforms``: base64 text, XLI-compressed (see :mod:`ecgkit.io._xli`) or raw
  little-endian int16. 1.04 names the attributes ``compression``, ``leadlabels``,
  ``samplespersecond``, ``resolution`` (uV per LSB); 1.03 uses ``compressmethod`` and keeps the
  rate and resolution in ``dataacquisition/signalcharacteristics`` (``samplingrate``,
  ``signalresolution``) and has no lead labels (standard 12-lead order).
- The blob holds more chunks than labelled leads (16 for 12 leads on the files seen); the extra
  chunks carry only the calibration pulse and are ignored.
- ``durationperchannel`` is 11000 ms, but the last second is not ECG: zeros and a 1 mV, 200 ms
  calibration pulse. ecgkit drops that trailer and records it in ``repairs``.
- III, aVR, aVL and aVF are stored as residuals of the leads derived from I and II, in LSB::

      III = II - I - III_stored
      aVR = -aVR_stored - floor((I + II) / 2)
      aVL = floor((I - III) / 2) - aVL_stored
      aVF = floor((II + III) / 2) - aVF_stored

  After that reconstruction III equals II - I (the stored residual is 0 outside the calibration
  pulse on the example files).
- Statements: ``interpretations/interpretation/statement/leftstatement`` in order, then the
  ``severity`` line (e.g. "ABNORMAL ECG"); the ``rightstatement`` (the criteria behind a statement,
  "QRSd >115mS, not LBBB/RBBB") and the ``mdsignatureline`` ("Confirmed by ...") are not statements.
"""
from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from pathlib import Path

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from ecgkit.errors import FormatError, SignalError
from ecgkit._deid import names_repair, scrub_names
from ecgkit.io._leads import to_canonical
from ecgkit.io._limits import MAX_SAMPLES, check_fs, check_scale, cleaned_repair, excerpt
from ecgkit.io._xli import xli_decode
from ecgkit.io._xml import age_in_years, find, findall, local_name, parse_xml, text
from ecgkit.record import Record, canonical_lead

logger = logging.getLogger(__name__)

#: Leads in storage order when the file does not label them (1.03).
DEFAULT_LABELS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Seconds at the end of ``durationperchannel`` that hold no ECG (zeros + calibration pulse).
TRAILER_S = 1.0
_SEX = {"MALE": "M", "FEMALE": "F"}
_AGE_UNITS = {"years": 1.0, "months": 1 / 12, "weeks": 7 / 365.25, "days": 1 / 365.25}


def _attr_or_text(pw: etree._Element, root: etree._Element, attrs: tuple[str, ...],
                  paths: tuple[str, ...]) -> str | None:
    for name in attrs:
        value = pw.get(name)
        if value is not None and value.strip():
            return value.strip()
    for p in paths:
        value = text(root, p)
        if value is not None:
            return value
    return None


def _number(value: str | None, what: str, path: Path, rid: str) -> float:
    try:
        return float(value or "")
    except ValueError as exc:
        raise FormatError(f"{what} is missing or not a number ({excerpt(value or '')!r})", path=path,
                          record_id=rid) from exc


def _decode_blob(pw: etree._Element, n_samples: int, n_leads: int, path: Path,
                 rid: str) -> list[NDArray[np.int16]]:
    encoding = (pw.get("dataencoding") or "Base64").strip().lower()
    if encoding != "base64":
        raise FormatError(f"unsupported waveform encoding {pw.get('dataencoding')!r}",
                          path=path, record_id=rid)
    bits = pw.get("bitspersample") or pw.get("nbitspersample") or "16"
    if bits.strip() != "16":
        raise FormatError(f"unsupported {bits} bits per sample (only 16)", path=path, record_id=rid)
    try:
        blob = base64.b64decode("".join((pw.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignalError(f"parsedwaveforms is not valid base64: {exc}", path=path, record_id=rid) from exc
    if not blob:
        raise FormatError("no rhythm waveform: <parsedwaveforms> is empty", path=path, record_id=rid)
    method = (pw.get("compression") or pw.get("compressmethod") or "").strip().upper()
    if pw.get("compressflag", "").strip().lower() == "false":
        method = ""
    if method == "XLI":
        try:
            return xli_decode(blob, n_samples)
        except ValueError as exc:
            raise SignalError(f"XLI decoding failed: {exc}", path=path, record_id=rid) from exc
    if method not in ("", "NONE", "UNCOMPRESSED"):
        raise FormatError(f"unsupported waveform compression {method!r}", path=path, record_id=rid)
    values = np.frombuffer(blob[: len(blob) // 2 * 2], dtype="<i2")
    if len(values) < n_samples * n_leads:
        raise SignalError(f"uncompressed waveform has {len(values)} samples, "
                          f"expected {n_samples} x {n_leads}",
                          path=path, record_id=rid)
    return [values[k * n_samples:(k + 1) * n_samples] for k in range(n_leads)]


def _reconstruct_limb_leads(names: list[str], leads: NDArray[np.int32]) -> None:
    """In place: turn the stored III/aVR/aVL/aVF residuals (LSB) into the leads themselves."""
    rows = {canonical_lead(n): k for k, n in enumerate(names)}
    if not all(lead in rows for lead in ("I", "II", "III", "aVR", "aVL", "aVF")):
        return  # leads missing: canonicalisation below raises the SignalError naming them
    i, ii = leads[rows["I"]], leads[rows["II"]]
    iii = ii - i - leads[rows["III"]]
    leads[rows["III"]] = iii
    leads[rows["aVR"]] = -leads[rows["aVR"]] - np.floor_divide(i + ii, 2)
    leads[rows["aVL"]] = np.floor_divide(i - iii, 2) - leads[rows["aVL"]]
    leads[rows["aVF"]] = np.floor_divide(ii + iii, 2) - leads[rows["aVF"]]


def _interpretation(root: etree._Element, cleaned: list[str]) -> tuple[list[str], list[str]]:
    interp = find(root, "interpretations/interpretation")
    if interp is None:
        return [], []
    statements, codes = [], []
    for st in findall(interp, "statement"):
        line = text(st, "leftstatement", cleaned=cleaned)
        if line and not line.lower().startswith("confirmed by"):
            statements.append(line)
        code = text(st, "statementcode")
        if code:
            codes.append(code)
    severity = text(interp, "severity")
    if severity:
        severity = severity.strip("- ").strip()
        if severity:
            statements.append(severity)
    return statements, codes


def _acquired_at(root: etree._Element) -> datetime | None:
    acq = find(root, "dataacquisition")
    if acq is None or not acq.get("date"):
        return None
    try:
        return datetime.fromisoformat(f"{acq.get('date')}T{acq.get('time') or '00:00:00'}")
    except ValueError:
        return None


def _age(root: etree._Element, acquired: datetime | None) -> float | None:
    age = find(root, "patient/generalpatientdata/age")
    if age is None:
        return None
    for unit, factor in _AGE_UNITS.items():
        value = text(age, unit)
        if value is not None:
            try:
                return float(value) * factor
            except ValueError:
                return None
    dob = text(age, "dateofbirth")
    if dob:
        try:
            return age_in_years(datetime.fromisoformat(dob), acquired)
        except ValueError:
            return None
    return None  # the "defaultage" attribute is the analysis program's default, not the patient's age


def read_philips(path: str | Path, *, record_id: str | None = None) -> Record:
    """Read a Philips Sierra ECG XML file at its native sampling frequency (10 s of ECG).

    Parameters
    ----------
    path : str or Path
        The ``.xml`` file (root element ``restingecgdata``; UTF-8 or UTF-16).
    record_id : str or None
        Record id; default: the file stem.

    Returns
    -------
    Record
        ``signal`` float32 mV, shape (12, n) with n = (durationperchannel - 1 s) x fs;
        ``source_format="philips"``; ``codes={"philips": [statement codes]}`` when present.

    Raises
    ------
    FormatError
        Malformed XML, not a Philips file, no waveform, unsupported encoding/compression.
    SignalError
        Base64 or XLI decoding failure, fewer lead chunks or samples than declared, missing leads.

    Examples
    --------
    >>> rec = read_philips("../shared/data/philips/129DYPRG.XML")  # doctest: +SKIP
    >>> rec.signal.shape, rec.fs, rec.statements[0]
    ((12, 5000), 500.0, 'Sinus bradycardia')
    """
    path = Path(path)
    rid = record_id if record_id is not None else path.stem
    root = parse_xml(path, record_id=rid)
    if local_name(root) != "restingecgdata":
        raise FormatError(f"root element <{local_name(root)}> is not Philips' <restingecgdata>",
                          path=path, record_id=rid)
    pw = find(root, "waveforms/parsedwaveforms")
    if pw is None:
        raise FormatError("no rhythm waveform: <waveforms/parsedwaveforms> is missing",
                          path=path, record_id=rid)
    fs = _number(_attr_or_text(pw, root, ("samplespersecond",),
                               ("dataacquisition/signalcharacteristics/samplingrate",)),
                 "sampling rate", path, rid)
    check_fs(fs, path=path, record_id=rid)
    uv_per_lsb = _number(_attr_or_text(pw, root, ("resolution",),
                                       ("dataacquisition/signalcharacteristics/resolution",
                                        "dataacquisition/signalcharacteristics/signalresolution")),
                         "signal resolution (uV per LSB)", path, rid)
    check_scale(uv_per_lsb, what="signal resolution (uV per LSB)", path=path, record_id=rid)
    duration_ms = _number(pw.get("durationperchannel"), "parsedwaveforms@durationperchannel", path, rid)
    if not np.isfinite(duration_ms) or not 0 < duration_ms * fs / 1000.0 <= MAX_SAMPLES:
        raise SignalError(f"parsedwaveforms@durationperchannel {duration_ms:g} ms at {fs:g} Hz is not 1 to "
                          f"{MAX_SAMPLES} samples", path=path, record_id=rid)
    n_samples = int(round(duration_ms * fs / 1000.0))
    labels_attr = (pw.get("leadlabels") or "").split()
    n_leads_attr = pw.get("numberofleads")
    names = labels_attr[: int(n_leads_attr)] if labels_attr and n_leads_attr and n_leads_attr.isdigit() \
        else (labels_attr or list(DEFAULT_LABELS))

    chunks = _decode_blob(pw, n_samples, len(names), path, rid)
    if len(chunks) < len(names):
        missing = " ".join(names[len(chunks):])
        raise SignalError(f"waveform holds {len(chunks)} lead chunks, the file labels {len(names)} "
                          f"leads (no data for {missing})", path=path, record_id=rid)
    for name, chunk in zip(names, chunks):
        if len(chunk) < n_samples:
            raise SignalError(f"lead {name} decodes to {len(chunk)} samples, expected {n_samples} "
                              f"({duration_ms:g} ms at {fs:g} Hz)", path=path, record_id=rid)
    leads = np.stack([c[:n_samples] for c in chunks[: len(names)]]).astype(np.int32)
    _reconstruct_limb_leads(names, leads)

    repairs: list[str] = []
    n_trailer = int(round(TRAILER_S * fs))
    if n_samples > n_trailer:
        n_keep = n_samples - n_trailer
        leads = leads[:, :n_keep]
        repairs.append(f"dropped Philips trailer (zeros + calibration pulse) {n_samples}->{n_keep} samples")
    data = leads.astype(np.float32) * np.float32(uv_per_lsb * 1e-3)
    signal, derived = to_canonical(names, data, path=str(path), record_id=rid)

    cleaned: list[str] = []
    statements, stmt_codes = _interpretation(root, cleaned)
    patient_id = text(root, "patient/generalpatientdata/patientid", cleaned=cleaned)
    if cleaned:
        repairs.append(cleaned_repair(cleaned))
    # the names are read only to be removed from the statements, and go no further
    statements, n_names = scrub_names(statements, (text(root, f"patient/generalpatientdata/name/{tag}")
                                                   for tag in ("lastname", "firstname", "middlename")))
    repairs.extend(names_repair(n_names))
    acquired = _acquired_at(root)
    return Record(
        record_id=rid,
        patient_id=patient_id,
        signal=signal,
        fs=fs,
        source_format="philips",
        source_path=str(path),
        statements=statements,
        acquired_at=acquired,
        age=_age(root, acquired),
        sex=_SEX.get((text(root, "patient/generalpatientdata/sex") or "").upper()),
        native_fs=fs,
        native_leads=tuple(names),
        codes={"philips": stmt_codes} if stmt_codes else {},
        repairs=tuple(repairs) + derived,
    )
