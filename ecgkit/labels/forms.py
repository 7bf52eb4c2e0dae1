"""Word orders and coordinations generated from a vocabulary's own phrases (at compile time).

Statement libraries and typists say one finding in several orders, and two findings with one head
noun. Rather than listing every form, the vocabulary compiler derives them from each label phrase:

* **qualifier after the noun** (:func:`inversions`): "incomplete right bundle branch block" is also
  "bundle branch block, right, incomplete", "right bundle branch block, incomplete", "bundle branch
  block (incomplete right)"; "left ventricular hypertrophy" is also "hypertrophy, left
  ventricular". These forms only count where the statement or clause ends after them (end of
  statement, a comma, "and", "with", ...): "bundle branch block, left axis deviation" is no LBBB.
* **shared head nouns** (:func:`coordinations`): two label phrases that differ in one word give
  "right and left ventricular hypertrophy" (RVH, LVH), "atrial flutter and fibrillation" (AFL,
  AFIB), "premature ventricular and atrial complexes" (VPC, APC), with each listed conjunction,
  and the same pair written with a slash or hyphen ("ventrikuläre/supraventrikuläre
  Extrasystolen", normalised to adjacent words) when a shared head follows them;
* **split compounds** (:func:`compound_forms`): German and Swedish compounds written apart at a
  hyphen or slash: "Vorhof-flimmern", "Rechts-Schenkelblock", "Vorhofflattern und -flimmern",
  "Kammer- und Vorhofextrasystolen", "förmaksflimmer och -fladder".

Documented rule for ambiguous pairs: a pair listed under ``coordination.alternatives`` (ECG-P18:
AFIB with AFL) written *without* a conjunction ("atrial fibrillation/flutter", "Vorhofflimmern/-
flattern", "förmaksflimmer/-fladder") names one rhythm whose type the reader left open, and is
coded as the pair's first label (AFIB, as PTB-XL's cardiologists code "förmaksflimmer/-fladder");
joined by a conjunction ("atrial flutter and fibrillation") it names both. A phrase the vocabulary
lists itself always wins over a generated form.
"""
from __future__ import annotations

from typing import Iterable

Labels = frozenset[str]


def inversions(phrase: str) -> list[str]:
    """Forms of a label phrase with its one or two leading qualifiers moved after the head noun.

    >>> inversions("incomplete right bundle branch block")[:3]
    ['bundle branch block , right , incomplete', 'right bundle branch block , incomplete', \
'right bundle branch block incomplete']
    """
    words = phrase.split()
    out: list[str] = []
    for q in (2, 1):
        if len(words) <= q:
            continue
        qual, head = words[:q], words[q:]
        if not all(w.isalpha() and len(w) >= 2 for w in qual):
            continue
        if len(head) == 1 and len(head[0]) < 5:
            continue
        h = " ".join(head)
        if q == 2:
            # no "H q1 q2" without a comma: in run-on text it reads across statements
            # ("atrial fibrillation atrial flutter" is not "fibrillation, atrial flutter")
            out += [f"{h} , {qual[1]} , {qual[0]}", f"{qual[1]} {h} , {qual[0]}", f"{qual[1]} {h} {qual[0]}",
                    f"{qual[0]} {h} , {qual[1]}", f"{h} , {qual[0]} {qual[1]}"]
        else:
            out += [f"{h} , {qual[0]}", f"{h} {qual[0]}"]
    return out


