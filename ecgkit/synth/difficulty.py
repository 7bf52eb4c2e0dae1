"""How hard a synthetic cohort is: recording artefacts, patient variation and borderline phenotypes.

Three presets (:data:`DIFFICULTIES`), chosen with ``synth_cohort(..., difficulty=...)`` or
``ecgkit synth --difficulty``:

``easy``
    The original generator (kept draw for draw, so existing cohorts and the demo are unchanged):
    mild wander, muscle noise and mains hum, little variation between patients, and every finding
    clearly on its side of the criterion that defines it (PR 240-340 ms for 1AVB, Sokolow-Lyon
    3.8-5.0 mV for LVH, ...). A small network separates the labels almost perfectly.
``realistic`` (the default for experiments)
    What real archives add: stronger baseline wander, muscle noise and 50/60 Hz powerline
    interference, electrode-motion artefacts in a share of records, larger amplitude and axis
    variation between patients, age and sex effects (voltage, axis, PR, rate, QTc), lead
    misplacement (LA/RA reversal or swapped chest leads) in a small share, and phenotypes on a
    severity continuum: a share of records sits near or across the defining boundary (PR 190-215 ms
    stated as 1AVB or not, borderline LVH voltages, an IRBBB-to-RBBB terminal-delay continuum, QRS
    widths around the IVCD cut-off, brief 3-beat VT against longer runs and VPC couplets, single
    late APCs, fine atrial fibrillation, low-amplitude flutter waves, ectopic P waves with a flat
    inferior axis). The statements keep the stated (true) label, so near a boundary the text and
    the signal sometimes disagree, as between two readers. Beyond the boundaries, 22 % of a stated
    finding's records do not show it in the signal (``silent``) and 8 % as many unstated records
    show it (``mimic``): over- and under-reading, which caps what any model can reach (AUROC about
    1 - silent / 2 for a perfect reader of the signal) the way reader disagreement does in real
    archives. ``labels_signal.parquet`` records what each signal shows. The share was 12 % until
    a 300,000-record run (session 25, one H200) gave the joint baseline a test macro AUROC of 0.949
    and rare labels 0.950-0.984, above issue 16's bands (0.85-0.93; rare 0.65-0.95); at that size
    the network reads the signal about as well as it can, so 22 % moves the ceiling by about -0.05
    to about 0.90 (benchmarks/RESULTS_experiments.md, "Calibration at 300,000 records").
``hard``
    The same with more of everything.

A :class:`Difficulty` holds the knobs; pass one directly for a custom mix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ecgkit.errors import ConfigError


@dataclass(frozen=True)
class Difficulty:
    """Generator settings; see the module docstring. Shares are per record unless said otherwise."""

    name: str
    #: scale of baseline wander, muscle noise and powerline amplitude (easy 1)
    noise: float = 1.0
    #: share of records with mains interference (easy 0.5)
    powerline_share: float = 0.5
    #: share of records with an electrode-motion artefact (a step and a slow burst on some leads)
    motion_share: float = 0.0
    #: SD of the patient's log QRS amplitude (0 keeps easy's uniform 0.8-1.2)
    amplitude_sd: float = 0.0
    #: SD of the patient's frontal QRS axis, degrees (easy 12)
    axis_sd_deg: float = 12.0
    #: age and sex change voltage, axis, PR, rate and QTc
    demographics: bool = False
    #: share of records with a lead misplacement (LA/RA reversal, or V1/V2 swapped)
    misplacement_share: float = 0.0
    #: share of a finding's records drawn near or across its defining boundary (0: none); negatives
    #: get borderline values at a third of that share
    borderline: float = 0.0
    #: relative size of sinus arrhythmia (easy 1): more beat-to-beat variation hides single APCs
    sinus_arrhythmia: float = 1.0
    #: share of a stated finding's records whose signal does not show it (a reader called it on
    #: evidence outside this tracing, or over-read it): statement positive, signal negative
    silent: float = 0.0
    #: records whose signal shows a finding that the statement does not name, as a multiple of
    #: the finding's positives (under-reading): statement negative, signal positive
    mimic: float = 0.0

    def __post_init__(self) -> None:
        for name in ("motion_share", "misplacement_share", "borderline", "powerline_share", "silent"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"difficulty {self.name!r}: {name} must lie in [0, 1], got {v}")
        if self.noise < 0 or self.amplitude_sd < 0 or self.axis_sd_deg < 0 or self.sinus_arrhythmia < 0 \
                or self.mimic < 0:
            raise ConfigError(f"difficulty {self.name!r}: noise, amplitude_sd, axis_sd_deg and sinus_arrhythmia "
                              "must be >= 0")

    @property
    def is_easy(self) -> bool:
        """True when this draws exactly like the original generator."""
        return self == EASY


EASY = Difficulty("easy")
REALISTIC = Difficulty("realistic", noise=2.5, powerline_share=0.6, motion_share=0.15, amplitude_sd=0.25,
                       axis_sd_deg=28.0, demographics=True, misplacement_share=0.02, borderline=0.25,
                       sinus_arrhythmia=2.0, silent=0.22, mimic=0.08)
HARD = Difficulty("hard", noise=4.0, powerline_share=0.7, motion_share=0.3, amplitude_sd=0.33, axis_sd_deg=35.0,
                  demographics=True, misplacement_share=0.04, borderline=0.4, sinus_arrhythmia=2.5, silent=0.3,
                  mimic=0.12)

#: Presets by name.
DIFFICULTIES: dict[str, Difficulty] = {d.name: d for d in (EASY, REALISTIC, HARD)}


def get_difficulty(difficulty: str | Difficulty) -> Difficulty:
    """A preset by name, or the given :class:`Difficulty`; raises ConfigError on an unknown name."""
    if isinstance(difficulty, Difficulty):
        return difficulty
    if difficulty not in DIFFICULTIES:
        raise ConfigError(f"difficulty must be one of {list(DIFFICULTIES)}, got {difficulty!r}")
    return DIFFICULTIES[difficulty]


def signal_findings(stated: set[str], prevalence: dict[str, float], d: Difficulty,
                    rng: np.random.Generator) -> set[str]:
    """The findings a record's *signal* shows, given the findings its statement (and truth table) names.

    Each stated finding is silent with probability ``d.silent``; each other finding is mimicked with
    probability ``d.mimic * p / (1 - p)`` (p its prevalence), i.e. ``d.mimic`` times as many mimics as
    the finding has positives. Draws nothing when both are 0 (easy). The caller resolves exclusions.
    """
    if d.silent <= 0 and d.mimic <= 0:
        return set(stated)
    names = sorted(prevalence)
    u = rng.random(len(names))
    out = set()
    for name, x in zip(names, u):
        p = prevalence[name]
        if name in stated:
            if x >= d.silent:
                out.add(name)
        elif x < d.mimic * p / max(1.0 - p, 1e-9):
            out.add(name)
    return out


def borderline(rng: np.random.Generator, d: Difficulty, positive: bool = True) -> bool:
    """Whether this finding (or, for ``positive=False``, this negative) is drawn near its boundary.

    Draws nothing on ``easy`` (so easy cohorts keep their random stream).
    """
    if d.borderline <= 0:
        return False
    return bool(rng.random() < (d.borderline if positive else d.borderline / 3))


def motion_artifact(rng: np.random.Generator, t: NDArray[np.float32], level: float) -> NDArray[np.float32]:
    """An electrode-motion artefact on 1-3 of the 8 simulated leads, (8, n) mV.

    A step that decays over 0.2-0.6 s (the electrode's half-cell potential jumping as it moves) plus
    a 0.5-2 s burst of 0.5-3 Hz wobble, starting anywhere in the record.
    """
    n = t.size
    out = np.zeros((8, n), dtype=np.float32)
    leads = rng.choice(8, size=int(rng.integers(1, 4)), replace=False)
    t0 = float(rng.uniform(t[0], t[-1]))
    after = np.clip(t - t0, 0.0, None)
    on = (t >= t0).astype(np.float32)
    tau = float(rng.uniform(0.2, 0.6))
    dur = float(rng.uniform(0.5, 2.0))
    f = float(rng.uniform(0.5, 3.0))
    window = on * (after < dur) * np.sin(np.pi * np.clip(after / dur, 0, 1)) ** 2
    for k in leads:
        step = float(rng.normal(0.0, 0.6 * level))
        wob = float(rng.uniform(0.1, 0.35) * level)
        out[k] = step * on * np.exp(-after / tau) + wob * window * np.sin(2 * np.pi * f * after)
    return out


def misplace_leads(sim8: NDArray[np.float32], kind: str) -> NDArray[np.float32]:
    """Apply a lead misplacement to (8, n) leads I, II, V1-V6 (a copy).

    ``"la_ra"``: left and right arm electrodes swapped, so I becomes -I and II becomes the true III
    (III, aVR, aVL, aVF derived from these follow, as on a real machine). ``"v1_v2"``: the first two
    chest electrodes swapped.
    """
    out = sim8.copy()
    if kind == "la_ra":
        out[0] = -sim8[0]
        out[1] = sim8[1] - sim8[0]
    elif kind == "v1_v2":
        out[2], out[3] = sim8[3], sim8[2]
    else:
        raise ValueError(f"unknown lead misplacement {kind!r}")
    return out
