"""The compiled label pass: many reports at once, with the same result as the per-report rules.

:func:`label_batch` labels a batch of distinct reports in stages that each run over the whole
batch, so that the per-report work left in Python is a handful of C-level string calls:

1. **Lines.** Reports are cleaned (:func:`ecgkit.labels.segment.clean_text`), joined and split
   into lines once; identical lines across the batch are factorised (library statements repeat).
2. **Line classes.** Each distinct line is tested in one pass over the joined lines (regex and
   Aho-Corasick scans that name the line of every hit) for what makes segmentation non-trivial:
   a run of spaces or a tab, a footer phrase, a device code, a sentence end that is not after an
   abbreviation, non-ASCII text. A line with none is one statement (its stripped text); the others
   go through the per-report segmentation (:func:`ecgkit.labels.segment.segment_clean`, on the text
   cleaned once). A line that starts with a continuation word joins the line before it into one
   *unit*, segmented whole: only such a line reaches back across a line break, so a report's
   statements are the concatenation of its units' statements.
3. **Statements.** Distinct statement texts are normalised in one pass (the ASCII ones without
   commas or question marks as one string) and scanned by one integer-valued automaton over the
   joined text, whose hits become flat arrays (statement id, flags: label finding, any finding,
   comparison cue, misspelling). Only statements with a label finding or a misspelling (or a
   comparison cue next to a finding) reach the statement rules
   (:func:`ecgkit.labels.rules.decide_statement`), once per distinct statement and comparison state
   (memoised across the batches of one call).
4. **Reports.** The comparison section (a prefix OR per report), footer voiding, the report-level
   conditions ("bigeminy" requires VPC, a 2:1 block forbids AFL), the uncertain policy and the
   footer status are array operations over the flattened (report, statement, decision) rows.

Every shortcut is taken only where it provably gives what the per-report path gives; the rest
goes through that path. ``tests/test_labels_compiled.py`` checks equality on the 555-case table,
PTB-XL, and the one-line, footer, misspelling and coordination shapes.
"""
from __future__ import annotations

import itertools
import operator
import re
from dataclasses import dataclass, replace
from typing import Any, cast

import ahocorasick
import numpy as np

from ecgkit.labels.normalize import normalize_text
from ecgkit.labels.rules import Decision, decide_statement
from ecgkit.labels.segment import (CODE, FOOTER, TEXT, _HAS_ODD, _ODD_RUN, _first_words, _line_groups,
                                   _starts_with, clean_text, segment_clean)
from ecgkit.labels.vocab import OTHER, Vocabulary

# automaton flags of a key
_LABEL, _FIND, _COMP, _TYPO = 1, 2, 4, 8
# decision codes (only the first two set a label)
_ASSERTED, _UNCERTAIN, _OTHER_DECISION = 0, 1, 2
_KIND = {TEXT: 0, FOOTER: 1, CODE: 2}
_STATUS = {None: 0, "confirmed": 1, "unconfirmed": 2}
_STATUS_NAME: tuple[str | None, ...] = (None, "confirmed", "unconfirmed")
# characters clean_text turns into spaces (its _ODD class, listed: `c in text` is far cheaper than a search)
_ODD_CHARS = tuple(chr(c) for c in [*range(0x3100), 0xfeff] if _HAS_ODD.match(chr(c)) and c != 0x1b)
# what makes a text need clean_text on its own: an escape sequence, a carriage return, mojibake
_SPECIAL = ("\x1b", "\r", "\u00c2", "\u00c3")
_SPECIAL_RE = re.compile("[\x1b\r\u00c2\u00c3]")
_NON_WORD_NL = re.compile(r"[^a-z0-9\n]+")
_DIGRAPH_GROUP = re.compile(r"\(\?:(?:ae|oe|ue|aa)\|[a-z]\|\[\?#\]\)\?")

#: distinct reports per batch (bounds memory); statement decisions are memoised across batches
BATCH = 100_000
_MEMO_MAX = 200_000  # memoised (statement, comparison state) decisions kept within one call


