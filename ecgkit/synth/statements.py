"""Write diagnosis statements the way GE MUSE 12SL and typing doctors do, from a set of stated findings.

Phrases live in ``data/synth_phrases.yaml``. Each statement is ``(flag, text)`` with ``flag`` one of
``None``, ``"ENDSLINE"`` or ``"USERINSERT"`` (MUSE ``StmtFlag``). A report is:

1. the rhythm line (``"Atrial fibrillation with rapid ventricular response"``) and its continuation
   lines (``"with 1st degree A-V block"``), the last one flagged ``ENDSLINE``;
2. one line per conduction/hypertrophy finding, plus non-label distractors (hedged, sometimes typo'd);
3. a summary (``"Normal ECG"``, ``"Otherwise normal ECG"``, ``"Abnormal ECG"``);
4. optionally a serial-comparison block (``"When compared with ECG of 12-MAR-2019 10:22,"`` then
   ``"Sinus rhythm has replaced Atrial fibrillation"``, ``"... is no longer present"``, ...),
   consistent with the previous record's stated findings;
5. ``"Confirmed by DOE, JOHN (123) on 3/4/2019 10:45:12 AM"`` (``USERINSERT``).

About one report in six is typed by a doctor instead (``"A-fib"``, ``"RBBB"``, ``"1st AVB"``,
``"PVCs"``, ``"CHB"``), flagged ``USERINSERT``. Every stated finding appears unhedged before any
comparison line; hedges, negations and typos only touch findings that are not ECG-P18 labels.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import yaml

from ecgkit._resources import data_path
from ecgkit.synth.phenotypes import LABELS

Statement = tuple["str | None", str]

_RHYTHM_PRIORITY = ("3AVB", "AFL", "AFIB", "EAR")
_WITH_ORDER = ("1AVB", "2AVB", "VBIG", "VPC", "VT", "APC")
_MORPH_ORDER = ("LBBB", "RBBB", "ILBBB", "IRBBB", "IVCD", "NIVCD", "LVH", "RVH")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


@lru_cache(maxsize=1)
def load_phrases() -> dict[str, Any]:
    """The phrase tables (``data/synth_phrases.yaml``), parsed once per process."""
    with open(data_path("synth_phrases.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _rhythm_key(stated: set[str]) -> str:
    for key in _RHYTHM_PRIORITY:
        if key in stated:
            return key
    return "sinus"


def _style_case(text: str, rng: np.random.Generator) -> str:
    """Harmless surface noise on label phrases: case and spacing only (a normalising matcher ignores it)."""
    u = rng.random()
    if u < 0.03:
        return text.upper()
    if u < 0.05:
        return text.replace(" ", "  ", 1)
    return text


def _typo(text: str, rng: np.random.Generator, phrases: dict[str, Any], p: float = 0.15) -> str:
    if rng.random() >= p:
        return text
    for word, wrong in phrases["typos"].items():
        if word in text:
            return text.replace(word, wrong, 1)
    return text


def _rhythm_line(key: str, hr: int, ratio: float, phrases: dict[str, Any], rng: np.random.Generator) -> str:
    rh = phrases["rhythm"]
    if key == "sinus":
        sub = "sinus_brady" if hr < 60 else "sinus_tachy" if hr > 100 else "sinus_normal"
        return _pick(rng, rh[sub])
    if key == "AFIB":
        return _pick(rng, rh["AFIB_rvr" if hr > 100 else "AFIB_slow" if hr < 55 else "AFIB"])
    if key == "AFL":
        return _pick(rng, rh["AFL_2to1" if 1.7 < ratio < 2.3 else "AFL"])
    if key == "EAR":
        return _pick(rng, rh["EAR_brady" if hr < 60 else "EAR_tachy" if hr > 100 else "EAR"])
    return _pick(rng, rh[key])


def muse_datetime(dt: datetime) -> str:
    """``12-MAR-2019 10:22``, as 12SL prints the date of the ECG compared with."""
    return f"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year} {dt.hour:02d}:{dt.minute:02d}"


def _confirmed_line(acquired: datetime, rng: np.random.Generator, phrases: dict[str, Any]) -> str:
    when = acquired + timedelta(hours=float(rng.uniform(1, 72)))
    hour12 = when.hour % 12 or 12
    ampm = "AM" if when.hour < 12 else "PM"
    return (f"Confirmed by {_pick(rng, phrases['confirmers'])} on {when.month}/{when.day}/{when.year} "
            f"{hour12}:{when.minute:02d}:{when.second:02d} {ampm}")


def _comparison(stated: set[str], previous: tuple[set[str], datetime], rng: np.random.Generator,
                phrases: dict[str, Any]) -> list[Statement]:
    prev, prev_time = previous
    names = phrases["compare_name"]
    out: list[Statement] = [(None, f"When compared with ECG of {muse_datetime(prev_time)},")]
    changes: list[str] = []
    now_r, prev_r = _rhythm_key(stated), _rhythm_key(prev)
    if now_r != prev_r:
        changes.append(f"{names[now_r]} has replaced {names[prev_r]}")
    rhythm_keys = set(_RHYTHM_PRIORITY)
    for label in LABELS:
        if label in rhythm_keys:
            continue
        if label in prev and label not in stated:
            changes.append(f"{names[label]} is no longer present")
        elif label in stated and label not in prev:
            changes.append(f"{names[label]} is now present")
    if not changes:
        changes = [_pick(rng, phrases["no_change"])]
    out.extend(("ENDSLINE", c) for c in changes)
    return out


def _typed_report(stated: set[str], rng: np.random.Generator, phrases: dict[str, Any]) -> list[Statement]:
    typed = phrases["typed"]
    key = _rhythm_key(stated)
    lines = [_pick(rng, typed[key])]
    lines += [_pick(rng, typed[k]) for k in LABELS if k in stated and k != key]
    if rng.random() < 0.6:
        lines.append(_pick(rng, typed["_tail"]))
    if rng.random() < 0.5:  # one line, comma separated, as many doctors type it
        return [("USERINSERT", ", ".join(lines))]
    return [("USERINSERT", line) for line in lines]


def write_statements(stated: set[str], measurements: dict[str, Any], rng: np.random.Generator, *,
                     acquired: datetime, previous: tuple[set[str], datetime] | None = None,
                     typed_p: float = 0.15, comparison_p: float = 0.7) -> list[Statement]:
    """Write the diagnosis statements of one record.

    Parameters
    ----------
    stated : set of str
        ECG-P18 findings the text asserts (the truth, or the truth with label noise).
    measurements : dict
        ``ventricular_rate`` and ``atrial_rate`` (bpm) pick rate-dependent wording.
    rng : numpy.random.Generator
        A generator seeded per record.
    acquired : datetime
        Acquisition time (the "Confirmed by" time follows it).
    previous : (set of str, datetime) or None
        The stated findings and time of the patient's previous record, for a serial comparison.
    typed_p, comparison_p : float
        Probabilities of a doctor-typed report and (given ``previous``) of a comparison block.

    Returns
    -------
    list of (flag, text)
        ``flag`` is ``None``, ``"ENDSLINE"`` or ``"USERINSERT"``.
    """
    phrases = load_phrases()
    hr = int(measurements.get("ventricular_rate") or 75)
    ratio = float(measurements.get("atrial_rate") or hr) / max(hr, 1)
    out: list[Statement]
    if rng.random() < typed_p:
        out = _typed_report(stated, rng, phrases)
    else:
        key = _rhythm_key(stated)
        group = [_style_case(_rhythm_line(key, hr, ratio, phrases, rng), rng)]
        for other in _RHYTHM_PRIORITY:
            if other in stated and other != key:
                group.append(_pick(rng, phrases["line"][other]))
        withs = [w for w in _WITH_ORDER if w in stated]
        if "VBIG" in withs and "VPC" in withs and rng.random() < 0.7:
            withs.remove("VPC")  # "PVCs in a pattern of bigeminy" states both
            group_vpc_done = True
        else:
            group_vpc_done = False
        for w in withs:
            phrase = _pick(rng, phrases["with"][w])
            if w == "VBIG" and not group_vpc_done and "pattern of bigeminy" in phrase:
                phrase = "with ventricular bigeminy"
            group.append(_style_case(phrase, rng))
        if key == "sinus" and not withs and rng.random() < 0.1:
            group.append(_pick(rng, phrases["with"]["_sinus_arrhythmia"]))
        out = [(None, text) for text in group[:-1]] + [("ENDSLINE", group[-1])]
        morph = [m for m in _MORPH_ORDER if m in stated]
        out += [("ENDSLINE", _style_case(_pick(rng, phrases["line"][m]), rng)) for m in morph]
        n_distract = int(rng.choice([0, 0, 0, 1, 1, 2]))
        distract = [str(d) for d in rng.choice(phrases["distractors"], size=n_distract, replace=False)]
        out += [("ENDSLINE", _typo(d, rng, phrases)) for d in distract]
        if not stated and not distract:
            summary = _pick(rng, phrases["summary"]["normal"])
        elif not stated and key == "sinus":
            summary = _pick(rng, phrases["summary"]["otherwise_normal" if rng.random() < 0.6 else "borderline"])
        elif stated == {"1AVB"} and rng.random() < 0.5:
            summary = _pick(rng, phrases["summary"]["otherwise_normal"])
        else:
            summary = _pick(rng, phrases["summary"]["abnormal"])
        out.append(("ENDSLINE", _typo(summary, rng, phrases, p=0.05)))
    if previous is not None and rng.random() < comparison_p:
        out += _comparison(stated, previous, rng, phrases)
    out.append(("USERINSERT", _confirmed_line(acquired, rng, phrases)))
    return out
