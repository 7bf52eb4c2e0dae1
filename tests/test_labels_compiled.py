"""The compiled label pass gives exactly what the per-report reference path gives.

Both engines run on the same inputs and must agree on every label value (under every uncertain
policy), every provenance string and every footer-stated report status: the 555-case statement
table, the statement-library table, the real PTB-XL reports, the one-line/footer, misspelling,
word-order and coordination cases, and reports assembled at random from all of those with the
separators, footers, codes, continuation lines and odd characters that make segmentation work.
"""
from __future__ import annotations

import multiprocessing
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_labels_language as language
import test_labels_libraries as libraries
import test_labels_segment as segment_cases
import test_labels_statements as statements

from ecgkit.labels import explain, label_texts, load_vocabulary, provenance, report_status
from ecgkit.labels.compiled import label_batch
from ecgkit.labels.core import _label_keys, explain_many

TABLE_555 = [t for name in ("RHYTHM", "CONDUCTION", "ECTOPY", "HYPERTROPHY", "CONTEXT", "GERMAN", "SWEDISH",
                            "TYPED_AND_PHILIPS", "TRAPS", "ENCODING") for t, _ in getattr(statements, name)]
LANGUAGE = [t for name in ("SPELLING", "GUARDS", "WORD_ORDER", "COORDINATION") for t, _ in getattr(language, name)]
FOOTERS = segment_cases._exclusion_cues()
SEPARATORS = [" ", "  ", "   ", "\t", ". ", "; ", ", ", "\n", "\r\n", "\r", "\n\n", " 4.46      ", "  4.46  ",
              "? ", " - ", "\x85", "\u00a0", "\x0b", "  \n  "]


def _assert_same(texts: list[str]) -> None:
    """Both engines, all three uncertain policies, with provenance and status."""
    vocab = load_vocabulary()
    for unc in (1, 0, -1):
        ref = _label_keys(texts, vocab, unc, with_provenance=True, engine="python")
        got = _label_keys(texts, vocab, unc, with_provenance=True, engine="compiled")
        bad = np.flatnonzero((ref[0] != got[0]).any(axis=1))
        assert not len(bad), f"labels differ (uncertain={unc}) on {[texts[i] for i in bad[:5]]}"
        prov = [i for i, (a, b) in enumerate(zip(ref[1], got[1])) if a != b]
        assert not prov, f"provenance differs on {texts[prov[0]]!r}: {ref[1][prov[0]]!r} vs {got[1][prov[0]]!r}"
        status = [i for i, (a, b) in enumerate(zip(ref[2], got[2])) if a != b]
        assert not status, f"status differs on {[texts[i] for i in status[:5]]}"


def test_555_case_table_and_library_table():
    assert len(TABLE_555) >= 555
    texts = [t for t in TABLE_555 if isinstance(t, str)] + [t for _, t, _ in libraries.TABLE]
    _assert_same(texts)
    # lists of statements and bytes go through the same front door
    others = [t for t in TABLE_555 if not isinstance(t, str)]
    for engine in ("compiled", "python"):
        assert label_texts(others, engine=engine).equals(label_texts(others, engine="python"))


def test_ptbxl_reports(shared_data: Path):
    db = pd.read_csv(shared_data / "ptbxl" / "ptbxl_database.csv")
    reports = [r if isinstance(r, str) else "" for r in db["report"]]
    assert len(reports) >= 500
    _assert_same(reports)
    # each footer glued to every other report, as devices print it
    _assert_same([f"{r}    4.46      {FOOTERS[i % len(FOOTERS)]}" if i % 2 else r for i, r in enumerate(reports)])


