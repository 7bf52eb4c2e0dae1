"""Measure the hostile corpus (``tests/hostile_corpus.py``) against an ecgkit checkout.

Builds the 250 damaged variants of the real fixtures, scans each through the CLI path with a
10 s alarm, and prints: variants tried / ok / quarantined / skipped / crashed / hung / silently
wrong, plus each crash, hang and silently wrong outcome. To measure an older commit::

    git archive <commit> ecgkit data | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base python benchmarks/hostile_corpus.py

Recorded (2-core box, 2026-12-02): commit 9edf0b0: 250 tried, 86 ok, 150 quarantined, 1 skipped,
10 crashed, 3 hung, 36 silently wrong; branch issue-11: 55 ok, 191 quarantined, 4 skipped,
0 crashed, 0 hung, 0 silently wrong.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hostile_corpus import build_corpus, run_variant, tally  # noqa: E402


def main() -> None:
    import ecgkit

    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    root = Path(tempfile.mkdtemp(prefix="ecgkit-hostile-"))
    try:
        start = time.perf_counter()
        variants = build_corpus(shared, root)
        outcomes = []
        for v in variants:
            o = run_variant(v, root / "out" / v.folder.name, timeout_s=10)
            outcomes.append(o)
            if o.status in ("crashed", "hung") or o.silently_wrong:
                print(f"{o.status:11s} wrong={o.silently_wrong!s:5s} {v.name}: {o.detail}")
        print(f"ecgkit {ecgkit.__file__}")
        print(json.dumps(tally(outcomes)))
        print(dict(Counter(f"{o.variant.kind}:{o.status}" for o in outcomes)))
        print(f"{time.perf_counter() - start:.1f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
