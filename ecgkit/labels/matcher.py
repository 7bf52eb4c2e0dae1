"""Multi-pattern matching of one normalised statement: whole words, longest phrase first.

One pass of the vocabulary's Aho-Corasick automaton yields every phrase occurrence. Finding phrases
and cue phrases are then resolved separately, each longest-first with no overlaps among themselves,
so a finding ("voltage criteria for lvh") and a cue that shares its words ("minimal voltage criteria")
both survive, while "incomplete right bundle branch block" hides the "right bundle branch block"
inside it and "complete right bundle branch block" never offers "complete ... block" to 3AVB.
"""
from __future__ import annotations

from dataclasses import dataclass

from ecgkit.labels.vocab import Cue, Entry, Finding, Vocabulary


@dataclass(frozen=True)
class Hit:
    """One selected phrase occurrence; ``first``/``last`` are word indices (inclusive)."""

    first: int
    last: int
    key: str
    finding: Finding | None
    cues: tuple[Cue, ...]

    @property
    def phrase(self) -> str:
        return self.key.strip()


def _select(spans: list[tuple[int, int, Entry]], n_chars: int) -> list[tuple[int, int, Entry]]:
    """Longest spans first, then leftmost; drop any span overlapping an accepted one.

    Spans include their padding spaces, so two adjacent phrases share one space; only the inner
    characters ``start+1 .. end-1`` are claimed. Listed phrases are selected first; a generated
    form (a word order or coordination the vocabulary derived, ``Entry.generated``) then replaces
    them only where it contains every listed phrase it overlaps: "right and left ventricular
    hypertrophy" replaces "left ventricular hypertrophy", while "fibrillation atrial flutter" in
    "atrial fibrillation atrial flutter" straddles two listed phrases and is dropped.
    """
    if len(spans) <= 1:
        return spans
    generated = [s for s in spans if s[2].generated]
    if not generated:
        out = _longest_first(spans, n_chars)
        out.sort(key=lambda s: s[0])
        return out
    out = _longest_first([s for s in spans if not s[2].generated], n_chars)
    # owner[i]: 1 + index in ``out`` of the accepted span claiming inner character i (0: free);
    # a replaced span is set to None, so each generated span looks only at its own characters
    owner = [0] * (n_chars + 1)
    for k, (start, end, _entry) in enumerate(out):
        owner[start + 1:end] = [k + 1] * (end - start - 1)
    kept: list[tuple[int, int, Entry] | None] = list(out)
    generated.sort(key=lambda s: (s[0] - s[1], s[0]))
    for start, end, entry in generated:
        hit = {o - 1 for o in owner[start + 1:end] if o}
        spans_hit = [kept[k] for k in hit]
        if any(h is None or h[2].generated or h[0] < start or h[1] > end for h in spans_hit):
            continue  # it straddles a listed phrase (or overlaps a generated one): keep what is there
        for k in hit:
            kept[k] = None
        kept.append((start, end, entry))
        owner[start + 1:end] = [len(kept)] * (end - start - 1)
    final = [k for k in kept if k is not None]
    final.sort(key=lambda s: s[0])
    return final


def _longest_first(spans: list[tuple[int, int, Entry]], n_chars: int) -> list[tuple[int, int, Entry]]:
    spans.sort(key=lambda s: (s[0] - s[1], s[0]))
    taken = bytearray(n_chars + 1)
    out = []
    for start, end, entry in spans:
        if taken.find(1, start + 1, end) != -1:
            continue
        taken[start + 1:end] = b"\x01" * (end - start - 1)
        out.append((start, end, entry))
    return out


def _clause_ends(norm: str, end: int, ends: frozenset[str]) -> bool:
    """Does the clause end at character ``end`` (the padding space after a phrase)?"""
    if end >= len(norm) - 1:
        return True
    stop = norm.find(" ", end + 1)
    return norm[end + 1:stop] in ends


def match_statement(norm: str, vocab: Vocabulary) -> tuple[list[Hit], list[Hit]]:
    """Find the finding phrases and cue phrases of one normalised statement.

    Parameters
    ----------
    norm : str
        Output of :func:`ecgkit.labels.normalize.normalize_text` (padded with spaces).
    vocab : Vocabulary
        The compiled vocabulary.

    Returns
    -------
    findings, cues : list of Hit
        Each sorted by position. Findings include out-of-vocabulary ("other") findings.
    """
    finding_spans: list[tuple[int, int, Entry]] = []
    cue_spans: list[tuple[int, int, Entry]] = []
    for end, entry in vocab.automaton.iter(norm):
        start = end - len(entry.key) + 1
        if entry.finding is not None and (not entry.tail or _clause_ends(norm, end, vocab.clause_ends)):
            finding_spans.append((start, end, entry))
        if entry.cues:
            cue_spans.append((start, end, entry))
    if not finding_spans:
        # only a section mark ("When compared with ...") matters in a statement without findings
        marks = [c for c in cue_spans if any(cue.rule == "comparison" for cue in c[2].cues)]
        return [], _hits(norm, marks[:1], cues=True)
    n = len(norm)
    return (_hits(norm, _select(finding_spans, n), cues=False),
            _hits(norm, _select(cue_spans, n), cues=True))


def _hits(norm: str, spans: list[tuple[int, int, Entry]], *, cues: bool) -> list[Hit]:
    """Turn character spans (sorted by start) into word-indexed hits, counting spaces once (O(n))."""
    out = []
    pos = 0
    words = 0
    for start, _end, entry in spans:
        words += norm.count(" ", pos, start)
        pos = start
        last = words + entry.key.count(" ") - 2
        if cues:
            out.append(Hit(words, last, entry.key, None, entry.cues))
        else:
            out.append(Hit(words, last, entry.key, entry.finding, ()))
    return out