def test_one_line_footer_misspelling_word_order_and_coordination_cases():
    texts = list(LANGUAGE) + list(segment_cases.REPORTS)
    for report in segment_cases.REPORTS:
        for cue in FOOTERS:
            for sep in (" ", "  ", ". ", ", ", "\n", " 4.46      "):
                texts.append(f"{report}{sep}{cue} Smith, John (1234) on 1/2/2020")
                texts.append(f"{report}{sep}{cue.upper()}")
    texts += [
        "vorhofflimmern    kein rechtsschenkelblock 4.46   unbestätigter bericht",
        "tachykardes vorhofflimmern lagetyp normal  4.46      unbestätigter bericht",
        "Sinus rhythm\nwith 1st degree A-V block\nand occasional PVCs\nConfirmed by Dr X",
        "When compared with ECG of 01-JAN-2020\nAtrial fibrillation has replaced sinus rhythm\nRBBB now present",
        "When compared with ECG of 01-JAN-2020 no significant change\nleft bundle branch block",
        "Atrial flutter with 2:1 A-V conduction\n2:1 AV block",
        "PVCs. Bigeminy.", "Bigeminy", "Vorhofflattern und -flimmern", "atrial flutter and fibrillation",
        "possible LVH, RBBB", "?AF", "LVH?", "No RBBB\x85anymore", "No\x1b[1mRBBB\x1b[0m", "VorhofflimmernÃ¤",
        "f#r vorhofflimmern", "ischÄmie", "", " ", "\n\n", "4.46", "Unconfirmed report", "abn. ecg. lvh.",
        "Sinus rhythm; RBBB; LAFB.", "(RBBB). LVH!", "a" * 30 + ". RBBB", "with RBBB", "  with RBBB",
    ]
    _assert_same(texts)


def test_random_reports_from_all_tables():
    """Reports put together at random from every statement above, with every separator."""
    rng = random.Random(13)
    pool = [t for t in TABLE_555 if isinstance(t, str)] + LANGUAGE + FOOTERS + [t for _, t, _ in libraries.TABLE]
    pool += ["with 1st degree A-V block", "and LAFB", "When compared with ECG of 12-MAR-2019", "now present",
             "has replaced", "4.46", "Vent. rate 73 BPM", "PR interval 160 ms", "mit AV-Block I.", "och VES"]
    texts = set()
    while len(texts) < 4000:
        parts = rng.sample(pool, rng.randint(1, 6))
        out = parts[0]
        for p in parts[1:]:
            out += rng.choice(SEPARATORS) + p
        if rng.random() < 0.2:
            out = out.upper() if rng.random() < 0.5 else out.lower()
        texts.add(out)
    _assert_same(sorted(texts))


# characters and pieces that steer cleaning and segmentation, inserted anywhere
BITS = [" ", "  ", "\t", ".", ". ", "!", "?", ";", ",", "#", "(", ")", "-", "/", "\n", "\r", "\r\n", "\x85", "\xa0",
        "\u2028", "\x1b[1m", "Ã¤", "ä", "Ä", "ß", "_", "4.46", "1.23 ", " 12.34", "with ", "und ", "mit ",
        "When compared with ECG of 1-1-2020", "now present", "İ", "ǅ", "\x00", "\x1e", "\ufeff", "K"]


def test_random_characters_anywhere():
    """Statements cut at random places with odd characters, mojibake, abbreviations and breaks."""
    rng = random.Random(23)
    pool = [t for t in TABLE_555 if isinstance(t, str)] + LANGUAGE + FOOTERS
    abbr = sorted(load_vocabulary().segmenter.abbreviations)
    # mojibake that a lone line repairs but its whole report does not ("ß" is no UTF-8 lead byte)
    texts = {"  atrial   FIBRILLATION\t, Ã¤bestaetigter bericht\nßvent!.SR with 2nd degree HB Mobitz I. occ. APCs"}
    while len(texts) < 4000:
        out = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if r < 0.45:
                p = rng.choice(pool)
                k = rng.randrange(len(p) + 1)
                out.append(p[:k] + rng.choice(BITS) + p[k:] if rng.random() < 0.3 else p)
            elif r < 0.6:
                out.append(rng.choice(abbr) + rng.choice([".", ". ", ".\n", "!", "?"]))
            else:
                out.append(rng.choice(BITS))
            if rng.random() < 0.6:
                out.append(rng.choice([" ", "  ", "\n", ". ", "; ", ", ", "\t"]))
        text = "".join(out)
        texts.add(text.upper() if rng.random() < 0.2 else text)
    _assert_same(sorted(texts))


