"""The canonical ECG record: 12 leads in a fixed order, float32 millivolts.

Every reader in :mod:`ecgkit.io` returns a :class:`Record`; every later stage trusts its invariants
(validated once, here): ``signal`` is float32, C-contiguous, shape ``(12, n_samples)`` in
:data:`LEADS` order, in millivolts, sampled at ``fs`` Hz.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from ecgkit.errors import SignalError

#: The canonical 12-lead order, used by every signal array in ecgkit.
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

_LEAD_INDEX = {name.upper(): i for i, name in enumerate(LEADS)}
# Spellings seen in exports beyond case and spacing: "MDC_ECG_LEAD_*" (HL7 aECG / DICOM), "Lead II",
# "ECG II", "ECG Lead II", "AVR", "DII"; "-aVR" is a different lead (inverted) and is not accepted.
_LEAD_PREFIX = re.compile(r"^(?:MDC_ECG_LEAD_|(?:ECG|EKG)?[\s_-]*LEAD[\s_-]*|(?:ECG|EKG)[\s_-]+)",
                          re.IGNORECASE)
_LEAD_JUNK = re.compile(r"[\s_\-.]+")
# "DI, DII, DIII" (D for Einthoven's derivations) is the usual spelling in Brazil, France, Italy, Spain
_LEAD_ALIASES = {"1": "I", "2": "II", "3": "III", "AR": "aVR", "AL": "aVL", "AF": "aVF",
                 "DI": "I", "DII": "II", "DIII": "III", "D1": "I", "D2": "II", "D3": "III"}


@functools.lru_cache(maxsize=1024)  # exports repeat a handful of spellings millions of times
def canonical_lead(name: str) -> str | None:
    """Map a source lead name to its canonical spelling, or ``None`` if it is not one of the 12.

    Matching ignores case, surrounding and inner whitespace, underscores and dots, and common
    prefixes (``"Lead "``, ``"MDC_ECG_LEAD_"``).

    Examples
    --------
    >>> canonical_lead("AVR"), canonical_lead(" v1 "), canonical_lead("MDC_ECG_LEAD_II"), canonical_lead("vx")
    ('aVR', 'V1', 'II', None)
    """
    stripped = _LEAD_PREFIX.sub("", name.strip())
    if stripped.startswith(("-", "\u2212")):  # -aVR (Cabrera display) is the inverted lead, not aVR
        return None
    key = _LEAD_JUNK.sub("", stripped).upper()
    key = _LEAD_ALIASES.get(key, key)
    idx = _LEAD_INDEX.get(key.upper())
    return None if idx is None else LEADS[idx]


def lead_order(names: Iterable[str], *, path: str | None = None, record_id: str | None = None) -> NDArray[np.int64]:
    """Return, for each canonical lead, the index of the source channel that holds it.

    Extra channels (Frank XYZ leads, rhythm channels) are ignored; when a lead appears twice the
    first occurrence wins.

    Raises
    ------
    SignalError
        If any of the 12 leads is missing (naming the missing ones and the leads found).
    """
    names = list(names)
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        canon = canonical_lead(name)
        if canon is not None and canon not in found:
            found[canon] = i
    missing = [lead for lead in LEADS if lead not in found]
    if len(found) < 3:
        raise SignalError(
            f"not a 12-lead ECG: {len(names)} channel(s) ({', '.join(map(str, names)) or 'none'}), "
            f"{len(found)} of the 12 standard leads", path=path, record_id=record_id)
    if missing:
        raise SignalError(
            f"missing lead(s) {', '.join(missing)}; the source has {', '.join(map(str, names)) or 'no leads'}",
            path=path,
            record_id=record_id,
        )
    return np.array([found[lead] for lead in LEADS], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Record:
    """One 12-lead ECG in canonical form.

    Attributes
    ----------
    record_id : str
        Identifier unique within the source (file stem, or the export's own id).
    patient_id : str or None
        Patient identifier as given by the source; ``None`` when the source has none.
    signal : NDArray[np.float32], shape (12, n_samples)
        Millivolts, leads in :data:`LEADS` order.
    fs : float
        Sampling frequency of ``signal`` in Hz.
    source_format : str
        Reader that produced it: ``"wfdb"``, ``"muse"``, ``"cardiosoft"``, ``"dicom"``, ``"aecg"``, ``"philips"``,
        ``"scp"``, ``"edf"``, ``"ishne"``, ``"mfer"``.
    source_path : str
        The file read (for WFDB, the header).
    statements : list of str
        Diagnostic statements in source order (MUSE ``StmtText`` lines, SNOMED names, PTB-XL report).
    acquired_at : datetime or None
        Acquisition date and time (naive, local time of the source).
    age : float or None
        Age in years at acquisition.
    sex : str or None
        ``"M"``, ``"F"`` or ``None``.
    native_fs : float
        Sampling frequency in the source before resampling.
    native_leads : tuple of str
        Channel names in the source, in source order, before canonicalisation.
    codes : dict
        Structured diagnosis codes from the source, e.g. ``{"snomed": ["426783006"]}`` or
        ``{"scp": {"NORM": 100.0}}``; empty when the source has none.
    repairs : tuple of str
        Visible record of every change made to the source signal (``"resampled 1000->500 Hz"``,
        ``"padded 4000->5000 samples"``, ``"derived III,aVR,aVL,aVF from I,II"``).
    qc_flags : tuple of str or None
        Signal QC findings on the native signal (see :func:`ecgkit.signal.qc_flags`); records from
        :func:`ecgkit.io.read_record` always carry them, ``None`` means "not computed".
    """

    record_id: str
    patient_id: str | None
    signal: NDArray[np.float32]
    fs: float
    source_format: str
    source_path: str
    statements: list[str] = field(default_factory=list)
    acquired_at: datetime | None = None
    age: float | None = None
    sex: str | None = None
    native_fs: float | None = None
    native_leads: tuple[str, ...] = ()
    codes: Mapping[str, Any] = field(default_factory=dict)
    repairs: tuple[str, ...] = ()
    qc_flags: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        sig = self.signal
        if not isinstance(sig, np.ndarray) or sig.ndim != 2 or sig.shape[0] != len(LEADS):
            shape = getattr(sig, "shape", None)
            raise SignalError(f"signal must have shape (12, n_samples), got {shape}",
                              path=self.source_path, record_id=self.record_id)
        if sig.dtype != np.float32 or not sig.flags.c_contiguous:
            object.__setattr__(self, "signal", np.ascontiguousarray(sig, dtype=np.float32))
        if self.native_fs is None:
            object.__setattr__(self, "native_fs", float(self.fs))

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.n_samples / float(self.fs)

    @property
    def leads(self) -> tuple[str, ...]:
        """Lead names of ``signal`` rows (always :data:`LEADS`)."""
        return LEADS
