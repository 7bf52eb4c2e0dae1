"""Generate a labelled synthetic cohort in real export formats: :func:`synth_cohort`.

Output layout (``out_dir``)::

    wfdb/p000001/r000001.hea, .dat      WFDB records (fmt "wfdb" or "both")
    muse/p000001/r000001.xml            GE MUSE RestingECG XML (fmt "muse" or "both")
    truth.parquet                       record_id, patient_id, one int8 column per ECG-P18 label
    truth_intervals.parquet             record_id and the true beats and intervals of the signal
                                        (see :data:`TRUTH_INTERVALS`), to validate ``ecgkit measure``
    labels_stated.parquet               the same columns as asserted by the statements (differs from
                                        the truth only where --label-noise flipped a label)
    labels_signal.parquet               the same columns as shown by the signal (differs from the
                                        truth where a difficulty's silent/mimic share acted)

``record_id`` is the file path relative to ``out_dir`` without suffix, with ``/`` separators
(``wfdb/p000001/r000001``), which is what ``ecgkit scan out_dir`` assigns; with ``fmt="both"`` each
record appears twice (a ``wfdb/...`` and a ``muse/...`` row, same patient and labels). Patient ids are
``P`` plus the patient number (``P000001``); record numbers run over the whole cohort. Numbers are
zero-padded to at least 6 digits (more when the cohort needs them). Everything is a function of
``seed`` and the patient/record numbers only, so ids, signals and texts are the same for any
``workers``.
"""
from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgkit.errors import ConfigError
from ecgkit.synth.beats import P_APC, QRS_CONDUCTED, make_morphology
from ecgkit.synth.difficulty import Difficulty, get_difficulty, signal_findings
from ecgkit.synth.phenotypes import (LABELS, check_ratios, record_prevalence, resolve_exclusions,
                                     sample_patient_findings, sample_record_findings, to_vector)
from ecgkit.synth.render import simulate_record
from ecgkit.synth.statements import write_statements
from ecgkit.synth.writers import Demographics, write_muse, write_wfdb

logger = logging.getLogger(__name__)

FORMATS = ("wfdb", "muse", "both")
_MAX_RECORDS_PER_PATIENT = 8
_FIRST_NAMES = ("ALEX", "MARIA", "JONAS", "LENA", "OMAR", "SOFIA", "WEI", "PRIYA", "TOM", "IRIS")
_LAST_NAMES = ("SYNTHETIC", "TESTPERSON", "EXAMPLE", "SAMPLE", "FICTIONAL")
_EPOCH = datetime(2012, 1, 1)

#: Columns of ``truth_intervals.parquet`` (besides ``record_id``), from the simulator's own beat times
#: and wave templates (:class:`ecgkit.synth.render.SimulatedEcg` ``measurements``): ``hr_bpm`` 60 / mean
#: RR of the visible QRS onsets; ``rr_cv`` SD / mean of those RR; ``n_beats`` visible QRS complexes;
#: ``pr_ms`` P onset to QRS onset of conducted beats, the median over the visible ones, and
#: ``pr_min_ms``/``pr_max_ms`` their range (the PR lengthens from beat to beat in Mobitz I
#: second-degree block; premature atrial beats, with their own PR, left out; all three NaN without
#: conducted P waves: AFIB, AFL, 3AVB);
#: ``qrs_ms`` QRS duration of the dominant beat kind; ``qt_ms`` QRS onset to T end at the mean RR.
TRUTH_INTERVALS: tuple[str, ...] = ("hr_bpm", "rr_cv", "n_beats", "pr_ms", "pr_min_ms", "pr_max_ms",
                                    "qrs_ms", "qt_ms")


