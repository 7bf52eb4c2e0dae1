"""Synthetic phenotyped 12-lead ECG cohorts in real export formats (WFDB, GE MUSE XML).

Entry point: :func:`synth_cohort`. Pieces: :mod:`.phenotypes` (which findings), :mod:`.beats` and
:mod:`.render` (the signal), :mod:`.statements` (the text), :mod:`.writers` (the files).
"""
from __future__ import annotations

from ecgkit.synth.cohort import pr_error_ms, synth_cohort
from ecgkit.synth.phenotypes import LABELS
from ecgkit.synth.render import SimulatedEcg, simulate_record
from ecgkit.synth.writers import write_muse, write_wfdb

__all__ = ["synth_cohort", "pr_error_ms", "simulate_record", "SimulatedEcg", "write_wfdb", "write_muse", "LABELS"]
