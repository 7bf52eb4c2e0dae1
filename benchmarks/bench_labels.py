"""Speed of ecgkit's labeller against per-pattern regex baselines, in one run, on one core.

Inputs: the PTB-XL ``report`` texts of ``ptbxl_database.csv`` replicated to ``--n`` texts (default
1,000,000), and ``--n`` *distinct* reports built from the statements of those reports (2-5 library
statements per report, one line each, plus a measurement line that differs in every report, as
MUSE exports read). Measured (CPU seconds of this process, so other load on the box counts less):

* ``label_texts`` on the repeated texts (identical reports are labelled once);
* the compiled pass (``engine="compiled"``, the default) on the distinct reports, with report
  dedup (``label_texts``) and without (``label_batch`` on the list as it is): every rule on, one
  core; it factorises lines and statements within a batch, so library statements are matched once;
* the per-report Python path (``engine="python"``, the reference) on a prefix of ``--python-n``
  distinct reports, with its per-call memo and from scratch;
* ``explain_many(..., workers=N)`` on the distinct reports (wall clock, with provenance);
* the vocabulary load in a fresh process, compiled and from the per-user cache (CPU seconds);
* baselines on a prefix of ``--baseline-n`` distinct texts: ``re.search`` per pattern per text over
  the same vocabulary phrases (word-bounded), and the same with precompiled patterns (no rules);
* a bare pyahocorasick pass (``automaton.iter``) over the normalised texts: matching only, no rules.

With ``--cohort-size N --workers W`` it instead times the label stage of an N-record cohort
(``label_manifest`` on a manifest whose ``statements`` are N distinct reports, W processes) and
prints the wall seconds.

Usage::

    python benchmarks/bench_labels.py [--n 1000000] [--baseline-n 5000] [--python-n 50000] [--workers 2]
    python benchmarks/bench_labels.py --cohort-size 300000 --workers 16
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.labels import label_texts, load_vocabulary  # noqa: E402
from ecgkit.labels.compiled import label_batch  # noqa: E402
from ecgkit.labels.core import _analyze_report, explain_many  # noqa: E402
from ecgkit.labels.normalize import normalize_text  # noqa: E402
from ecgkit.labels.segment import segment_report  # noqa: E402

DEFAULT_CSV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ptbxl" / "ptbxl_database.csv"


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _literal(text: str) -> str:
    core = normalize_text(text).strip()
    lead = " " if text[:1].isspace() and core else ""
    trail = " " if text[-1:].isspace() and core else ""
    return re.escape(lead + core + trail) if core else re.escape(" " if text.strip() == "" and text else "")


def _baseline_patterns(path: str) -> list[str]:
    """One word-bounded regex per phrase of the vocabulary file; a {MACRO} becomes an alternation."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    macros = {k: "(?:" + "|".join(re.escape(normalize_text(str(a)).strip()) for a in v) + ")"
              for k, v in raw["macros"].items()}
    phrases = [p for ps in raw["phrases"].values() for p in ps]
    phrases += [p for c in raw["conditional"] for p in c["phrases"]] + list(raw["other"])
    phrases += [p for ps in raw["excluded"].values() for p in ps]
    out = set()
    for p in phrases:
        parts = re.split(r"(\{[A-Za-z0-9_]+\})", p)
        out.add(r"\b" + "".join(macros[x[1:-1]] if x.startswith("{") else _literal(x) for x in parts) + r"\b")
    return sorted(out)