@dataclass(frozen=True)
class Tables:
    """What the compiled pass needs beyond the vocabulary (built once per vocabulary)."""

    statement_ac: Any  # normalised phrase / misspelling key -> flags (ahocorasick.STORE_INTS)
    footer_ac: Any  # literal pieces every footer match contains (None: any footer anchor counts)
    labels: dict[str, int]
    # lines whose first word may start a continuation (case-insensitive, ASCII lines)
    continuation_re: re.Pattern[str]


_TABLES: dict[int, tuple[Vocabulary, Tables]] = {}


def tables(vocab: Vocabulary) -> Tables:
    """The compiled tables of a vocabulary (built on first use, then kept with it)."""
    got = _TABLES.get(id(vocab))
    if got is not None and got[0] is vocab:
        return got[1]
    built = build_tables(vocab)
    register(vocab, built)
    return built


def register(vocab: Vocabulary, built: Tables) -> None:
    """Keep ``built`` as the tables of ``vocab`` (a vocabulary loaded from the cache brings its own)."""
    if len(_TABLES) > 8:
        _TABLES.clear()
    _TABLES[id(vocab)] = (vocab, built)


def build_tables(vocab: Vocabulary) -> Tables:
    flags: dict[str, int] = {}
    for key, entry in vocab.automaton.items():
        f = 0
        if entry.finding is not None:
            f |= _FIND
            if entry.finding.kind != OTHER:
                f |= _LABEL
        if any(c.rule == "comparison" for c in entry.cues):
            f |= _COMP
        if f:
            flags[key] = f
    for typo in vocab.fuzzy:
        key = f" {typo} "
        flags[key] = flags.get(key, 0) | _TYPO
    ac = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for key, f in flags.items():
        ac.add_word(key, f)
    ac.make_automaton()
    first = sorted(_first_words(vocab.segmenter.continuation)) if vocab.segmenter.continuation else []
    cont = re.compile(r"^[^\w\n]*(?:" + "|".join(re.escape(w) for w in first) + r")(?![^\W_])"
                      if first else r"(?!)", re.M | re.I)
    return Tables(ac, _footer_literals(vocab), {lab: j for j, lab in enumerate(vocab.labels)}, cont)


def _footer_literals(vocab: Vocabulary) -> Any:
    """An automaton of one literal piece of each footer alternative (a match always contains it),
    read off the compiled footer pattern; None when a piece cannot be read (then anchors decide)."""
    seg = vocab.segmenter
    if seg.footer_re is None:
        return None
    pattern = _DIGRAPH_GROUP.sub("\x00", seg.footer_re.pattern)
    pattern = re.sub(r"\(\?P<f\d+>", "", pattern.replace(r"(?<![^\W_])(?:", "", 1))
    pattern = pattern.replace(r")(?![^\W_])", "").replace(")", "")
    literals = set()
    for alt in pattern.split("|"):
        pieces = [p for w in alt.split(r"[\W_]+") for p in w.split("\x00")]
        good = [p for p in pieces if p and p.isalnum() and p.isascii()]
        if not good or any(not (p.isalnum() and p.isascii()) for p in pieces if p):
            return None
        literals.add(max(good, key=len))
    ac = ahocorasick.Automaton(ahocorasick.STORE_LENGTH)
    for lit in literals:
        ac.add_word(lit)
    ac.make_automaton()
    return ac


def _line_of(positions: np.ndarray, line_ends: np.ndarray) -> np.ndarray:
    """Index of the line holding each character position of a "\\n"-joined string."""
    return np.searchsorted(line_ends, positions, side="left")


_WORD = np.zeros(256, dtype=bool)  # [^\W_] on ASCII
_SPACE = np.zeros(256, dtype=bool)  # \s on ASCII
_DIGIT = np.zeros(256, dtype=bool)
for _c in range(128):
    _WORD[_c] = chr(_c).isalnum()
    _SPACE[_c] = re.match(r"\s", chr(_c)) is not None
    _DIGIT[_c] = chr(_c).isdigit()
