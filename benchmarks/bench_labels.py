"""Speed of ecgkit's labeller against per-pattern regex baselines, in one run, on one core.

Inputs: the PTB-XL ``report`` texts of ``ptbxl_database.csv`` replicated to ``--n`` texts (default
1,000,000), and ``--n`` *distinct* reports built from the statements of those reports (2-5 library
statements per report, one line each, plus a measurement line that differs in every report, as
MUSE exports read). Measured (CPU seconds of this process, so other load on the box counts less):

* ``label_texts`` on the repeated texts (identical reports are labelled once);
* ``label_texts`` on the distinct reports: dedup finds nothing; the per-call memo of lines and
  statements still applies (library statements repeat across distinct reports);
* no dedup and no memo: every report analysed from scratch;
* ``explain_many(..., workers=N)`` on the distinct reports (wall clock);
* baselines on a prefix of ``--baseline-n`` distinct texts: ``re.search`` per pattern per text over
  the same vocabulary phrases (word-bounded), and the same with precompiled patterns (no rules);
* a bare pyahocorasick pass (``automaton.iter``) over the normalised texts: matching only, no rules.

Usage::

    python benchmarks/bench_labels.py [--n 1000000] [--baseline-n 5000] [--workers 2]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.labels import label_texts, load_vocabulary  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=5_000)
    ap.add_argument("--no-cache-n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2, help="processes for the --workers row")
    args = ap.parse_args(argv)

    reports = [r if isinstance(r, str) else "" for r in pd.read_csv(args.csv)["report"]]
    texts = (reports * (args.n // len(reports) + 1))[:args.n]
    vocab = load_vocabulary("ecg-p18")
    patterns = _baseline_patterns(vocab.source)
    print(f"{len(texts):,} texts ({len(set(reports))} distinct PTB-XL reports); baseline: {len(patterns)} "
          f"patterns (one per vocabulary phrase, macros as alternations); ecgkit: {vocab.n_phrases} "
          f"expanded phrases in one automaton, {len(vocab.fuzzy):,} one-edit spellings")

    t0 = time.process_time()
    labels = label_texts(texts)
    t_ours = time.process_time() - t0
    r_ours = _rate(len(texts), t_ours)
    print(f"ecgkit label_texts, repeated reports (dedup):   {r_ours:12,.0f} texts/s  ({t_ours:.2f} s CPU, "
          f"{int((labels.to_numpy() == 1).sum()):,} positive labels)")

    distinct = _distinct_reports(reports, args.n)
    t0 = time.process_time()
    label_texts(distinct)
    t_dist = time.process_time() - t0
    r_dist = _rate(len(distinct), t_dist)
    print(f"ecgkit label_texts, {len(distinct):,} distinct reports (dedup finds none; per-call line and "
          f"statement memo on): {r_dist:12,.0f} texts/s  ({t_dist:.2f} s CPU)")

    m = min(len(distinct), args.no_cache_n)
    t0 = time.process_time()
    for text in distinct[:m]:
        _analyze_report(text, vocab, {}, {})
    t_cold = time.process_time() - t0
    r_cold = _rate(m, t_cold)
    print(f"ecgkit, no dedup and no memo (every report from scratch): {r_cold:12,.0f} texts/s  ({m:,} texts)")

    t0 = time.perf_counter()
    explain_many(distinct, vocab, 1, workers=1)
    t_1 = time.perf_counter() - t0
    print(f"ecgkit explain_many, distinct reports, --workers 1 (wall clock): "
          f"{_rate(len(distinct), t_1):12,.0f} texts/s  ({t_1:.2f} s)")
    w = args.workers
    t0 = time.perf_counter()
    explain_many(distinct, vocab, 1, workers=w)
    t_w = time.perf_counter() - t0
    print(f"ecgkit explain_many, distinct reports, --workers {w} (wall clock): "
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

    print(f"ratio distinct, memo on / precompiled loop:     {r_dist / r_comp:12,.1f}x")
    print(f"ratio distinct, no memo / precompiled loop:     {r_cold / r_comp:12,.1f}x")
    print(f"ratio repeated (dedup) / precompiled loop:      {r_ours / r_comp:12,.1f}x")
    print(f"target >= 100,000 distinct texts/s on one core: memo on {'met' if r_dist >= 1e5 else 'NOT met'}, "
          f"no memo {'met' if r_cold >= 1e5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