def test_batches_split_reports_the_same(monkeypatch):
    import ecgkit.labels.compiled as compiled

    texts = [t for t in TABLE_555 if isinstance(t, str)]
    vocab = load_vocabulary()
    whole = label_batch(texts, vocab, -1, with_provenance=True)
    monkeypatch.setattr(compiled, "BATCH", 7)
    parts = label_batch(texts, vocab, -1, with_provenance=True)
    assert (whole[0] == parts[0]).all() and whole[1] == parts[1] and whole[2] == parts[2]


def test_explain_agrees_with_the_compiled_provenance():
    texts = [t for t in TABLE_555 if isinstance(t, str)][:200] + LANGUAGE
    _, prov, _ = explain_many(texts, load_vocabulary(), 1)
    assert prov == [provenance(explain(t)) for t in texts]


def test_workers_use_the_compiled_pass_and_agree(tmp_path, monkeypatch):
    import ecgkit.labels.compiled as compiled

    log = tmp_path / "calls"
    real = compiled.label_batch

    def logged(*args, **kwargs):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    texts = [f"{t}\nVent. rate {60 + i % 90} BPM #{i}" for i, t in enumerate(TABLE_555 * 8) if isinstance(t, str)]
    vocab = load_vocabulary()
    one = explain_many(texts, vocab, -1, workers=1, engine="python")
    monkeypatch.setattr(compiled, "label_batch", logged)
    two = explain_many(texts, vocab, -1, workers=2)
    assert (one[0] == two[0]).all() and one[1] == two[1] and one[2] == two[2]
    every = explain_many(texts, vocab, -1, workers=0)  # 0: one per core
    assert (one[0] == every[0]).all() and one[1] == every[1]
    # which process ran the compiled pass: the patched function reaches the workers only where they are
    # forked (Linux, as CI); under spawn they import the real one, and the agreement above is the check
    if "fork" in multiprocessing.get_all_start_methods():
        pids = set(log.read_text().split())
        assert len(pids) >= 2 and str(os.getpid()) not in pids  # every task ran in a worker


def test_report_status_and_engine_argument():
    texts = ["sinusrhythmus 4.46   unbestätigter bericht", "AF\nConfirmed by Dr X (1)", "AF", None]
    assert report_status(texts) == report_status(texts, engine="python") == ["unconfirmed", "confirmed", "unknown",
                                                                             "unknown"]
    with pytest.raises(ValueError, match="engine"):
        label_texts(["AF"], engine="numba")  # type: ignore[arg-type]


_FRESH = iter(range(1, 1 << 30))


def _load_fresh(path: Path):
    from ecgkit.labels.vocab import _load_cached

    return _load_cached(str(path), path.stat().st_mtime_ns + next(_FRESH))  # a key lru_cache has not seen


def test_vocabulary_cache_round_trip_and_refusals(tmp_path, monkeypatch):
    import os

    from ecgkit.labels import cache

    monkeypatch.setenv("ECGKIT_CACHE_DIR", str(tmp_path / "c"))
    src = Path(load_vocabulary().source)
    built = _load_fresh(src)
    files = list((tmp_path / "c" / "vocab").glob("*.pkl"))
    assert len(files) == 1 and (os.stat(files[0].parent).st_mode & 0o777) == 0o700
    loaded = _load_fresh(src)
    assert loaded is not built and loaded.fuzzy == built.fuzzy
    assert loaded.segmenter.footer_re == built.segmenter.footer_re
    texts = [t for t in TABLE_555 if isinstance(t, str)]
    for engine in ("compiled", "python"):
        assert label_texts(texts, loaded, engine=engine).equals(label_texts(texts, built, engine="python"))
    # a file others may write to, or a corrupt one, is never loaded: the vocabulary is compiled again
    os.chmod(files[0], 0o666)
    with pytest.raises(PermissionError):
        cache._read(files[0])
    files[0].write_bytes(b"not a pickle")
    os.chmod(files[0], 0o600)
    assert label_texts(["AF"], _load_fresh(src)).loc[0, "AFIB"] == 1
    monkeypatch.setenv("ECGKIT_CACHE_DIR", "")
    assert cache.cache_dir() is None