_LOWER_WORD = np.zeros(256, dtype=bool)  # [a-z0-9]
_LOWER_WORD[ord("a"):ord("z") + 1] = True
_LOWER_WORD[ord("0"):ord("9") + 1] = True
_MAX_WINDOW = 24  # split_sentences looks at most this far back for the word before a period


def _sentence_ends(buf: np.ndarray, abbreviations: frozenset[str]) -> np.ndarray:
    """Positions in an ASCII "\n"-joined buffer where :func:`split_sentences` cuts a line: ``;``, or
    ``.``/``!``/``?`` before whitespace or the end, after 3 word characters or ``)``, unless the
    word before it (up to 24 characters back) is an abbreviation."""
    n = len(buf)
    p = np.flatnonzero((buf == 46) | (buf == 33) | (buf == 63) | (buf == 59))
    if not len(p):
        return p
    semi = buf[p] == 59
    nxt = np.where(p + 1 < n, p + 1, 0)
    ok = (p + 1 >= n) | _SPACE[buf[nxt]]
    w = [(p >= k) & _WORD[buf[np.maximum(p - k, 0)]] for k in range(1, 4)]
    ok &= (w[0] & w[1] & w[2]) | ((p >= 1) & (buf[np.maximum(p - 1, 0)] == 41))
    ok &= ~semi
    if abbreviations and ok.any():
        q = p[ok]
        run = np.zeros(len(q), dtype=np.int64)  # length of the word run before q, at most 24
        alive = np.ones(len(q), dtype=bool)
        for k in range(1, _MAX_WINDOW + 1):
            alive &= (q >= k) & _WORD[buf[np.maximum(q - k, 0)]]
            run += alive
        abbr = np.zeros(len(q), dtype=bool)
        low = np.where((buf >= 65) & (buf <= 90), buf + 32, buf).astype(np.uint8)
        by_len: dict[int, set[bytes]] = {}
        for a in abbreviations:
            by_len.setdefault(len(a), set()).add(a.encode("ascii", "replace"))
        for length, words in by_len.items():
            sel = np.flatnonzero(run == length)
            if not len(sel) or length == 0:
                continue
            grab = low[(q[sel, None] - length) + np.arange(length)]
            got = np.frombuffer(grab.tobytes(), dtype=f"S{length}")
            abbr[sel] = np.isin(got, np.array(sorted(words), dtype=f"S{length}"))
        ok[np.flatnonzero(ok)[abbr]] = False
    return p[ok | semi]