def _conducted_prs_ms(meas: dict[str, Any], fs: float) -> list[float]:
    """PR (ms) of each visible conducted beat of the dominant atrial rhythm: its QRS onset less the
    last P onset before it (within 600 ms), premature atrial beats left out; the record's nominal PR
    where no beat has its P wave in the record, none without conducted P waves."""
    if meas["pr_ms"] is None:
        return []
    order = np.argsort(np.asarray(meas["p_onsets"], dtype=np.float64), kind="stable")
    p_on = np.asarray(meas["p_onsets"], dtype=np.float64)[order]
    p_kind = [meas["p_kinds"][i] for i in order]
    prs = []
    for q, kind in zip(meas["qrs_onsets"], meas["qrs_kinds"]):
        i = int(np.searchsorted(p_on, q)) - 1
        if kind == QRS_CONDUCTED and i >= 0 and p_kind[i] != P_APC and 0 < q - p_on[i] <= 0.6 * fs:
            prs.append((q - p_on[i]) * 1000.0 / fs)
    return prs or [float(meas["pr_ms"])]


def _true_intervals(meas: dict[str, Any], fs: float) -> dict[str, float]:
    onsets = np.asarray(meas["qrs_onsets"], dtype=np.float64)
    rr = np.diff(onsets) / fs
    prs = _conducted_prs_ms(meas, fs)
    nan = float("nan")
    return {"hr_bpm": 60.0 / float(rr.mean()) if rr.size else float("nan"),
            "rr_cv": float(rr.std() / rr.mean()) if rr.size > 1 else float("nan"),
            "n_beats": float(onsets.size), "pr_ms": float(np.median(prs)) if prs else nan,
            "pr_min_ms": min(prs) if prs else nan, "pr_max_ms": max(prs) if prs else nan,
            "qrs_ms": float(meas["qrs_ms"]), "qt_ms": float(meas["qt_ms"])}


def pr_error_ms(measured: Any, pr_min_ms: Any, pr_max_ms: Any) -> NDArray[np.float64]:
    """Error (ms) of measured PR intervals against the true PR range of each record (``pr_min_ms``,
    ``pr_max_ms`` of ``truth_intervals.parquet``): 0 inside the range, else the distance to its
    nearer end (signed, measured - true). A PR that changes from beat to beat (Mobitz I) has no one
    true value; a reading inside the range of the record's PRs is right. For a constant PR this is
    ``measured - pr_ms``. NaN where either side is NaN."""
    m = np.asarray(measured, dtype=np.float64)
    return m - np.clip(m, np.asarray(pr_min_ms, dtype=np.float64), np.asarray(pr_max_ms, dtype=np.float64))


@dataclass(frozen=True)
class _Job:
    out_dir: str
    fmt: str
    seed: int
    label_noise: float
    fs: float
    seconds: float
    width: int
    patients: tuple[int, ...]  # patient numbers (1-based)
    first_record: tuple[int, ...]  # record number of each patient's first record
    n_records: tuple[int, ...]
    difficulty: Difficulty
    ratios: tuple[tuple[str, float], ...]


def records_per_patient(n_patients: int, seed: int) -> np.ndarray:
    """Number of ECGs of each patient (1 to 8, geometric, mean about 2), drawn from ``seed`` only."""
    rng = np.random.default_rng([seed, 0xC0])
    return np.minimum(rng.geometric(0.5, size=n_patients), _MAX_RECORDS_PER_PATIENT)


def _flip(findings: set[str], p: float, rng: np.random.Generator) -> set[str]:
    """Symmetric label noise: each of the 18 labels flipped with probability p; VBIG implies VPC."""
    if p <= 0:
        return set(findings)
    flips = rng.random(len(LABELS)) < p
    out = {lab for lab, f in zip(LABELS, flips) if (lab in findings) != bool(f)}
    if "VBIG" in out:
        out.add("VPC")  # the text cannot say bigeminy without saying PVCs
    return out


