"""Statement segmentation: cut a report into the statements the context rules run on.

A report reaches the labeller in many shapes: one MUSE ``StmtText`` per line, a PTB-XL report typed
as one string whose statements are separated by runs of spaces, English sentences ended by periods,
and device footers glued to the end ("... 4.46      unbestätigter bericht"). Segmentation, before
any rule runs:

1. **Cleans** the text (:func:`clean_text`): ANSI escape sequences, vertical tab, form feed, NEL
   (U+0085), the Unicode line and paragraph separators, no-break and other Unicode spaces and
   control characters are whitespace *within* a statement ("No<NEL>RBBB" stays negated); only
   ``\\n``, ``\\r\\n`` and ``\\r`` break lines.
2. **Cuts footers and device codes** out as statements of their own: a vocabulary ``footers``
   phrase ("unconfirmed report", "unbestätigter Bericht", "Confirmed by ...") starts a statement
   wherever it stands; a *signature* footer ("Confirmed by", "Reviewed by") runs to the end of its
   line piece (the name and date), the others are the phrase alone. A bare machine-statement code
   such as ``4.46`` before a run of spaces, a footer or the end of the line is a statement too.
3. **Splits at runs of two or more spaces** (or tabs) in a line that has fewer sentence ends than
   such runs -- the statement separator of reports typed as one line. In a line of punctuated
   sentences such a run is a wrapped line and only a space. A piece still attaches to the one
   before when that one ends with a comma, a cue that needs a following finding ("wahrscheinlich",
   "possible") or a function word ("due to", "such as", "vid") but not a closing parenthesis
   ("(Mobitz I)"), when it starts with a continuation word, or when a listed phrase runs across the
   gap ("left ventricular   hypertrophy") and the second piece does not open with a longer phrase
   of its own ("short PR   Prolonged QT").
4. **Joins continuation lines** ("with 1st degree A-V block" continues the line above), in time
   linear in the number of lines, and splits the result into **sentences** (. ! ? ; after a word
   of three or more letters that is not a listed abbreviation).

Each statement carries its ``kind``: ``"text"`` (rules run on it), ``"footer"`` (voided; its
``status`` is ``"confirmed"``, ``"unconfirmed"`` or None) or ``"code"`` (a device code, voided).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ecgkit.labels.normalize import _repair_mojibake, normalize_text

#: statement kinds
TEXT, FOOTER, CODE = "text", "footer", "code"

# ESC [ ... final byte (CSI), ESC ] ... BEL/ST (OSC), and two-byte ESC sequences
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# characters that are whitespace inside a statement; a whitespace run holding any of them is one space
_ODD = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\xa0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
_ODD_RUN = re.compile(f"[ \\t]*[{_ODD}][{_ODD} \\t]*")
_HAS_ODD = re.compile(f"[{_ODD}\\x1b]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SOFT_BREAK = re.compile(r"[ \t]{2,}")
# a bare device statement code ("4.46"): one digit, a point, two digits, standing alone
_CODE = re.compile(r"(?<!\S)\d\.\d\d(?!\S)")
# same pattern as normalize's sentence end (kept in step with it)
_SENTENCE_END = re.compile(r"(?:(?<=[^\W_]{3})|(?<=\)))[.!?](?=\s|$)|;")
_LAST_WORD = re.compile(r"[^\W_]+$")  # the word a sentence end follows (it ends right before it)
# length-preserving fold so that regex positions on the folded line are positions in the line
_FOLD1 = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "s", "å": "a", "æ": "a", "ø": "o",
                        "Ä": "a", "Ö": "o", "Ü": "u", "Å": "a", "Æ": "a", "Ø": "o", "ẞ": "s",
                        "é": "e", "è": "e", "É": "e", "È": "e"})


@dataclass(frozen=True)
class Statement:
    """One statement of a report: its text as written, its kind and, for footers, the status it states."""

    text: str
    kind: str = TEXT
    status: str | None = None
    cue: str | None = None  # the footer phrase (normalised) or the code


@dataclass(frozen=True)
class Segmenter:
    """What segmentation needs from a vocabulary (built once by :func:`ecgkit.labels.vocab.load_vocabulary`).

    Attributes
    ----------
    continuation : tuple of str
        Normalised words that, starting a line or piece, attach it to the one before.
    joiners : frozenset of str
        Normalised words or phrases that, ending a piece, attach the next piece to it.
    abbreviations : frozenset of str
        Normalised words whose trailing period does not end a sentence.
    footer_re : re.Pattern or None
        Alternation of footer phrases over the folded line, one named group per footer kind.
    footer_kinds : dict
        Group name -> (status or None, whether the footer runs to the end of its piece).
    """

    continuation: tuple[str, ...] = ()
    joiners: frozenset[str] = frozenset()
    abbreviations: frozenset[str] = frozenset()
    footer_re: re.Pattern[str] | None = None
    footer_kinds: tuple[tuple[str, str | None, bool], ...] = ()
    # the first letters of every footer's first word: a line holding none of them has no footer
    # (a substring test is far cheaper than the footer alternation)
    footer_anchors: tuple[str, ...] = ()
    anchor_automaton: Any = None  # the anchors in one Aho-Corasick automaton (one C call per line)
    # the vocabulary's automaton: a run of spaces inside one of its phrases ("atrial   fibrillation")
    # is no boundary
    automaton: Any = None


def clean_text(text: str) -> str:
    """Make odd whitespace and escape sequences plain spaces; keep ``\\n``/``\\r`` line breaks.

    >>> clean_text("No\\x85RBBB\\x1b[1m!\\x1b[0m")
    'No RBBB ! '
    """
    if text.isascii() and "\x1b" not in text and not _HAS_ODD.search(text):
        return text
    text = _repair_mojibake(text)
    if "\x1b" in text:
        text = _ANSI.sub(" ", text)
    return _ODD_RUN.sub(" ", text)


def footer_anchors(phrases: dict[str, list[str]]) -> tuple[str, ...]:
    """Prefixes (up to 4 letters, before any umlaut digraph) of the first word of each footer phrase."""
    out = set()
    for items in phrases.values():
        for p in items:
            words = normalize_text(p).split()
            if words:
                # as typed ("ueberwiesen") and with the umlaut folded to its base letter ("uberwiesen")
                out.add(words[0][:4])
                out.add(re.sub(r"(ae|oe|ue|aa)", lambda m: m.group(0)[0], words[0])[:4])
    return tuple(sorted(out))


def footer_pattern(phrases: dict[str, list[str]]) -> tuple[re.Pattern[str] | None,
                                                           tuple[tuple[str, str | None, bool], ...]]:
    """Compile footer phrases (normalised) into one regex over the folded line.

    ``phrases`` maps a footer kind to its phrases; the kinds are ``confirmed``, ``unconfirmed``
    (the phrase alone), ``confirmed_signature`` (runs to the end of its piece) and ``signature``
    (no status, runs to the end of its piece). A folded umlaut digraph ("ae") also matches its base
    letter, a letter lost to transcoding ("?", "#") or nothing, as normalisation does.
    """
    kinds = {"confirmed": ("confirmed", False), "unconfirmed": ("unconfirmed", False),
             "confirmed_signature": ("confirmed", True), "signature": (None, True)}
    groups = []
    meta = []
    for i, (kind, items) in enumerate(sorted(phrases.items())):
        if kind not in kinds or not items:
            continue
        alts = []
        for p in sorted(set(items), key=len, reverse=True):
            words = normalize_text(p).split()
            if not words:
                continue
            parts = [re.sub(r"(?:ae|oe|ue|aa)", lambda m: f"(?:{m.group(0)}|{m.group(0)[0]}|[?#])?",
                            re.escape(w)) for w in words]
            alts.append(r"[\W_]+".join(parts))
        if alts:
            name = f"f{i}"
            groups.append(f"(?P<{name}>{'|'.join(alts)})")
            meta.append((name, kinds[kind][0], kinds[kind][1]))
    if not groups:
        return None, ()
    return re.compile(r"(?<![^\W_])(?:" + "|".join(groups) + r")(?![^\W_])"), tuple(meta)


def _fold(line: str) -> str:
    if line.isascii():
        return line.lower()
    low = line.translate(_FOLD1).lower()
    return low if len(low) == len(line) else line.lower() if len(line.lower()) == len(line) else line


def _has_anchor(folded: str, seg: Segmenter) -> bool:
    if seg.anchor_automaton is not None:
        for _ in seg.anchor_automaton.iter(folded):
            return True
        return False
    return any(a in folded for a in seg.footer_anchors)


def _pieces(line: str, seg: Segmenter) -> list[tuple[str, Statement | None, bool]]:
    """A line as (text, footer-or-code statement or None, soft boundary before it) pieces."""
    cuts: list[tuple[int, int, str | None, bool, str]] = []  # start, end, status, to_end, kind
    folded = _fold(line) if seg.footer_re is not None else ""
    if seg.footer_re is not None and _has_anchor(folded, seg):
        for m in seg.footer_re.finditer(folded):
            name = m.lastgroup
            for gname, status, to_end in seg.footer_kinds:
                if gname == name:
                    cuts.append((m.start(), m.end(), status, to_end, FOOTER))
                    break
    if "." in line:
        for m in _CODE.finditer(line):
            rest = line[m.end():]
            if not rest.strip() or rest.startswith(("  ", "\t")) or any(c[0] >= m.end() and
                                                                        not line[m.end():c[0]].strip()
                                                                        for c in cuts):
                cuts.append((m.start(), m.end(), None, False, CODE))
    out: list[tuple[str, Statement | None, bool]] = []
    pos = 0
    soft_before = False
    # punctuated: the line holds a sentence end with more text after it ("alter unbest." is not one);
    # it matters only for a line with a run of spaces
    # and at least as many sentence ends as runs of spaces: a MUSE line typed as one line, with one
    # "Demand pacemaker; ..." among five space-separated statements, still splits at its runs
    punctuated = False
    if ("  " in line or "\t" in line) and _SENTENCE_END.search(line) is not None:
        ends = len(split_sentences(line, seg.abbreviations)) - 1
        punctuated = ends > 0 and ends >= len(_SOFT_BREAK.findall(line))
    for start, end, status, to_end, kind in sorted(cuts):
        if start < pos:
            continue
        _soft(line[pos:start], punctuated, soft_before, out)
        cut_end = end
        if to_end:
            gap = _SOFT_BREAK.search(line, end)
            end = gap.start() if gap is not None else len(line)
        cue = normalize_text(line[start:cut_end]).strip() if kind == FOOTER else line[start:cut_end]
        out.append((line[start:end].strip(), Statement(line[start:end].strip(), kind, status, cue), True))
        pos, soft_before = end, True
    _soft(line[pos:], punctuated, soft_before, out)
    return out


def _soft(chunk: str, punctuated: bool, soft_before: bool, out: list[tuple[str, Statement | None, bool]]) -> None:
    if not chunk.strip():
        return
    parts = [chunk] if punctuated else _SOFT_BREAK.split(chunk)
    for k, part in enumerate(parts):
        if part.strip():
            out.append((" ".join(part.split()) if punctuated else part.strip(), None, soft_before or k > 0))


_FIRST_WORD = re.compile(r"\W*([^\W_]+)")


@lru_cache(maxsize=8)
def _first_words(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(w.split()[0] for w in words if w)


def _starts_with(text: str, words: tuple[str, ...]) -> bool:
    m = _FIRST_WORD.match(text)
    if m is None:
        return False
    first = m.group(1).lower()
    # most pieces start with no continuation word: reject on the first word before normalising
    if first.isascii() and first not in _first_words(words):
        return False
    head = normalize_text(text[:40])
    return any(head.startswith(f" {w} ") for w in words)


def _ends_with(text: str, words: frozenset[str]) -> bool:
    if text.rstrip().endswith(")"):
        # a closing parenthesis ends its statement: "(Mobitz I)" does not end with the word "i"
        return False
    tail = normalize_text(text[-40:]).split()
    if not tail:
        return False
    if tail[-1] == ",":
        return True
    return any(" ".join(tail[-k:]) in words for k in range(1, min(4, len(tail)) + 1))


def _spans_phrase(before: str, after: str, automaton: Any) -> bool:
    """Does a vocabulary phrase run across the gap between ``before`` and ``after``?"""
    left = normalize_text(before[-60:]).split()[-5:]
    right = normalize_text(after[:60]).split()[:5]
    if not left or not right:
        return False
    gap = len(" ".join(left)) + 1  # index of the space between the two sides in the padded window
    window = f" {' '.join(left)} {' '.join(right)} "
    hits = [(end - len(entry.key) + 1, end, entry) for end, entry in automaton.iter(window)]
    # the right piece opens with a phrase of its own that reaches past the spanning one
    # ("short PR   Prolonged QT": "prolonged qt", not "pr prolonged"): the break stands. One that
    # ends where the spanning phrase ends is that phrase's tail when the left piece ends in no phrase
    # of its own: "Left  bundle branch block", "Non-specific  intra-ventricular conduction delay" are
    # one statement with a doubled space; "Atrial fibrillation  Atrial flutter" are two
    real = [(start, end, entry) for start, end, entry in hits if entry.key.strip() not in (",", "?")]
    own = max((end for start, end, _ in real if start == gap), default=-1)
    left_whole = any(end == gap for _, end, _ in real)
    for start, end, entry in real:
        # a generated form (a word order or coordination) glues nothing: only listed phrases do
        if (start < gap and end > gap + 1 and not entry.generated
                and (end > own or (end == own and not left_whole))):
            return True
    return False


def _line_groups(line: str, seg: Segmenter) -> tuple[tuple[tuple[str, ...] | Statement, ...], bool]:
    """One line's statements-to-be: text groups (pieces joined across soft breaks) and footers/codes;
    and whether its first piece continues the statement before the line ("with ...")."""
    if ("  " not in line and "\t" not in line and "." not in line
            and not (seg.footer_re is not None and _has_anchor(_fold(line), seg))):
        # the common line: no run of spaces, no device code, no footer -- one piece
        piece = line.strip()
        return ((piece,),), bool(seg.continuation) and _starts_with(piece, seg.continuation)
    groups: list[list[str] | Statement] = []
    first_continues = False
    for piece, special, soft in _pieces(line, seg):
        if special is not None:
            groups.append(special)
            continue
        starts = bool(seg.continuation) and _starts_with(piece, seg.continuation)
        last = groups[-1] if groups else None
        if last is None:
            first_continues = starts
            groups.append([piece])
        elif isinstance(last, list) and (
                starts or (soft and seg.joiners and _ends_with(last[-1], seg.joiners))
                or (soft and seg.automaton is not None and _spans_phrase(last[-1], piece, seg.automaton))):
            last.append(piece)
        else:
            groups.append([piece])
    return tuple(tuple(g) if isinstance(g, list) else g for g in groups), first_continues


def segment_report(text: str, seg: Segmenter, cache: dict[Any, Any] | None = None) -> list[Statement]:
    """Cut a report into statements (see the module docstring for the rules).

    Parameters
    ----------
    text : str
        The report; lines separated by ``\n``, ``\r\n`` or ``\r``.
    seg : Segmenter
        The vocabulary's segmentation settings (``Vocabulary.segmenter``).
    cache : dict or None
        Per-call memo of line segmentations and sentence splits: reports that are distinct as a
        whole but share lines (library statements) are segmented once per distinct line.

    Returns
    -------
    list of Statement
        In source order; empty statements dropped.
    """
    return segment_clean(clean_text(text), seg, cache)


def segment_clean(text: str, seg: Segmenter, cache: dict[Any, Any] | None = None) -> list[Statement]:
    """:func:`segment_report` of a text :func:`clean_text` has already cleaned (cleaning twice is not
    the same: a line alone may repair as mojibake where its whole report did not)."""
    groups: list[list[str] | Statement] = []  # a text statement as its parts (joined once: linear)
    for line in _LINE_BREAK.split(text) if ("\n" in text or "\r" in text) else (text,):
        if not line.strip():
            continue
        got = cache.get(line) if cache is not None else None
        if got is None:
            got = _line_groups(line, seg)
            if cache is not None:
                cache[line] = got
        line_groups, continues = got
        for k, g in enumerate(line_groups):
            if isinstance(g, Statement):
                groups.append(g)
            elif k == 0 and continues and groups and isinstance(groups[-1], list):
                groups[-1].extend(g)
            else:
                groups.append(list(g))
    out: list[Statement] = []
    for g in groups:
        if isinstance(g, Statement):
            if g.text:
                out.append(g)
            continue
        joined = " ".join(g)
        key = ("\x00", joined)
        sentences = cache.get(key) if cache is not None else None
        if sentences is None:
            sentences = tuple(Statement(s) for s in split_sentences(joined, seg.abbreviations))
            if cache is not None:
                cache[key] = sentences
        out.extend(sentences)
    return out


@lru_cache(maxsize=1 << 16)
def _is_abbreviation(word: str, abbreviations: frozenset[str]) -> bool:
    return normalize_text(word).strip() in abbreviations


def split_sentences(line: str, abbreviations: frozenset[str] = frozenset()) -> list[str]:
    """Split a statement at sentence ends: . ! ? after a word of 3+ characters (not an abbreviation), or ;."""
    if "." not in line and ";" not in line and "!" not in line and "?" not in line:
        return [line.strip()] if line.strip() else []
    parts: list[str] = []
    pos = 0
    for m in _SENTENCE_END.finditer(line):
        if m.group(0) != ";" and abbreviations:
            word = _LAST_WORD.search(line, max(pos, m.start() - 24), m.start())
            if word is not None and _is_abbreviation(word.group(0), abbreviations):
                continue
        # a question mark stays with its sentence: it hedges the finding it follows ("LVH?")
        parts.append(line[pos:m.end() if m.group(0) == "?" else m.start()])
        pos = m.end()
    parts.append(line[pos:])
    return [p.strip() for p in parts if p.strip()]
