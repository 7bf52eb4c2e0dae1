"""Label stage: turn cardiologists' free-text statements (and structured codes) into ECG-P18 labels.

Entry points
------------
label_texts(texts, vocabulary="ecg-p18", uncertain="positive") -> DataFrame
    One int8 column per label for a column of reports.
explain(text, vocabulary="ecg-p18") -> list[Mention]
    Which phrase matched in which statement and which rule decided it.
label_manifest(manifest, *, vocabulary="ecg-p18", uncertain="positive", source="text",
               unconfirmed="keep", workers=1) -> DataFrame
    The manifest with label columns, ``label_provenance`` and ``report_status`` added.
segments(text) -> list[Statement]
    How a report is cut into statements (footers and device codes included) before rules run.
report_status(texts) -> list[str]
    "confirmed" / "unconfirmed" / "unknown" from each report's footers.
"""
from __future__ import annotations

from ecgkit.labels.cohort import LabelConfig, label_codes, label_manifest
from ecgkit.labels.core import Mention, explain, label_texts, provenance, report_status, segments
from ecgkit.labels.vocab import Vocabulary, load_vocabulary

__all__ = ["LabelConfig", "Mention", "Vocabulary", "explain", "label_codes", "label_manifest", "label_texts",
           "load_vocabulary", "provenance", "report_status", "segments"]