def _classify_lines(lines: list[str], vocab: Vocabulary, tab: Tables,
                    seg_cache: dict[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct non-blank line: is it one plain statement (its stripped text), and does it
    continue the line before it. Lines that are not plain are segmented by the per-report code
    (and cached in ``seg_cache`` as :func:`segment_report` expects)."""
    seg = vocab.segmenter
    n = len(lines)
    ascii_ = np.fromiter(map(str.isascii, lines), dtype=bool, count=n)
    idx = np.flatnonzero(ascii_)
    plain = ascii_.copy()
    cont = np.zeros(n, dtype=bool)
    if len(idx):
        sub = [lines[i] for i in idx] if len(idx) < n else lines
        joined = "\n".join(sub)
        buf = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        ends = _ends(buf)
        bad = np.zeros(len(sub), dtype=bool)
        space, dot = buf == 32, buf == 46
        pos = [np.flatnonzero((space[:-1] & space[1:]) | (buf[:-1] == 9)), np.flatnonzero(buf == 9)]
        # a device code "d.dd" (a superset: the per-report code decides whether it is cut out)
        d = np.flatnonzero(dot[1:-2] & _DIGIT[buf[:-3]] & _DIGIT[buf[2:-1]] & _DIGIT[buf[3:]]) + 1
        pos += [d, _sentence_ends(buf, seg.abbreviations)]
        if seg.footer_re is not None:
            low = joined.lower()
            if tab.footer_ac is not None:
                pos.append(np.fromiter((e for e, _ in tab.footer_ac.iter(low)), dtype=np.int64))
            elif seg.anchor_automaton is not None:
                pos.append(np.fromiter((e for e, _ in seg.anchor_automaton.iter(low)), dtype=np.int64))
            else:
                bad[:] = True
        hits = np.concatenate(pos)
        if len(hits):
            bad[_line_of(hits, ends)] = True
        plain[idx[bad]] = False
        if seg.continuation:
            for m in tab.continuation_re.finditer(joined):
                k = int(np.searchsorted(ends, m.start()))
                if not bad[k]:
                    cont[idx[k]] = _starts_with(sub[k].strip(), seg.continuation)
    for i in np.flatnonzero(~plain):
        line = lines[i]
        got = seg_cache.get(line)
        if got is None:
            got = _line_groups(line, seg)
            seg_cache[line] = got
        cont[i] = got[1]
    return plain, cont


def _ends(buf: np.ndarray) -> np.ndarray:
    """Index of the "\\n" after each line of a "\\n"-joined ASCII buffer (the last: its length)."""
    return np.r_[np.flatnonzero(buf == 10), len(buf)]


def _normalise_all(texts: list[str]) -> list[str]:
    """:func:`normalize_text` of each text; plain ASCII texts in one pass over their join."""
    out = np.empty(len(texts), dtype=object)
    plain = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))
    for mark in (",", "?"):
        plain &= ~np.fromiter(map(operator.contains, texts, itertools.repeat(mark)), dtype=bool, count=len(texts))
    simple = np.flatnonzero(plain)
    if len(simple):
        buf = np.frombuffer("\n".join(texts if len(simple) == len(texts) else [texts[i] for i in simple])
                            .encode("ascii"), dtype=np.uint8)
        buf = np.where((buf >= 65) & (buf <= 90), buf + 32, buf).astype(np.uint8)  # lower()
        if (buf == 35).any():  # "#" between two letters is a letter lost in transcoding: dropped
            letter = (buf >= 97) & (buf <= 122)
            lost = np.zeros(len(buf), dtype=bool)
            lost[1:-1] = (buf[1:-1] == 35) & letter[:-2] & letter[2:]
            buf = buf[~lost]
        word = _LOWER_WORD[buf]
        # a run of non-word characters is one space; the separator "\n" stays
        gap = ~word & (buf != 10)
        drop = gap.copy()
        drop[0] = False
        drop[1:] &= gap[:-1]
        buf = np.where(gap, 32, buf).astype(np.uint8)[~drop]
        out[simple] = [f" {w} " if w else " " for w in map(str.strip, buf.tobytes().decode("ascii").split("\n"))]
    for i in np.flatnonzero(~plain).tolist():
        out[i] = normalize_text(texts[i])
    return list(out)


def _lines(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Every line of every text (after :func:`clean_text`), in order, and each text's line count.

    The character-local part of cleaning (odd whitespace) runs once over the joined texts; texts
    that need more (mojibake repair, escape sequences, carriage returns) are cleaned one by one.
    """
    joined = "\n".join(texts)
    if any(c in joined for c in _SPECIAL):
        ends = np.cumsum(np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))) - 1
        found = np.asarray([m.start() for m in _SPECIAL_RE.finditer(joined)], dtype=np.int64)
        texts = list(texts)
        for i in np.unique(np.searchsorted(ends, found)).tolist():
            t = clean_text(texts[i])
            texts[i] = t.replace("\r\n", "\n").replace("\r", "\n") if "\r" in t else t
        joined = "\n".join(texts)
    n_lines = np.fromiter(map(str.count, texts, itertools.repeat("\n")), dtype=np.int64, count=len(texts)) + 1
    if any(c in joined for c in _ODD_CHARS):
        joined = _ODD_RUN.sub(" ", joined)
    return joined.split("\n"), n_lines


