"""Label free-text ECG statements: :func:`label_texts` (a column of reports) and :func:`explain` (one)."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import pandas as pd

from ecgkit.labels.normalize import decode_bytes, normalize_text
from ecgkit.labels.segment import CODE, FOOTER, Statement, segment_report
from ecgkit.labels.rules import Decision, apply_conditions, decide_statement
from ecgkit.labels.vocab import Vocabulary, load_vocabulary

logger = logging.getLogger(__name__)

UncertainPolicy = Literal["positive", "negative", "mask"]
#: "compiled": the batch pass of :mod:`ecgkit.labels.compiled`; "python": the per-report reference
Engine = Literal["compiled", "python"]
ENGINES = ("compiled", "python")
_POLICY_VALUE = {"positive": 1, "negative": 0, "mask": -1}


@dataclass(frozen=True)
class Mention:
    """One label phrase found in a report and the rule that decided it.

    Attributes
    ----------
    label : str
        Vocabulary label (``"RBBB"``).
    decision : str
        ``"asserted"`` (sets the label), ``"uncertain"`` (set by the ``uncertain`` policy), or one that
        does not set it: ``"negated"`` (incl. "no longer present"), ``"replaced"`` ("X has replaced Y":
        Y), ``"history"``, ``"comparison"`` (a change line after "When compared with ..." without a
        "now present"/"has replaced" mark), ``"excluded"`` ("Confirmed by ..." lines, "minimal voltage
        criteria for LVH", failed conditions such as a 2:1 block in a report of atrial flutter).
    phrase : str
        The matched phrase, normalised.
    statement : int
        1-based index of the statement in :func:`segments` (a line with its continuation lines,
        a piece of a one-line report between runs of spaces, a sentence, or a footer).
    text : str
        The statement as written.
    cue : str or None
        The cue phrase (or condition) behind a decision other than "asserted".
    via : str or None
        For implied labels, the label that implies it (VPC via VBIG); ``"fuzzy"`` when the phrase
        matched through a one-edit misspelling ("bigemeny"), ``"VBIG+fuzzy"`` for both.
    """

    label: str
    decision: str
    phrase: str
    statement: int
    text: str
    cue: str | None = None
    via: str | None = None


def _check_policy(uncertain: str) -> int:
    if uncertain not in _POLICY_VALUE:
        raise ValueError(f"uncertain must be one of {list(_POLICY_VALUE)}, got {uncertain!r}")
    return _POLICY_VALUE[uncertain]


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _as_text(value: Any, row: Any) -> str:
    """One input element as report text: a str, bytes, or a sequence of statement lines."""
    if isinstance(value, str):
        return value
    if _is_missing(value):
        return ""
    if isinstance(value, (bytes, bytearray)):
        return decode_bytes(bytes(value))
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        try:
            return "\n".join(value)  # the common case: every statement a str
        except TypeError:
            pass  # bytes or missing statements among them: one by one
        lines = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, (bytes, bytearray)):
                lines.append(decode_bytes(bytes(item)))
            elif not _is_missing(item):
                raise TypeError(f"label_texts: row {row!r}, statement {i} is {type(item).__name__}, "
                                f"expected str")
        return "\n".join(lines)
    raise TypeError(f"label_texts: row {row!r} is {type(value).__name__}, expected str, a list of str "
                    f"statements, or None")


def _analyze(text: str, vocab: Vocabulary,
             cache: dict[tuple[str, bool], tuple[list[Decision], bool]]) -> list[tuple[int, str, Decision]]:
    """Decisions for one report: (statement index, statement text, decision)."""
    return _analyze_report(text, vocab, cache)[0]


def _analyze_report(text: str, vocab: Vocabulary, cache: dict[tuple[str, bool], tuple[list[Decision], bool]],
                    seg_cache: dict[Any, Any] | None = None) -> tuple[list[tuple[int, str, Decision]], str | None]:
    """Decisions for one report and the status its footers state (the last one wins; None: none).

    ``cache`` memoises decisions per (statement, comparison section), ``seg_cache`` line
    segmentations (see :func:`ecgkit.labels.segment.segment_report`); both live for one call.
    """
    out: list[tuple[int, str, Decision]] = []
    in_comparison = False
    status = None
    for i, st in enumerate(segment_report(text, vocab.segmenter, seg_cache), start=1):
        if st.kind == CODE:
            continue
        footer = st.kind == FOOTER
        if footer and st.status is not None:
            status = st.status
        # keyed on the text as written: a repeated statement skips normalisation too
        key = (st.text, in_comparison and not footer)
        got = cache.get(key)
        if got is None:
            got = decide_statement(normalize_text(st.text), vocab, key[1])
            cache[key] = got
        decisions, starts = got
        if footer:
            out.extend((i, st.text, replace(d, decision="excluded", cue=st.cue)) for d in decisions)
            continue
        out.extend((i, st.text, d) for d in decisions)
        in_comparison = in_comparison or starts
    if any(d.condition is not None for _, _, d in out):
        checked = apply_conditions([d for _, _, d in out])
        out = [(i, stmt, d) for (i, stmt, _), d in zip(out, checked)]
    return out, status


def _aggregate(decisions: Iterable[Decision], index: dict[str, int], row: np.ndarray, unc: int) -> None:
    """Fill one int8 label row: asserted -> 1, else uncertain -> policy value, else 0."""
    for d in decisions:
        j = index[d.label]
        if d.decision == "asserted":
            row[j] = 1
        elif d.decision == "uncertain" and row[j] != 1:
            row[j] = unc if row[j] == 0 or unc == 1 else row[j]


def label_texts(texts: Iterable[Any] | pd.Series | str, vocabulary: str | Path | Vocabulary = "ecg-p18",
                uncertain: UncertainPolicy = "positive", engine: Engine = "compiled") -> pd.DataFrame:
    """Label report texts with the vocabulary's labels by string matching with context rules.

    Parameters
    ----------
    texts : iterable or pandas.Series
        One element per record: a report ``str`` (lines separated by newlines), a list/array of
        statement lines, ``bytes`` (UTF-8, else cp1252), or a missing value (None, NaN, pd.NA) which
        gets all zeros. A single ``str`` is one record.
    vocabulary : str, Path or Vocabulary
        ``"ecg-p18"`` (shipped) or a path to a vocabulary YAML file with the same keys.
    uncertain : {"positive", "negative", "mask"}
        Value for labels only mentioned with a hedge ("possible RVH"): 1, 0, or -1 (so training can
        mask them). A label asserted elsewhere in the same report is 1 regardless.
    engine : {"compiled", "python"}
        The batch pass (default) or the per-report reference path; both give the same result.

    Returns
    -------
    pandas.DataFrame
        Shape (n_records, n_labels), one int8 column per label in vocabulary order, values in
        {0, 1} (and -1 under ``uncertain="mask"``); index is the Series' index or 0..n-1.

    Raises
    ------
    TypeError
        If an element is of another type (int, dict, ...); the message names the row.
    ValueError
        If ``uncertain`` is not one of the three policies.

    Notes
    -----
    Identical reports are labelled once (factorised) and lines and statements are matched once within a
    call, so archives where most reports repeat label at millions of reports per minute.

    Examples
    --------
    >>> label_texts(["Atrial fibrillation\\nwith rapid ventricular response", None])[["AFIB", "AFL"]]
       AFIB  AFL
    0     1    0
    1     0    0
    """
    unc = _check_policy(uncertain)
    _check_engine(engine)
    vocab = load_vocabulary(vocabulary)
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    if isinstance(texts, pd.Series):
        index = texts.index
        values = texts.tolist()
    else:
        values = list(texts)
        index = pd.RangeIndex(len(values))
    rows = index.tolist() if isinstance(texts, pd.Series) else range(len(values))
    keys = [v if isinstance(v, str) else _as_text(v, r) for v, r in zip(values, rows)]
    out, _, _ = _label_keys(keys, vocab, unc, with_provenance=False, engine=engine)
    return pd.DataFrame(out, index=index, columns=list(vocab.labels))


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")


def _label_keys(keys: list[str], vocab: Vocabulary, unc: int, *, with_provenance: bool,
                engine: Engine = "compiled") -> tuple[np.ndarray, list[str], list[str | None]]:
    """Label report strings, each distinct report once; optionally with provenance strings.

    Returns the labels, the provenance strings (empty list without provenance) and, per report,
    the status its footers state (None when they state none).
    """
    if engine == "compiled":
        from ecgkit.labels.compiled import factorize, label_batch

        codes, distinct = factorize(keys)
        got, got_prov, got_status = label_batch(distinct, vocab, unc, with_provenance=with_provenance)
        if not len(codes):
            return np.zeros((0, len(vocab.labels)), dtype=np.int8), [], []
        return (got[codes], [got_prov[c] for c in codes] if with_provenance else [],
                [got_status[c] for c in codes])
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    col = {lab: j for j, lab in enumerate(vocab.labels)}
    table = np.zeros((len(uniques), len(vocab.labels)), dtype=np.int8)
    prov = [""] * len(uniques)
    status: list[str | None] = [None] * len(uniques)
    cache: dict[tuple[str, bool], tuple[list[Decision], bool]] = {}
    seg_cache: dict[Any, Any] = {}
    for u, text in enumerate(uniques):
        if not text:
            continue
        if len(cache) > _MEMO_MAX or len(seg_cache) > _MEMO_MAX:  # bound memory on huge distinct inputs
            cache.clear()
            seg_cache.clear()
        found, status[u] = _analyze_report(text, vocab, cache, seg_cache)
        _aggregate((d for _, _, d in found), col, table[u], unc)
        if with_provenance and found:
            prov[u] = provenance(Mention(d.label, d.decision, d.phrase, i, stmt, d.cue, d.via)
                                 for i, stmt, d in found)
    logger.debug("labelled %d texts (%d unique, %d unique statements)", len(codes), len(uniques), len(cache))
    if not len(codes):
        return np.zeros((0, len(vocab.labels)), dtype=np.int8), [], []
    return (table[codes], [prov[c] for c in codes] if with_provenance else [],
            [status[c] for c in codes])


def explain_many(texts: list[str], vocab: Vocabulary, unc: int, workers: int = 1,
                 engine: Engine = "compiled") -> tuple[np.ndarray, list[str], list[str | None]]:
    """Labels (int8, shape (n, n_labels)), provenance strings and footer-stated report status
    (``"confirmed"``, ``"unconfirmed"`` or None) for report strings (missing = "").

    ``workers > 1`` (``0``: one per core) labels the distinct reports in that many processes (chunks of distinct texts
    go out, label rows come back); the result is identical to ``workers=1``. Each process runs
    ``engine`` (the compiled pass by default).
    """
    from ecgkit.engines import map_tasks, resolve_workers

    _check_engine(engine)
    workers = resolve_workers(workers)  # 0: one per core, as everywhere else
    if workers <= 1 or len(texts) < 2 * _CHUNK:
        return _label_keys(texts, vocab, unc, with_provenance=True, engine=engine)

    codes, uniques = pd.factorize(pd.Series(texts, dtype=object), sort=False)
    uniq = list(uniques)
    size = max(_CHUNK, -(-len(uniq) // (4 * workers)))
    tasks = [(k, uniq[k:k + size], vocab.source, unc, engine) for k in range(0, len(uniq), size)]
    table = np.zeros((len(uniq), len(vocab.labels)), dtype=np.int8)
    prov = [""] * len(uniq)
    status: list[str | None] = [None] * len(uniq)
    for start, part, part_prov, part_status in map_tasks(_label_chunk, tasks, workers=workers):
        table[start:start + len(part)] = part
        prov[start:start + len(part)] = part_prov
        status[start:start + len(part)] = part_status
    return table[codes], [prov[c] for c in codes], [status[c] for c in codes]


_MEMO_MAX = 500_000  # memo entries (statements, lines) kept within one call
_CHUNK = 2000  # distinct reports per task: large enough that a task's start-up is amortised


def _label_chunk(task: tuple[int, list[str], str, int, Engine]) -> tuple[int, np.ndarray, list[str], list[str | None]]:
    start, texts, source, unc, engine = task
    table, prov, status = _label_keys(texts, load_vocabulary(source), unc, with_provenance=True, engine=engine)
    return start, table, prov, status


def report_status(texts: Iterable[Any] | pd.Series | str,
                  vocabulary: str | Path | Vocabulary = "ecg-p18", engine: Engine = "compiled") -> list[str]:
    """Confirmation status each report states: ``"confirmed"``, ``"unconfirmed"`` or ``"unknown"``.

    From the report's own footers (``footers`` in the vocabulary: "Confirmed by ...", "unconfirmed
    report", "unbestätigter Bericht", "Obekräftad", ...); when a report holds several, the last
    one wins (an overreader's line follows the device's). :func:`ecgkit.labels.label_manifest`
    also reads a format's own field (MUSE ``TestDemographics/Status``), which wins over the text.

    Examples
    --------
    >>> report_status(["sinusrhythmus normales ekg 4.46   unbestätigter bericht", "AF", None])
    ['unconfirmed', 'unknown', 'unknown']
    """
    vocab = load_vocabulary(vocabulary)
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    values = texts.tolist() if isinstance(texts, pd.Series) else list(texts)
    keys = [_as_text(v, r) for r, v in enumerate(values)]
    _check_engine(engine)
    return [s or "unknown" for s in _label_keys(keys, vocab, 1, with_provenance=False, engine=engine)[2]]


def explain(text: Any, vocabulary: str | Path | Vocabulary = "ecg-p18") -> list[Mention]:
    """Every label phrase found in one report, with the statement and the rule that decided it.

    Parameters
    ----------
    text : str, list of str, bytes or None
        One report, as for one element of :func:`label_texts`.
    vocabulary : str, Path or Vocabulary
        As for :func:`label_texts`.

    Returns
    -------
    list of Mention
        In report order; empty for a missing or empty report. ``pd.DataFrame(explain(t))`` gives a table.

    Examples
    --------
    >>> [(m.label, m.decision) for m in explain("RBBB with possible RVH")]
    [('RBBB', 'asserted'), ('RVH', 'uncertain')]
    """
    vocab = load_vocabulary(vocabulary)
    report = _as_text(text, 0)
    return [Mention(d.label, d.decision, d.phrase, i, stmt, d.cue, d.via)
            for i, stmt, d in _analyze(report, vocab, {})]


def segments(text: Any, vocabulary: str | Path | Vocabulary = "ecg-p18") -> list[Statement]:
    """How a report is cut into statements before any rule runs (what ``explain``'s ``statement`` counts).

    Parameters
    ----------
    text : str, list of str, bytes or None
        One report, as for one element of :func:`label_texts`.
    vocabulary : str, Path or Vocabulary
        As for :func:`label_texts` (its footers, joiners and continuation words).

    Returns
    -------
    list of Statement
        ``text`` as written, ``kind`` ("text", "footer" or "code") and, for footers, ``status``
        ("confirmed", "unconfirmed" or None). Statement N of :func:`explain` is the N-th entry.

    Examples
    --------
    >>> [(s.text, s.kind) for s in segments("vorhofflimmern 4.46   unbestätigter bericht")]
    [('vorhofflimmern', 'text'), ('4.46', 'code'), ('unbestätigter bericht', 'footer')]
    """
    vocab = load_vocabulary(vocabulary)
    return segment_report(_as_text(text, 0), vocab.segmenter)


def provenance(mentions: Iterable[Mention]) -> str:
    """A compact, human-readable account of mentions (the manifest's ``label_provenance``).

    ``LABEL<-'phrase' (stmt N)`` for asserted mentions, ``LABEL?`` for uncertain and ``LABEL-`` for
    the others, with the deciding rule and cue: ``RVH?<-'right ventricular hypertrophy' (stmt 1,
    uncertain: 'possible')``.
    """
    parts = []
    for m in mentions:
        mark = "" if m.decision == "asserted" else "?" if m.decision == "uncertain" else "-"
        via = "" if not m.via else " via=fuzzy" if m.via == "fuzzy" else f" via {m.via}"
        why = "" if m.decision == "asserted" else f", {m.decision}: '{m.cue}'"
        parts.append(f"{m.label}{mark}<-'{m.phrase}'{via} (stmt {m.statement}{why})")
    return "; ".join(parts)
