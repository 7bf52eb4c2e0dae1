"""Which ECG-P18 findings each synthetic patient and record has: prevalences, persistence, exclusions.

Prevalences follow the ECG-P18 imbalance ratios (positives : negatives) of the CO-TASK paper where
it gives them (LVH 1:6.7, 3AVB 1:2321) and plausible ratios for the others (:data:`IMBALANCE_RATIO`);
their sum gives a label cardinality of about 0.45 per record.

Findings are drawn per patient, then kept on each of the patient's records with a persistence
probability (:data:`PERSISTENCE`): chronic conduction and hypertrophy findings stay, paroxysmal
rhythms and ectopy come and go (which is what makes serial-comparison statements such as "Sinus rhythm
has replaced Atrial fibrillation" happen). The patient-level probability is the record prevalence
divided by the persistence, so record prevalences match the targets. Co-occurrence: LVH raises the
odds of LBBB and AFIB (marginals kept). :func:`resolve_exclusions` then enforces what cannot co-exist.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: ECG-P18 labels, in task order.
LABELS: tuple[str, ...] = ("LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB",
                           "1AVB", "2AVB", "3AVB", "EAR", "VBIG", "VT", "VPC", "APC")

#: Imbalance ratio r (1 positive : r negatives) per label; record prevalence is 1 / (1 + r).
IMBALANCE_RATIO: dict[str, float] = {
    "LVH": 6.7, "RVH": 150, "AFIB": 15, "AFL": 60, "IVCD": 120, "NIVCD": 50, "RBBB": 25, "LBBB": 50,
    "IRBBB": 45, "ILBBB": 400, "1AVB": 25, "2AVB": 700, "3AVB": 2321, "EAR": 150, "VBIG": 300, "VT": 1000,
    "VPC": 20, "APC": 20,
}

#: Probability that a patient's finding shows on each of their records.
PERSISTENCE: dict[str, float] = {
    "LVH": 0.95, "RVH": 0.95, "IVCD": 0.9, "NIVCD": 0.9, "RBBB": 0.95, "LBBB": 0.95, "IRBBB": 0.85,
    "ILBBB": 0.85, "1AVB": 0.9, "2AVB": 0.6, "3AVB": 0.7, "AFIB": 0.7, "AFL": 0.6, "EAR": 0.7,
    "VBIG": 0.5, "VT": 0.5, "VPC": 0.5, "APC": 0.5,
}

#: (given, then, odds multiplier): P(then | given) = multiplier * P(then); P(then | not given) lowered to keep
#: the marginal.
COOCCURRENCE: tuple[tuple[str, str, float], ...] = (("LVH", "LBBB", 2.5), ("LVH", "AFIB", 1.8), ("RBBB", "1AVB", 1.5))

# Findings dropped when the first finding is present (applied in this order; rarer labels are given
# priority so their prevalence survives).
_EXCLUSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("3AVB", ("AFIB", "AFL", "EAR", "1AVB", "2AVB", "APC", "VPC", "VBIG", "VT",
              "RBBB", "LBBB", "IRBBB", "ILBBB", "IVCD", "NIVCD")),
    ("AFL", ("AFIB", "EAR", "1AVB", "2AVB", "APC")),
    ("EAR", ("AFIB",)),
    ("AFIB", ("1AVB", "2AVB", "APC")),
    ("2AVB", ("1AVB", "VBIG", "VT")),
    ("ILBBB", ("RBBB", "IRBBB", "LBBB")),
    ("LBBB", ("RBBB", "IRBBB", "IVCD", "NIVCD")),
    ("RBBB", ("IRBBB", "IVCD", "NIVCD")),
    ("IRBBB", ("IVCD", "NIVCD")),
    ("IVCD", ("NIVCD",)),
    ("VT", ("VBIG",)),
)


def record_prevalence() -> dict[str, float]:
    """Target record-level prevalence per label (before exclusions)."""
    return {k: 1.0 / (1.0 + r) for k, r in IMBALANCE_RATIO.items()}


def sample_patient_findings(rng: np.random.Generator) -> set[str]:
    """Draw a patient's findings (a superset of what each of their records shows)."""
    prev = record_prevalence()
    p_patient = {k: min(1.0, prev[k] / PERSISTENCE[k]) for k in LABELS}
    found: set[str] = set()
    draws = rng.random(len(LABELS))
    for i, label in enumerate(LABELS):
        p = p_patient[label]
        for given, then, mult in COOCCURRENCE:
            if then == label:
                pg = p_patient[given]
                p = min(1.0, p * mult) if given in found else max(0.0, p * (1 - pg * mult) / (1 - pg))
        if draws[i] < p:
            found.add(label)
    return found


def sample_record_findings(patient: set[str], rng: np.random.Generator) -> set[str]:
    """Draw one record's findings from its patient's: each kept with its persistence, then exclusions."""
    ordered = sorted(patient, key=LABELS.index)
    draws = rng.random(len(ordered))
    kept = {label for label, u in zip(ordered, draws) if u < PERSISTENCE[label]}
    return resolve_exclusions(kept)


def resolve_exclusions(findings: set[str]) -> set[str]:
    """Apply the exclusion rules and implications (VBIG implies VPC); returns a new set."""
    out = set(findings)
    for first, dropped in _EXCLUSIONS:
        if first in out:
            out.difference_update(dropped)
    if "VBIG" in out:
        out.add("VPC")
    return out


def to_vector(findings: set[str]) -> NDArray[np.int8]:
    """0/1 int8 vector in :data:`LABELS` order."""
    return np.array([label in findings for label in LABELS], dtype=np.int8)