def factorize(items: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes (first-seen order) and distinct values of a list of strings."""
    seen = dict.fromkeys(items)
    if len(seen) == len(items):  # all distinct (the hardest input): no second pass
        return np.arange(len(items), dtype=np.int64), list(items)
    index = {k: i for i, k in enumerate(seen)}
    codes = np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))
    return codes, list(index)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return offsets + np.arange(total, dtype=np.int64)


def label_batch(texts: list[str], vocab: Vocabulary, unc: int, *, with_provenance: bool = False,
                ) -> tuple[np.ndarray, list[str], list[str | None]]:
    """Labels (int8, (n, n_labels)), provenance strings (empty list without provenance) and the
    footer-stated status of distinct report strings, identical to the per-report path."""
    n_labels = len(vocab.labels)
    table = np.zeros((len(texts), n_labels), dtype=np.int8)
    prov: list[str] = [""] * len(texts) if with_provenance else []
    status: list[str | None] = [None] * len(texts)
    tab = tables(vocab)
    memo: dict[tuple[str, bool], tuple[list[Decision], bool]] = {}
    for lo in range(0, len(texts), BATCH):
        part = texts[lo:lo + BATCH]
        t, p, s = _label_part(part, vocab, tab, unc, with_provenance, memo)
        table[lo:lo + len(part)] = t
        status[lo:lo + len(part)] = s
        if with_provenance:
            prov[lo:lo + len(part)] = p
    return table, prov, status


def _label_part(texts: list[str], vocab: Vocabulary, tab: Tables, unc: int, with_provenance: bool,
                memo: dict[tuple[str, bool], tuple[list[Decision], bool]],
                ) -> tuple[np.ndarray, list[str], list[str | None]]:
    n = len(texts)
    n_labels = len(vocab.labels)
    seg_cache: dict[Any, Any] = {}
    # 1. lines of every report, in order, with the report they belong to
    all_lines, n_lines = _lines(texts)
    line_rep = np.repeat(np.arange(n, dtype=np.int64), n_lines)
    codes, ulines = factorize(all_lines)
    stripped = list(map(str.strip, ulines))
    blank = np.fromiter(map(len, stripped), dtype=np.int64, count=len(ulines)) == 0
    keep = ~blank[codes]
    occ_line = codes[keep].astype(np.int64)
    occ_rep = line_rep[keep]
    # 2. line classes; units = a line and the continuation lines after it
    nb = np.flatnonzero(~blank)
    plain = np.zeros(len(ulines), dtype=bool)
    cont = np.zeros(len(ulines), dtype=bool)
    if len(nb):
        p_, c_ = _classify_lines([ulines[i] for i in nb], vocab, tab, seg_cache)
        plain[nb], cont[nb] = p_, c_
    first = np.ones(len(occ_line), dtype=bool)
    first[1:] = occ_rep[1:] != occ_rep[:-1]
    ustart = first | ~cont[occ_line]
    unit_pos = np.flatnonzero(ustart)
    unit_rep = occ_rep[unit_pos]
    unit_len = np.diff(np.r_[unit_pos, len(occ_line)])
    unit_key = occ_line[unit_pos].copy()
    multi = np.flatnonzero(unit_len > 1)
    multi_texts: list[str] = []
    if len(multi):
        joined = ["\n".join(ulines[j] for j in occ_line[unit_pos[u]:unit_pos[u] + unit_len[u]]) for u in multi]
        mcodes, multi_texts = factorize(joined)
        unit_key[multi] = len(ulines) + mcodes
    # 3. statements of each unit key
    n_keys = len(ulines) + len(multi_texts)
    key_start = np.zeros(n_keys, dtype=np.int64)
    key_n = np.zeros(n_keys, dtype=np.int64)
    used = np.zeros(n_keys, dtype=bool)
    used[unit_key] = True
    fast = np.flatnonzero(used[:len(ulines)] & plain)
    st_text: list[str] = [stripped[i] for i in fast.tolist()]
    st_kind: list[int] = [0] * len(fast)
    st_status: list[int] = [0] * len(fast)
    st_cue: list[str | None] = [None] * len(fast)
    key_start[fast] = np.arange(len(fast))
    key_n[fast] = 1
    slow = np.flatnonzero(used & ~np.r_[plain, np.zeros(len(multi_texts), dtype=bool)]).tolist()
    for k in slow:
        text = ulines[k] if k < len(ulines) else multi_texts[k - len(ulines)]
        sts = segment_clean(text, vocab.segmenter, seg_cache)
        key_start[k] = len(st_text)
        key_n[k] = len(sts)
        for st in sts:
            st_text.append(st.text)
            st_kind.append(_KIND[st.kind])
            st_status.append(_STATUS[st.status])
            st_cue.append(st.cue)
    kind = np.asarray(st_kind, dtype=np.int8)
    # statement ids are rows of st_text: distinct lines give (nearly) distinct statements already
    st_uid = np.arange(len(st_text), dtype=np.int64)
    stexts = st_text
    norms = _normalise_all(stexts)
    flags = _scan(norms, tab)
    need = ((flags & (_LABEL | _TYPO)) != 0) | (((flags & _COMP) != 0) & ((flags & _FIND) != 0))
    need &= kind != _KIND[CODE]  # the rules never see a device code
    starts = (flags & _COMP) != 0
    decided: dict[int, list[Decision]] = {}
    if len(memo) > _MEMO_MAX:
        memo.clear()
    for u in np.flatnonzero(need):
        got = memo.get((norms[u], False))
        if got is None:
            got = memo[(norms[u], False)] = decide_statement(norms[u], vocab, False)
        decided[2 * int(u)], starts[u] = got
    # 4. report rows: one per statement of each report, in report order
    rs_st = _ranges(key_start[unit_key], key_n[unit_key])
    rs_rep = np.repeat(unit_rep, key_n[unit_key])
    rs_kind = kind[rs_st]
    rs_uid = st_uid[rs_st]
    counts = np.bincount(rs_rep, minlength=n)
    rep_start = np.cumsum(counts) - counts
    s = (rs_kind == 0) & starts[np.maximum(rs_uid, 0)]
    before = np.cumsum(s) - s
    in_comp = ((before - before[rep_start[rs_rep]] if len(before) else before) > 0) & (rs_kind == 0)
    for u in np.unique(rs_uid[in_comp & need[np.maximum(rs_uid, 0)]]):
        got = memo.get((norms[u], True))
        if got is None:
            got = memo[(norms[u], True)] = decide_statement(norms[u], vocab, True)
        decided[2 * int(u) + 1] = got[0]
    # flatten the decisions of each (statement, comparison state) pair
    pair_start = np.zeros(2 * len(stexts) + 1, dtype=np.int64)
    pair_n = np.zeros(2 * len(stexts) + 1, dtype=np.int64)
    flat: list[Decision] = []
    for pair, decs in decided.items():
        pair_start[pair] = len(flat)
        pair_n[pair] = len(decs)
        flat.extend(decs)
    rs_pair = np.where(rs_kind == 2, 2 * len(stexts), 2 * np.maximum(rs_uid, 0) + in_comp)
    d_counts = pair_n[rs_pair]
    d_idx = _ranges(pair_start[rs_pair], d_counts)
    d_rs = np.repeat(np.arange(len(rs_pair), dtype=np.int64), d_counts)
    d_rep = rs_rep[d_rs]
    lab = np.fromiter((tab.labels[d.label] for d in flat), dtype=np.int64, count=len(flat))
    code = np.fromiter((_ASSERTED if d.decision == "asserted" else _UNCERTAIN if d.decision == "uncertain"
                        else _OTHER_DECISION for d in flat), dtype=np.int8, count=len(flat))
    cond = np.fromiter((0 if d.condition is None else 1 if d.condition[0] == "requires" else 2 for d in flat),
                       dtype=np.int8, count=len(flat))
    cond_lab = np.fromiter((tab.labels[d.condition[1]] if d.condition is not None else 0 for d in flat),
                           dtype=np.int64, count=len(flat))
    d_lab, d_code, d_cond, d_clab = lab[d_idx], code[d_idx], cond[d_idx], cond_lab[d_idx]
    sets = (rs_kind[d_rs] == 0) & (d_code != _OTHER_DECISION)  # footers' mentions never set a label
    present = np.zeros((n, n_labels), dtype=bool)
    plain_set = sets & (d_cond == 0)
    present[d_rep[plain_set], d_lab[plain_set]] = True
    failed = np.zeros(len(d_idx), dtype=bool)
    conditional = (d_cond != 0) & (rs_kind[d_rs] == 0)
    if conditional.any():
        has = present[d_rep, d_clab]
        failed = conditional & np.where(d_cond == 1, ~has, has)
    sets &= ~failed
    table = np.zeros((n, n_labels), dtype=np.int8)
    unc_rows = sets & (d_code == _UNCERTAIN)
    table[d_rep[unc_rows], d_lab[unc_rows]] = unc
    asserted = sets & (d_code == _ASSERTED)
    table[d_rep[asserted], d_lab[asserted]] = 1
    # footer status: the last footer stating one wins
    st_stat = np.asarray(st_status, dtype=np.int8)[rs_st]
    stated = np.flatnonzero(st_stat != 0)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, rs_rep[stated], stated)
    status = [_STATUS_NAME[st_stat[i]] if i >= 0 else None for i in last.tolist()]
    prov: list[str] = []
    if with_provenance:
        prov = _provenance(n, flat, d_idx, d_rs, d_rep, failed, rs_st, rs_rep, rep_start, st_text, st_cue,
                           rs_kind)
    return table, prov, status


def _scan(norms: list[str], tab: Tables) -> np.ndarray:
    """OR of the automaton flags over each normalised statement's hits (one pass over their join)."""
    flags = np.zeros(len(norms), dtype=np.int64)
    if not norms:
        return flags
    joined = "\n".join(norms)
    raw = np.fromiter(itertools.chain.from_iterable(tab.statement_ac.iter(joined)), dtype=np.int64)
    if not len(raw):
        return flags
    hits = raw.reshape(-1, 2)
    ends = _ends(np.frombuffer(joined.encode("ascii"), dtype=np.uint8))
    np.bitwise_or.at(flags, _line_of(hits[:, 0], ends), hits[:, 1])
    return flags


_SLOT = "\x00"  # where the statement number goes in a pre-rendered mention


def _render(d: Decision) -> tuple[str, str]:
    """A mention as :func:`ecgkit.labels.core.provenance` writes it, split where its statement number goes."""
    from ecgkit.labels.core import Mention, provenance

    head, tail = provenance([Mention(d.label, d.decision, d.phrase, cast(int, _SLOT), "", d.cue, d.via)]).split(_SLOT)
    return head, tail


def _provenance(n: int, flat: list[Decision], d_idx: np.ndarray, d_rs: np.ndarray, d_rep: np.ndarray,
                failed: np.ndarray, rs_st: np.ndarray, rs_rep: np.ndarray, rep_start: np.ndarray,
                st_text: list[str], st_cue: list[str | None], rs_kind: np.ndarray) -> list[str]:
    """Per report, the provenance string of its mentions (footers voided, failed conditions excluded)."""
    out = [""] * n
    if not len(d_idx):
        return out
    rendered = [_render(d) for d in flat]
    heads = np.empty(len(flat), dtype=object)
    tails = np.empty(len(flat), dtype=object)
    heads[:], tails[:] = [h for h, _ in rendered], [t for _, t in rendered]
    head, tail = heads[d_idx], tails[d_idx]
    special = np.flatnonzero((rs_kind[d_rs] == 1) | failed)
    for k in special.tolist():
        d = flat[d_idx[k]]
        if rs_kind[d_rs[k]] == 1:
            d = replace(d, decision="excluded", cue=st_cue[rs_st[d_rs[k]]])
        elif d.condition is not None and d.decision != "excluded":
            kind, label = d.condition
            cue = f"no {label} in report" if kind == "requires" else f"{label} in report"
            d = replace(d, decision="excluded", cue=cue)
        head[k], tail[k] = _render(d)
    number = d_rs - rep_start[d_rep] + 1
    parts = (head + np.array(list(map(str, number.tolist())), dtype=object) + tail).tolist()
    bounds = np.flatnonzero(np.r_[True, d_rep[1:] != d_rep[:-1], True]).tolist()
    reps = d_rep[bounds[:-1]].tolist()
    for r, a, b in zip(reps, bounds[:-1], bounds[1:]):
        out[r] = "; ".join(parts[a:b])
    return out