def _distinct_reports(reports: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` reports that are all distinct, built the way real archives build them: 2-5 statements
    drawn from a library (here the statements of the PTB-XL reports) on lines of their own, plus a
    measurement line that differs from report to report (MUSE's "Vent. rate 73 BPM ...")."""
    vocab = load_vocabulary("ecg-p18")
    pool = sorted({st.text for r in reports for st in segment_report(r, vocab.segmenter)})
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), size=(n, 5))
    sizes = rng.integers(2, 6, size=n)
    rate = rng.integers(40, 180, size=n)
    pr = rng.integers(100, 320, size=n)
    qrs = rng.integers(70, 160, size=n)
    out = []
    seen = set()
    for i in range(n):
        text = "\n".join([pool[j] for j in picks[i, :sizes[i]]]
                         + [f"Vent. rate {rate[i]} BPM PR interval {pr[i]} ms QRS duration {qrs[i]} ms #{i}"])
        out.append(text)
        seen.add(text)
    if len(seen) != n:
        raise SystemExit("distinct report generation produced duplicates")
    return out


_LOAD = ("import time; t = time.process_time(); from ecgkit.labels import load_vocabulary; "
         "from ecgkit.labels.compiled import tables; tables(load_vocabulary()); print(time.process_time() - t)")


def _load_seconds(cache_dir: str) -> float:
    """CPU seconds to import the labeller and load the vocabulary (with its compiled tables), fresh process."""
    env = dict(os.environ, ECGKIT_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.strip().splitlines()[-1])


def cohort(args: argparse.Namespace, reports: list[str]) -> int:
    """Wall seconds of the label stage (``label_manifest``) on a cohort of distinct reports."""
    from ecgkit.labels import label_manifest

    distinct = _distinct_reports(reports, args.cohort_size)
    manifest = pd.DataFrame({"record_id": [f"r{i}" for i in range(len(distinct))],
                             "statements": [t.split("\n") for t in distinct], "status": "ok"})
    load_vocabulary("ecg-p18")
    t0 = time.perf_counter()
    out = label_manifest(manifest, workers=args.workers)
    wall = time.perf_counter() - t0
    n_pos = int((out[list(load_vocabulary("ecg-p18").labels)].to_numpy() == 1).sum())
    print(f"label stage, {len(distinct):,}-record cohort of distinct reports, --workers {args.workers}: "
          f"{wall:.2f} s wall ({len(distinct) / wall:,.0f} records/s; {n_pos:,} positive labels; "
          f"{os.cpu_count()} cores on this machine)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=5_000)
    ap.add_argument("--python-n", type=int, default=50_000, help="distinct reports for the per-report path")
    ap.add_argument("--no-cache-n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2, help="processes for the --workers row")
    ap.add_argument("--cohort-size", type=int, default=0, help="time the label stage of a cohort this size")
    args = ap.parse_args(argv)
    if args.n < 1 or args.workers < 1 or args.cohort_size < 0:
        ap.error("--n and --workers must be >= 1, --cohort-size >= 0")
    if not args.csv.is_file():
        ap.error(f"no PTB-XL database at {args.csv} (pass --csv)")

    reports = [r if isinstance(r, str) else "" for r in pd.read_csv(args.csv)["report"]]
    if args.cohort_size:
        return cohort(args, reports)
    texts = (reports * (args.n // len(reports) + 1))[:args.n]
    vocab = load_vocabulary("ecg-p18")
    patterns = _baseline_patterns(vocab.source)
    print(f"{len(texts):,} texts ({len(set(reports))} distinct PTB-XL reports); baseline: {len(patterns)} "
          f"patterns (one per vocabulary phrase, macros as alternations); ecgkit: {vocab.n_phrases} "
          f"expanded phrases in one automaton, {len(vocab.fuzzy):,} one-edit spellings")
    with tempfile.TemporaryDirectory() as tmp:
        cold = _load_seconds("")
        _load_seconds(tmp)
        warm = _load_seconds(tmp)
    print(f"vocabulary load + compiled tables, fresh process (CPU s): compiled {cold:.2f}, from the user "
          f"cache {warm:.2f} ({cold / warm:.1f}x)")

    t0 = time.process_time()
    labels = label_texts(texts)
    t_ours = time.process_time() - t0
    r_ours = _rate(len(texts), t_ours)
    print(f"ecgkit label_texts, repeated reports (dedup):   {r_ours:12,.0f} texts/s  ({t_ours:.2f} s CPU, "
          f"{int((labels.to_numpy() == 1).sum()):,} positive labels)")

    distinct = _distinct_reports(reports, args.n)
    t0 = time.process_time()
    got = label_texts(distinct)
    t_dist = time.process_time() - t0
    r_dist = _rate(len(distinct), t_dist)
    print(f"compiled pass, {len(distinct):,} distinct reports, with dedup (label_texts): {r_dist:12,.0f} texts/s  "
          f"({t_dist:.2f} s CPU, {int((got.to_numpy() == 1).sum()):,} positive labels)")
    t0 = time.process_time()
    label_batch(distinct, vocab, 1)
    t_nodedup = time.process_time() - t0
    r_nodedup = _rate(len(distinct), t_nodedup)
    print(f"compiled pass, {len(distinct):,} distinct reports, no dedup (label_batch): {r_nodedup:12,.0f} texts/s  "
          f"({t_nodedup:.2f} s CPU)")

    m = min(len(distinct), args.python_n)
    t0 = time.process_time()
    label_texts(distinct[:m], engine="python")
    t_py = time.process_time() - t0
    r_py = _rate(m, t_py)
    print(f"per-report Python path (reference), distinct, per-call memo on: {r_py:12,.0f} texts/s  ({m:,} texts)")
    m = min(len(distinct), args.no_cache_n)
    t0 = time.process_time()
    for text in distinct[:m]:
        _analyze_report(text, vocab, {}, {})
    t_cold = time.process_time() - t0
    r_cold = _rate(m, t_cold)
    print(f"per-report Python path, no memo (every report from scratch): {r_cold:12,.0f} texts/s  ({m:,} texts)")

    w = args.workers
    t0 = time.perf_counter()
    explain_many(distinct, vocab, 1, workers=1)
    t_1 = time.perf_counter() - t0
    print(f"explain_many (compiled, with provenance), distinct, --workers 1 (wall clock): "
          f"{_rate(len(distinct), t_1):12,.0f} texts/s  ({t_1:.2f} s)")
    t0 = time.perf_counter()
    explain_many(distinct, vocab, 1, workers=w)
    t_w = time.perf_counter() - t0
    print(f"explain_many (compiled, with provenance), distinct, --workers {w} (wall clock): "
          f"{_rate(len(distinct), t_w):12,.0f} texts/s  ({t_w:.2f} s)")

    b = min(len(texts), args.baseline_n)
    sample = [normalize_text(t) for t in distinct[:b]]
    t0 = time.process_time()
    for text in sample:
        for p in patterns[:50]:
            re.search(p, text)
    t_re = (time.process_time() - t0) * len(patterns) / 50
    r_re = _rate(b, t_re)
    print(f"baseline re.search per pattern (distinct):      {r_re:12,.0f} texts/s  ({b:,} texts, first 50 "
          f"patterns, scaled to all {len(patterns)})")
    cache = getattr(re, "_MAXCACHE", 512)
    if len(patterns) > cache:
        print(f"  note: {len(patterns)} patterns exceed re's compiled-pattern cache ({cache}), so re.search "
              f"recompiles on every call; the precompiled loop below is the fair per-pattern baseline")

    compiled = [re.compile(p) for p in patterns]
    t0 = time.process_time()
    for text in sample:
        for c in compiled:
            c.search(text)
    t_comp = time.process_time() - t0
    r_comp = _rate(b, t_comp)
    print(f"precompiled pattern loop (distinct, no rules):  {r_comp:12,.0f} texts/s  ({b:,} texts)")

    k = min(len(distinct), 200_000)
    norm = [normalize_text(t) for t in distinct[:k]]
    t0 = time.process_time()
    n_hits = 0
    for text in norm:
        for _ in vocab.automaton.iter(text):
            n_hits += 1
    t_ac = time.process_time() - t0
    print(f"bare pyahocorasick pass (no rules):             {_rate(k, t_ac):12,.0f} texts/s  ({k:,} normalised)")

    print(f"ratio compiled distinct, dedup / precompiled loop:    {r_dist / r_comp:12,.1f}x")
    print(f"ratio compiled distinct, no dedup / precompiled loop: {r_nodedup / r_comp:12,.1f}x")
    print(f"ratio compiled / per-report Python path (memo on):    {r_dist / r_py:12,.1f}x")
    print(f"ratio repeated (dedup) / precompiled loop:            {r_ours / r_comp:12,.1f}x")
    print(f"target >= 100,000 distinct texts/s on one core: with dedup {'met' if r_dist >= 1e5 else 'NOT met'}, "
          f"no dedup {'met' if r_nodedup >= 1e5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