def _run_job(job: _Job) -> list[tuple[int, str, str, Any, Any, Any, Any]]:
    out_dir = Path(job.out_dir)
    rows: list[tuple[int, str, str, Any, Any, Any, Any]] = []
    prevalence = record_prevalence(dict(job.ratios))
    w = job.width
    for patient, first, n_rec in zip(job.patients, job.first_record, job.n_records):
        prng = np.random.default_rng([job.seed, 1, patient])
        patient_findings = sample_patient_findings(prng, dict(job.ratios))
        patient_id = f"P{patient:0{w}d}"
        age0 = int(np.clip(prng.normal(60, 15), 18, 95))
        sex = "M" if prng.random() < 0.52 else "F"
        when = _EPOCH + timedelta(days=float(prng.uniform(0, 4000)))
        when = when.replace(hour=int(prng.integers(7, 19)), minute=int(prng.integers(0, 60)),
                            second=int(prng.integers(0, 60)), microsecond=0)
        birth = when - timedelta(days=365.25 * age0 + float(prng.uniform(0, 360)))
        first_name = _FIRST_NAMES[int(prng.integers(len(_FIRST_NAMES)))]
        last_name = _LAST_NAMES[int(prng.integers(len(_LAST_NAMES)))]
        previous: tuple[set[str], datetime] | None = None
        pdir = f"p{patient:0{w}d}"
        for k in range(n_rec):
            record_no = first + k
            rrng = np.random.default_rng([job.seed, 2, record_no])
            if k > 0:
                when = when + timedelta(days=float(rrng.uniform(1, 700)), minutes=float(rrng.uniform(0, 600)))
                when = when.replace(microsecond=0)
            findings = sample_record_findings(patient_findings, rrng)
            shown = resolve_exclusions(signal_findings(findings, prevalence, job.difficulty,
                                                       np.random.default_rng([job.seed, 4, record_no])))
            morph = make_morphology(shown, np.random.default_rng([job.seed, 3, patient]), job.difficulty,
                                    age=age0, sex=sex)
            sim = simulate_record(shown, morph, rrng, fs=job.fs, seconds=job.seconds, difficulty=job.difficulty)
            stated = _flip(findings, job.label_noise, rrng)
            statements = write_statements(stated, sim.measurements, rrng, acquired=when, previous=previous)
            previous = (stated, when)
            age = int((when - birth).days // 365.25)
            demo = Demographics(patient_id=patient_id, age=age, sex=sex, acquired=when, last_name=last_name,
                                first_name=first_name, birth_date=birth)
            rname = f"r{record_no:0{w}d}"
            truth, said, signal = to_vector(findings), to_vector(stated), to_vector(shown)
            intervals = _true_intervals(sim.measurements, job.fs)
            if job.fmt in ("wfdb", "both"):
                folder = out_dir / "wfdb" / pdir
                folder.mkdir(parents=True, exist_ok=True)
                write_wfdb(folder / f"{rname}.hea", sim.signal, job.fs, demo, [t for _, t in statements])
                rows.append((record_no, f"wfdb/{pdir}/{rname}", patient_id, truth, said, signal, intervals))
            if job.fmt in ("muse", "both"):
                folder = out_dir / "muse" / pdir
                folder.mkdir(parents=True, exist_ok=True)
                write_muse(folder / f"{rname}.xml", sim.signal, sim.median, job.fs, demo, statements,
                           sim.measurements)
                rows.append((record_no, f"muse/{pdir}/{rname}", patient_id, truth, said, signal, intervals))
    return rows


def _table(rows: list[tuple[int, str, str, Any, Any, Any, Any]], which: int) -> pd.DataFrame:
    labels = np.stack([r[which] for r in rows]) if rows else np.zeros((0, len(LABELS)), dtype=np.int8)
    df = pd.DataFrame({"record_id": pd.array([r[1] for r in rows], dtype="string"),
                       "patient_id": pd.array([r[2] for r in rows], dtype="string")})
    for j, label in enumerate(LABELS):
        df[label] = labels[:, j].astype(np.int8)
    return df


def synth_cohort(n_patients: int, out_dir: str | Path, *, fmt: str = "wfdb", seed: int = 0,
                 label_noise: float = 0.0, fs: float = 500, seconds: float = 10, workers: int = 1,
                 chunk_patients: int = 256, difficulty: str | Difficulty = "easy",
                 ratios: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Write a synthetic phenotyped cohort and its ground truth.

    Parameters
    ----------
    n_patients : int
        Number of patients; each has 1 to 8 ECGs (about 2 on average).
    out_dir : str or Path
        Output folder (created); see the module docstring for the layout.
    fmt : {"wfdb", "muse", "both"}
        File format(s) to write.
    seed : int
        Seed of everything (patients, signals, statements).
    label_noise : float
        Probability, per record and label, that the statements assert the opposite of the truth
        (symmetric noise). ``truth.parquet`` keeps the true labels; ``labels_stated.parquet`` has
        what the text says.
    fs : float
        Sampling frequency, Hz.
    seconds : float
        Record duration, seconds.
    workers : int
        Processes; each writes its own patients' files.
    chunk_patients : int
        Patients per task handed to a worker.
    difficulty : {"easy", "realistic", "hard"} or Difficulty
        Recording artefacts, patient variation and borderline phenotypes
        (:mod:`ecgkit.synth.difficulty`). ``easy`` (the library default, kept for quick demos) is
        the original generator; use ``realistic`` to compare methods.
    ratios : dict of label -> float, optional
        Imbalance ratios (1 positive : r negatives) overriding the CO-TASK Table 1 defaults
        (:data:`ecgkit.synth.phenotypes.TABLE1_RATIO`) for some labels.

    Returns
    -------
    pandas.DataFrame
        The truth table: ``record_id`` (string), ``patient_id`` (string) and one int8 0/1 column per
        ECG-P18 label in :data:`ecgkit.synth.phenotypes.LABELS` order, one row per written file,
        ordered by record number.

    Raises
    ------
    ConfigError
        On an unknown ``fmt`` or an out-of-range argument.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"synth format must be one of {list(FORMATS)}, got {fmt!r}")
    if n_patients < 1:
        raise ConfigError(f"synth needs at least 1 patient, got {n_patients}")
    if not 0.0 <= label_noise <= 1.0:
        raise ConfigError(f"label_noise must be in [0, 1], got {label_noise}")
    if fs <= 0 or seconds <= 0 or workers < 1:
        raise ConfigError(f"fs, seconds and workers must be positive, got {fs}, {seconds}, {workers}")
    diff = get_difficulty(difficulty)
    ratio_items = tuple(sorted(check_ratios(ratios).items()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = records_per_patient(n_patients, seed)
    firsts = np.concatenate([[1], 1 + np.cumsum(counts)[:-1]])
    width = max(6, len(str(int(counts.sum()))), len(str(n_patients)))
    jobs = []
    for a in range(0, n_patients, chunk_patients):
        b = min(a + chunk_patients, n_patients)
        jobs.append(_Job(str(out), fmt, int(seed), float(label_noise), float(fs), float(seconds), width,
                         tuple(range(a + 1, b + 1)), tuple(int(x) for x in firsts[a:b]),
                         tuple(int(x) for x in counts[a:b]), diff, ratio_items))
    rows: list[tuple[int, str, str, Any, Any, Any, Any]] = []
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            rows.extend(_run_job(job))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_run_job, jobs):
                rows.extend(part)
    rows.sort(key=lambda r: (r[0], r[1]))
    truth, stated = _table(rows, 3), _table(rows, 4)
    truth.to_parquet(out / "truth.parquet", index=False)
    stated.to_parquet(out / "labels_stated.parquet", index=False)
    intervals = pd.DataFrame([r[6] for r in rows], columns=list(TRUTH_INTERVALS), dtype=np.float64)
    intervals.insert(0, "record_id", truth["record_id"].to_numpy())
    intervals.to_parquet(out / "truth_intervals.parquet", index=False)
    _table(rows, 5).to_parquet(out / "labels_signal.parquet", index=False)
    logger.info("synth: %d patients, %d files (%s, %s) in %s", n_patients, len(truth), fmt, diff.name, out)
    return truth
