"""Speed of ecgkit's labeller against per-pattern regex baselines, in one run, on one core.

Input: the PTB-XL ``report`` texts of ``ptbxl_database.csv`` replicated to ``--n`` texts (default
1,000,000). Measured:

* ``ecgkit label_texts`` on all ``--n`` texts, all context rules on (identical reports are labelled once);
* ``ecgkit, no caching``: every text analysed from scratch (no report dedup, no statement cache) --
  the rate for an archive where no two reports are alike;
* baseline ``re.search`` per pattern per text over the same vocabulary phrases (word-bounded), and the
  same with precompiled patterns, on a prefix of ``--baseline-n`` texts (they are too slow for 1 M);
* a bare pyahocorasick pass (``automaton.iter``) over the normalised texts: matching only, no rules.

Usage::

    python benchmarks/bench_labels.py [--n 1000000] [--baseline-n 5000]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecgkit.labels import label_texts, load_vocabulary  # noqa: E402
from ecgkit.labels.core import _analyze  # noqa: E402
from ecgkit.labels.normalize import normalize_text  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--baseline-n", type=int, default=5_000)
    args = ap.parse_args(argv)

    reports = [r if isinstance(r, str) else "" for r in pd.read_csv(args.csv)["report"]]
    texts = (reports * (args.n // len(reports) + 1))[:args.n]
    vocab = load_vocabulary("ecg-p18")
    patterns = _baseline_patterns(vocab.source)
    print(f"{len(texts):,} texts ({len(set(reports))} distinct PTB-XL reports); baseline: {len(patterns)} "
          f"patterns (one per vocabulary phrase, macros as alternations); ecgkit: {vocab.n_phrases} "
          f"expanded phrases in one automaton")

    t0 = time.perf_counter()
    labels = label_texts(texts)
    t_ours = time.perf_counter() - t0
    r_ours = _rate(len(texts), t_ours)
    print(f"ecgkit label_texts (all rules, dedup):  {r_ours:12,.0f} texts/s  ({t_ours:.2f} s, "
          f"{int((labels.to_numpy() == 1).sum()):,} positive labels)")

    m = min(len(texts), 20_000)
    t0 = time.perf_counter()
    for text in texts[:m]:
        _analyze(text, vocab, {})
    t_cold = time.perf_counter() - t0
    r_cold = _rate(m, t_cold)
    print(f"ecgkit, no caching (all rules):         {r_cold:12,.0f} texts/s  ({m:,} texts)")

    b = min(len(texts), args.baseline_n)
    sample = [normalize_text(t) for t in texts[:b]]
    t0 = time.perf_counter()
    hits_re = 0
    for text in sample:
        for p in patterns:
            if re.search(p, text):
                hits_re += 1
    t_re = time.perf_counter() - t0
    r_re = _rate(b, t_re)
    print(f"baseline re.search per pattern:         {r_re:12,.0f} texts/s  ({b:,} texts)")
    cache = getattr(re, "_MAXCACHE", 512)
    if len(patterns) > cache:
        print(f"  note: {len(patterns)} patterns exceed re's compiled-pattern cache ({cache}), so re.search "
              f"recompiles on every call; the precompiled loop below is the fair per-pattern baseline")

    compiled = [re.compile(p) for p in patterns]
    t0 = time.perf_counter()
    for text in sample:
        for c in compiled:
            c.search(text)
    t_comp = time.perf_counter() - t0
    r_comp = _rate(b, t_comp)
    print(f"precompiled pattern loop:               {r_comp:12,.0f} texts/s  ({b:,} texts)")

    k = min(len(texts), 200_000)
    norm = [normalize_text(t) for t in texts[:k]]
    t0 = time.perf_counter()
    n_hits = 0
    for text in norm:
        for _ in vocab.automaton.iter(text):
            n_hits += 1
    t_ac = time.perf_counter() - t0
    print(f"bare pyahocorasick pass (no rules):     {_rate(k, t_ac):12,.0f} texts/s  ({k:,} normalised texts)")

    print(f"ratio ecgkit / re.search baseline:      {r_ours / r_re:12,.1f}x")
    print(f"ratio ecgkit no caching / baseline:     {r_cold / r_re:12,.1f}x")
    print(f"ratio ecgkit / precompiled loop:        {r_ours / r_comp:12,.1f}x")
    print(f"ratio ecgkit no caching / precompiled:  {r_cold / r_comp:12,.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