def coordinations(phrases: dict[str, Labels], conjunctions: Iterable[str],
                  alternatives: Iterable[tuple[str, str]] = ()) -> dict[str, Labels]:
    """Phrases naming two findings with one shared head or modifier: "P q1 <conj> q2 H" -> both labels.

    ``phrases`` maps normalised label phrases to their labels. Two phrases that differ only in
    one word at the same position (``P q1 H`` and ``P q2 H``) with different labels give the
    coordinated forms, for each conjunction and for the two words written adjacent (a slash or
    hyphen between them). An adjacent pair listed in ``alternatives`` is coded as its first label.
    """
    conj = [c for c in conjunctions if c]
    alt = {frozenset(p): p[0] for p in alternatives}
    groups: dict[tuple[str, str], dict[str, Labels]] = {}
    for phrase, labels in phrases.items():
        words = phrase.split()
        if len(words) < 2 or len(words) > 4:
            continue
        for i, w in enumerate(words):
            if not w.isalpha() or len(w) < 3:
                continue
            key = (" ".join(words[:i]), " ".join(words[i + 1:]))
            groups.setdefault(key, {})[w] = groups.get(key, {}).get(w, frozenset()) | labels
    out: dict[str, Labels] = {}
    for (pre, post), options in groups.items():
        if len(options) < 2:
            continue
        items = sorted(options.items())
        for w1, l1 in items:
            for w2, l2 in items:
                # "inkomplette und komplette": a word and its negation are degrees of one finding
                if w1 == w2 or l1 == l2 or _negation_of(w1, w2) or _negation_of(w2, w1):
                    continue
                both = l1 | l2
                lead = f"{pre} " if pre else ""
                tail = f" {post}" if post else ""
                for c in conj:
                    out[f"{lead}{w1} {c} {w2}{tail}"] = both
                if not post:
                    # adjacent without a shared head after them ("atrial fibrillation bigeminy") the
                    # second word may start the next statement: only a conjunction coordinates here
                    continue
                single = alt.get(frozenset((next(iter(l1)), next(iter(l2))))) if len(l1) == len(l2) == 1 else None
                out[f"{lead}{w1} {w2}{tail}"] = frozenset({single}) if single else both
    return out


_NEGATING_PREFIXES = ("in", "un", "non", "o")


def _negation_of(word: str, other: str) -> bool:
    """Is ``word`` ``other`` with a negating prefix ("inkomplette" of "komplette")?"""
    return word.endswith(other) and word[:len(word) - len(other)] in _NEGATING_PREFIXES


def compound_forms(phrases: dict[str, Labels], known: set[str], conjunctions: Iterable[str],
                   alternatives: Iterable[tuple[str, str]] = (), min_part: int = 3) -> dict[str, Labels]:
    """One-word label phrases (compounds) written apart, alone or coordinated with a shared part.

    A compound splits where one side is a word of the vocabulary ("vorhof|flimmern",
    "rechts|schenkelblock", "kammer|extrasystolen"): the split form names the compound's labels.
    Two compounds with a common first part give "vorhofflattern und flimmern" (the second's
    first part left out after a hyphen), two with a common last part "kammer und
    vorhofextrasystolen", for each conjunction and written adjacent (slash), with the
    ``alternatives`` rule of :func:`coordinations`.
    """
    conj = [c for c in conjunctions if c]
    alt = {frozenset(p): p[0] for p in alternatives}
    singles = {p.strip(): labels for p, labels in phrases.items() if " " not in p.strip() and p.strip().isalpha()}
    out: dict[str, Labels] = {}
    splits: dict[str, list[tuple[str, str]]] = {}
    for word, labels in singles.items():
        for k in range(min_part, len(word) - min_part + 1):
            head, rest = word[:k], word[k:]
            if (head in known and len(head) >= 4) or (rest in known and len(rest) >= 4):
                out[f"{head} {rest}"] = labels
                splits.setdefault(word, []).append((head, rest))
    by_head: dict[str, list[tuple[str, str]]] = {}
    by_rest: dict[str, list[tuple[str, str]]] = {}
    for word, parts in splits.items():
        for head, rest in parts:
            by_head.setdefault(head, []).append((word, rest))
            by_rest.setdefault(rest, []).append((word, head))
    for shared, first in ((by_head, True), (by_rest, False)):
        for _part, members in shared.items():
            for w1, p1 in members:
                for w2, p2 in members:
                    l1, l2 = singles[w1], singles[w2]
                    if w1 == w2 or l1 == l2:
                        continue
                    both = l1 | l2
                    single = alt.get(frozenset((next(iter(l1)), next(iter(l2))))) if len(l1) == len(l2) == 1 else None
                    # "vorhofflattern und flimmern" / "kammer und vorhofextrasystolen"
                    left, right = (w1, p2) if first else (p1, w2)
                    for c in conj:
                        out.setdefault(f"{left} {c} {right}", both)
                    out.setdefault(f"{left} {right}", frozenset({single}) if single else both)
    return out
