"""Metadata in WFDB header comments, in the conventions PhysioNet databases use (case-insensitive).

==================================  ==============================================================
convention                          databases (examples)
==================================  ==============================================================
``# Age: 63``, ``# Sex: Male``      PhysioNet/CinC Challenges, PTB Diagnostic (``# age: 81``)
``# Dx: 426783006,164889003``       Challenge 2020/2021: SNOMED-CT codes -> statements
``#<age>: 51``, ``#<sex>: F``       LUDB, St Petersburg INCART (several ``<key>:`` on one line)
``#<diagnoses>:`` + one statement   LUDB: the block runs to the next key line; each line is kept
per following comment line          whole (``Rhythm: Sinus rhythm.``)
``# Reason for admission: ...``     PTB Diagnostic; also ``Diagnosis``, ``Additional diagnoses``,
                                    ``Acute infarction (localization)``, ``Interpretation``, ...
``# 69 M 1085 1629 x1``             MIT-BIH style first comment: age and sex by position
``# Patient: ...``, ``# Acquired``,
``# Statement: ...``                written by :mod:`ecgkit.synth`
==================================  ==============================================================

Values that look like a person's name or a date are never kept as an id or a statement, and keys
naming a name or a birth date are ignored outright.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

_ANGLE_KEY = re.compile(r"<\s*([A-Za-z][\w .()/-]*?)\s*>\s*:?")
_AGE_NUM = re.compile(r"^\s*[<>~]?\s*(\d+(?:\.\d+)?)\s*(\+)?\s*"
                      r"(years?|yrs?|y|months?|mo|m|weeks?|w|days?|d)?\.?\s*$", re.IGNORECASE)
_INLINE = re.compile(r"\b(age|sex|gender)\s*[:=]\s*([<>]?\s*\d+(?:\.\d+)?\+?|[A-Za-z]+)", re.IGNORECASE)
_MITBIH_FIRST = re.compile(r"^\s*(\d{1,3}|\?+)\s+([MF?])\b")
_DATE_LIKE = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b|\b\d{1,2}-[A-Za-z]{3}-\d{2,4}\b")
_NAME_LIKE = re.compile(r"^[A-Z][a-z'\-]+(?:,\s*|\s+)[A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?$")
_PRIVATE_KEY = re.compile(r"name|birth|\bdob\b|address|phone|\bssn\b|social security", re.IGNORECASE)
_EMPTY = {"", "n/a", "na", "none", "no", "unknown", "nan", "-", "?", "not available", "not known"}

#: Keys whose value is a diagnosis or interpretation statement (kept as ``value``).
STATEMENT_KEYS = frozenset({
    "reason for admission", "diagnosis", "diagnoses", "diagnose", "additional diagnoses",
    "additional diagnosis", "interpretation", "statement", "statements", "report", "conclusion",
    "rhythm", "final diagnosis", "ecg diagnosis", "ecg interpretation", "comment diagnosis",
})
#: Keys kept as ``key: value`` (the value alone says little).
QUALIFIED_KEYS = frozenset({"acute infarction (localization)", "former infarction (localization)"})
#: Keys that open a block of statements, one per following comment line.
BLOCK_KEYS = frozenset({"diagnoses", "diagnosis", "diagnose", "statements", "interpretation", "report"})
#: Keys that end a statement block (demographics and structural fields).
_BLOCK_ENDS = frozenset({"age", "sex", "gender", "dx", "rx", "hx", "sx", "ecg date", "patient", "acquired"})
_YEARS = {"y": 1.0, "m": 1 / 12, "mo": 1 / 12, "w": 7 / 365.25, "d": 1 / 365.25}


def parse_age(value: str) -> float | None:
    """``"63"``, ``"63 years"``, ``"81y"``, ``"6 months"``, ``">89"``, ``"90+"`` -> years; else ``None``."""
    m = _AGE_NUM.match(value)
    if m is None:
        return None
    unit = (m.group(3) or "y").lower()
    unit = "mo" if unit.startswith("mo") else unit[0]
    age = float(m.group(1)) * _YEARS.get(unit, 1.0)
    return round(age, 3) if 0 <= age < 150 else None


def parse_sex(value: str) -> str | None:
    v = value.strip().lower().rstrip(".")
    if v in ("m", "male", "man", "0", "masculine", "männlich", "mannlich"):
        return "M"
    if v in ("f", "female", "woman", "1", "w", "feminine", "weiblich"):
        return "F"
    return None


def _clean_statement(text: str) -> str | None:
    text = text.strip().strip("#").strip()
    if text.lower().rstrip(".") in _EMPTY or _DATE_LIKE.fullmatch(text) or _NAME_LIKE.match(text):
        return None
    return text


def _split_angle(line: str) -> list[tuple[str, str]] | None:
    """``<age>: 61 <sex>: M <diagnoses> CAD`` -> [("age", "61"), ("sex", "M"), ("diagnoses", "CAD")]."""
    keys = list(_ANGLE_KEY.finditer(line))
    if not keys or line[:keys[0].start()].strip():
        return None
    out = []
    for k, m in enumerate(keys):
        end = keys[k + 1].start() if k + 1 < len(keys) else len(line)
        out.append((m.group(1).strip().lower(), line[m.end():end].strip()))
    return out


def _pairs(line: str) -> list[tuple[str, str]]:
    """Key/value pairs of one comment line; ``[]`` if the line is not ``key: value`` shaped."""
    angle = _split_angle(line)
    if angle is not None:
        return angle
    key, sep, value = line.partition(":")
    if not sep:
        key, sep, value = line.partition("=")
    if not sep or len(key) > 60:
        return []
    return [(key.strip().lower(), value.strip())]


def parse_comments(comments: list[str], *, base_dt: datetime | None,
                   snomed: Callable[[], dict[str, str]],
                   parse_datetime: Callable[[str, tuple[str, ...]], datetime | None]) -> dict[str, Any]:
    """Age, sex, statements, codes, patient id and acquisition time from header comment lines.

    Parameters
    ----------
    comments : list of str
        The header's comment lines without their leading ``#``.
    base_dt : datetime or None
        The record line's base date/time (the default acquisition time).
    snomed : callable
        Returns the SNOMED-CT code -> term table (called only when a ``Dx`` line is present).
    parse_datetime : callable
        ``(text, formats) -> datetime or None``.
    """
    meta: dict[str, Any] = {"statements": [], "codes": {}, "age": None, "sex": None, "patient_id": None,
                            "acquired_at": base_dt}
    statements: list[str] = meta["statements"]

    def add(text: str) -> None:
        s = _clean_statement(text)
        if s is not None and s not in statements:
            statements.append(s)

    in_block = ""
    for n, raw in enumerate(comments):
        line = raw.strip()
        if not line:
            continue
        if n == 0 and (m := _MITBIH_FIRST.match(line)) and ":" not in line:
            meta["age"] = parse_age(m.group(1)) if m.group(1).isdigit() else None
            meta["sex"] = parse_sex(m.group(2))
            continue
        pairs = _pairs(line)
        # an angle-bracket block (LUDB) keeps every line whole ("Rhythm: Sinus rhythm."); a plain
        # "Diagnose:" heading (PTB) only collects free-text lines, its "key: value" lines parse as usual
        if in_block == "angle" and not (line.startswith("<") or any(k in _BLOCK_ENDS for k, _ in pairs)):
            add(line)
            continue
        if in_block == "plain" and not pairs:
            add(line)
            continue
        in_block = "" if in_block == "angle" or pairs else in_block
        if len(_INLINE.findall(line)) > 1:  # "Age: 51  Sex: F" on one line
            for key, value in _INLINE.findall(line):
                if key.lower() == "age":
                    meta["age"] = parse_age(value)
                else:
                    meta["sex"] = parse_sex(value)
            continue
        for key, value in pairs:
            if _PRIVATE_KEY.search(key):
                continue
            if key == "age":
                meta["age"] = parse_age(value)
            elif key in ("sex", "gender"):
                meta["sex"] = parse_sex(value)
            elif key == "dx":
                codes = [c for c in re.split(r"[,;\s]+", value) if c and c.lower() != "unknown"]
                if codes and all(c.isdigit() for c in codes):
                    terms = snomed()
                    meta["codes"]["snomed"] = codes
                    for c in codes:
                        add(terms.get(c, f"SNOMED-CT {c}"))
                elif value:
                    add(value)
            elif key == "ecg date":
                meta["acquired_at"] = parse_datetime(value, ("%d/%m/%Y", "%Y-%m-%d")) or meta["acquired_at"]
            elif key == "patient" and value:
                if not (_NAME_LIKE.match(value) or _DATE_LIKE.search(value)):
                    meta["patient_id"] = value
            elif key == "acquired" and value:
                meta["acquired_at"] = parse_datetime(value, ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"))
            elif key in QUALIFIED_KEYS:
                if value.lower().rstrip(".") not in _EMPTY:
                    add(f"{line.partition(':')[0].strip()}: {value}")
            elif key in STATEMENT_KEYS:
                if value:
                    for part in (value.split(",") if key == "diagnoses" and "<" in line else [value]):
                        add(part)
                elif key in BLOCK_KEYS:
                    in_block = "angle" if line.startswith("<") else "plain"
    return meta
