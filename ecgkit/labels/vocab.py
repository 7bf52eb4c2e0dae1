"""Label vocabularies: versioned YAML files compiled once into one Aho-Corasick automaton.

The shipped vocabulary is ``data/ecg_p18.yaml`` (name ``"ecg-p18"``); a user vocabulary is a path to
a file with the same keys (see the comments at the top of the shipped file).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import ahocorasick
import yaml

from ecgkit._resources import data_path
from ecgkit.errors import ConfigError
from ecgkit.labels.forms import compound_forms, coordinations, inversions
from ecgkit.labels.normalize import normalize_text
from ecgkit.labels.segment import Segmenter, footer_anchors, footer_pattern

SHIPPED = {"ecg-p18": "ecg_p18.yaml"}

#: Context rules a cue can carry. ``before``/``after`` say on which side of its finding the cue stands.
CUE_RULES = ("negated", "no_longer", "history", "uncertain", "excluded", "replaced", "replaced_by",
             "current", "comparison", "statement_excluded", "break")

# Finding kinds: a phrase asserts its labels, names an out-of-vocabulary finding, mentions a label
# without asserting it, or asserts it only under a condition on the report.
ASSERT, OTHER, EXCLUDED, CONDITIONAL = "assert", "other", "excluded", "conditional"

_GENERATE_FROM = 5  # macro alternatives that also generate word orders and coordinations
_MACRO = re.compile(r"\{([A-Za-z0-9_]+)\}")
_DIGRAPHS = re.compile(r"ae|oe|ue|aa")


@dataclass(frozen=True)
class Finding:
    """What a matched phrase says: its labels, its kind, and for conditional phrases the condition."""

    labels: tuple[str, ...]
    kind: str
    requires: str | None = None
    forbids: str | None = None


@dataclass(frozen=True)
class Cue:
    """One role of a matched cue phrase: a rule, the side it stands on, and the labels it may qualify."""

    rule: str
    side: str  # "before" (cue precedes finding), "after", or "mark" (whole statement / section)
    labels: tuple[str, ...] | None = None
    stops: tuple[str, ...] | None = None  # for "break" cues: the cue rules it stops (None: all)


@dataclass(frozen=True)
class Entry:
    """Automaton value for one normalised phrase (padded with spaces)."""

    key: str
    finding: Finding | None
    cues: tuple[Cue, ...]
    # a generated qualifier-after-noun form: its finding counts only where the clause ends after it
    tail: bool = False
    # any generated form (word order, coordination, split compound): see matcher._select
    generated: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """A compiled vocabulary.

    Attributes
    ----------
    name, version : str
        From the file; written next to labelled manifests for provenance.
    labels : tuple of str
        Output column order.
    implies : dict
        label -> labels it also asserts.
    window_before, window_after : int
        Words allowed between a ``before`` cue and its finding, and between a finding and an ``after`` cue.
    continuation : tuple of str
        Normalised words that attach a line to the previous statement.
    abbreviations : frozenset of str
        Normalised words whose trailing period does not end a sentence.
    automaton : ahocorasick.Automaton
        Keys are normalised phrases padded with spaces, values :class:`Entry`.
    source : str
        The file it was built from.
    segmenter : Segmenter
        Statement segmentation settings: continuation words, joiners, footers, abbreviations.
    fuzzy : dict
        One-edit misspelling -> the vocabulary word it stands for (see :func:`_fuzzy_map`).
    clause_ends : frozenset of str
        Tokens after which a generated qualifier-after-noun form may end (``coordination.clause_ends``).
    """

    name: str
    version: str
    labels: tuple[str, ...]
    implies: dict[str, tuple[str, ...]]
    window_before: int
    window_after: int
    continuation: tuple[str, ...]
    abbreviations: frozenset[str]
    automaton: Any
    source: str
    n_phrases: int
    segmenter: Segmenter = Segmenter()
    clause_ends: frozenset[str] = frozenset()
    fuzzy: dict[str, str] = field(default_factory=dict)


def _expand(phrase: str, macros: dict[str, list[str]], where: str) -> list[str]:
    names = _MACRO.findall(phrase)
    if not names:
        return [phrase]
    for name in names:
        if name not in macros:
            raise ConfigError(f"vocabulary {where}: phrase {phrase!r} uses unknown macro {{{name}}}")
    parts = _MACRO.split(phrase)  # literal, name, literal, name, ...
    choices = [[p] if i % 2 == 0 else macros[p] for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def _variants(phrase: str) -> set[str]:
    """The normalised phrase plus spellings with umlauts written as the base letter or lost.

    Each word varies on its own ("inkomplett hgersidigt skaenkelblock" keeps one umlaut and lost
    another); phrases with many umlaut words fall back to varying all words alike.
    """
    norm = normalize_text(phrase)
    if norm == " " and phrase.strip() in (",", "?"):
        return {f" {phrase.strip()} "}  # the comma and question-mark tokens (break and hedge cues)
    words = norm.split()
    options = []
    for w in words:
        if _DIGRAPHS.search(w):
            options.append({w, _DIGRAPHS.sub(lambda m: m.group(0)[0], w), _DIGRAPHS.sub("", w)})
        else:
            options.append({w})
    n_combos = 1
    for o in options:
        n_combos *= len(o)
    if n_combos <= 27:
        out = {f" {' '.join(combo)} " for combo in itertools.product(*options)}
    else:
        out = {norm, _DIGRAPHS.sub(lambda m: m.group(0)[0], norm), _DIGRAPHS.sub("", norm)}
    return {v for v in out if v.strip() and all(w for w in v.split(" ")[1:-1])}


def _as_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list):
        raise ConfigError(f"vocabulary {where} must be a list of phrases, got {type(value).__name__}")
    return [str(v) for v in value]


def _compile(raw: dict, source: str) -> Vocabulary:
    if not isinstance(raw, dict):
        raise ConfigError(f"vocabulary {source} must hold a mapping")
    unknown = sorted(set(raw) - {"name", "version", "labels", "window_before", "window_after", "macros",
                                 "phrases", "other", "conditional", "excluded", "implies", "cues",
                                 "continuation", "abbreviations", "joiners", "footers",
                                 "fuzzy", "coordination"})
    if unknown:
        raise ConfigError(f"vocabulary {source} has unknown key(s) {unknown}")
    labels = tuple(str(x) for x in raw.get("labels") or ())
    if not labels:
        raise ConfigError(f"vocabulary {source} lists no labels")
    known = set(labels)
    macros = {str(k): [str(v) for v in vs] for k, vs in (raw.get("macros") or {}).items()}

    findings: dict[str, dict[str, Any]] = {}
    cues: dict[str, list[Cue]] = {}

    assert_phrases: dict[str, frozenset[str]] = {}  # normalised label phrase -> labels, for generated forms

    # generated forms come from each macro's first alternatives only: every alternative would
    # multiply the automaton (and its build time) for spellings the fuzzy and listed forms cover
    short = {k: v[:_GENERATE_FROM] for k, v in macros.items()}

    label_words: dict[str, set[str]] = {}  # word of a label phrase (as listed) -> labels it names

    def add_finding(phrase: str, label: str | None, kind: str, where: str,
                    requires: str | None = None, forbids: str | None = None) -> None:
        if kind != OTHER and label is not None:
            for expanded in _expand(phrase, macros, where):
                for w in normalize_text(expanded).split():
                    if w.isalpha():
                        label_words.setdefault(w, set()).add(label)
        if kind == ASSERT and label is not None:
            for expanded in _expand(phrase, short, where):
                norm = normalize_text(expanded).strip()
                assert_phrases[norm] = assert_phrases.get(norm, frozenset()) | {label}
        for expanded in _expand(phrase, macros, where):
            for key in _variants(expanded):
                slot = findings.setdefault(key, {"labels": [], "kind": kind, "requires": requires,
                                                 "forbids": forbids})
                rank = {ASSERT: 3, CONDITIONAL: 2, EXCLUDED: 1, OTHER: 0}
                if rank[kind] > rank[slot["kind"]]:
                    slot.update(kind=kind, labels=[], requires=requires, forbids=forbids)
                if kind == slot["kind"] and label is not None and label not in slot["labels"]:
                    slot["labels"].append(label)

    def check_label(label: str, where: str) -> str:
        if label not in known:
            raise ConfigError(f"vocabulary {source}: {where} names unknown label {label!r}")
        return label

    for label, phrases in (raw.get("phrases") or {}).items():
        check_label(str(label), "phrases")
        for p in _as_list(phrases, f"phrases.{label}"):
            add_finding(p, str(label), ASSERT, f"phrases.{label}")
    for label, phrases in (raw.get("excluded") or {}).items():
        check_label(str(label), "excluded")
        for p in _as_list(phrases, f"excluded.{label}"):
            add_finding(p, str(label), EXCLUDED, f"excluded.{label}")
    for i, cond in enumerate(raw.get("conditional") or []):
        label = check_label(str(cond.get("label")), f"conditional[{i}]")
        req = check_label(str(cond["requires"]), f"conditional[{i}]") if cond.get("requires") else None
        forb = check_label(str(cond["forbids"]), f"conditional[{i}]") if cond.get("forbids") else None
        for p in _as_list(cond.get("phrases"), f"conditional[{i}].phrases"):
            add_finding(p, label, CONDITIONAL, f"conditional[{i}]", requires=req, forbids=forb)
    for p in _as_list(raw.get("other"), "other"):
        add_finding(p, None, OTHER, "other")

    for name, spec in (raw.get("cues") or {}).items():
        rule = str(name).split("/")[0]  # "excluded/sa_block": a second, differently scoped excluded rule
        if rule not in CUE_RULES:
            raise ConfigError(f"vocabulary {source}: unknown cue rule {rule!r}; known: {list(CUE_RULES)}")
        restrict = tuple(check_label(str(x), f"cues.{rule}.labels") for x in spec.get("labels") or ()) or None
        stops = tuple(str(x) for x in spec.get("stops") or ()) or None
        if stops is not None and (rule != "break" or set(stops) - set(CUE_RULES)):
            raise ConfigError(f"vocabulary {source}: cues.{name}.stops is only for break rules and must name "
                              f"cue rules ({list(CUE_RULES)}), got {list(stops)}")
        for side in ("before", "after", "marks"):
            for p in _as_list(spec.get(side), f"cues.{rule}.{side}"):
                for expanded in _expand(p, macros, f"cues.{rule}"):
                    for key in _variants(expanded):
                        cue = Cue(rule, "mark" if side == "marks" else side, restrict, stops)
                        if cue not in cues.setdefault(key, []):
                            cues[key].append(cue)

    tails, generated = _add_generated(raw.get("coordination") or {}, assert_phrases, findings, cues, set(), source)
    # a footer phrase inside a statement voids what follows it there (its clause), as a footer does
    for phrases in (raw.get("footers") or {}).values():
        for p in _as_list(phrases, "footers"):
            for key in _variants(p):
                cue = Cue("statement_excluded", "mark")
                if cue not in cues.setdefault(key, []):
                    cues[key].append(cue)
    implies = {check_label(str(k), "implies"): tuple(check_label(str(x), "implies") for x in v)
               for k, v in (raw.get("implies") or {}).items()}
    automaton = ahocorasick.Automaton()
    for key in set(findings) | set(cues):
        f = findings.get(key)
        finding = None if f is None else Finding(tuple(f["labels"]), f["kind"], f["requires"], f["forbids"])
        automaton.add_word(key, Entry(key, finding, tuple(cues.get(key, ())), key in tails, key in generated))
    automaton.make_automaton()
    continuation = tuple(normalize_text(str(c)).strip() for c in raw.get("continuation") or ())
    continuation = tuple(c for c in continuation if c)
    abbreviations = frozenset(normalize_text(str(a)).strip() for a in raw.get("abbreviations") or ())
    segmenter = replace(_segmenter(raw, source, continuation, abbreviations), automaton=automaton)
    return Vocabulary(
        name=str(raw.get("name", Path(source).stem)), version=str(raw.get("version", "")),
        labels=labels, implies=implies,
        window_before=int(raw.get("window_before", 5)), window_after=int(raw.get("window_after", 4)),
        continuation=continuation, abbreviations=abbreviations,
        automaton=automaton, source=source,
        n_phrases=len(findings), segmenter=segmenter,
        fuzzy=_fuzzy_map(findings, cues, label_words, raw.get("fuzzy") or {}, source),
        clause_ends=frozenset(normalize_text(str(c)).strip() if str(c).strip() not in (",", "?") else str(c).strip()
                              for c in _as_list((raw.get("coordination") or {}).get("clause_ends"),
                                                "coordination.clause_ends")),
    )


def _add_generated(spec: Any, assert_phrases: dict[str, frozenset[str]], findings: dict[str, dict[str, Any]],
                   cues: dict[str, list[Cue]], known: set[str], source: str) -> tuple[set[str], set[str]]:
    """Add the generated word orders and coordinations (:mod:`ecgkit.labels.forms`) as label phrases.

    A phrase the vocabulary lists itself wins over a generated one. Returns the keys of the
    qualifier-after-noun forms, which count only at the end of a clause, and of all generated forms.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"vocabulary {source}: coordination must be a mapping")
    if not spec:
        return set(), set()
    conj = [normalize_text(str(c)).strip() for c in _as_list(spec.get("conjunctions"), "coordination.conjunctions")]
    alternatives = []
    for pair in spec.get("alternatives") or []:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"vocabulary {source}: coordination.alternatives must hold label pairs, got {pair!r}")
        alternatives.append((str(pair[0]), str(pair[1])))
    words = set(known)
    for key in set(findings) | set(cues):
        words.update(key.split())
    tails: set[str] = set()
    made: set[str] = set()
    generated: list[tuple[dict[str, frozenset[str]], bool]] = [
        (coordinations(assert_phrases, conj, alternatives), False),
        (compound_forms(assert_phrases, words, conj, alternatives), False),
        ({inv: labels for p, labels in assert_phrases.items() for inv in inversions(p)}, True),
    ]
    for forms, tail in generated:
        for phrase, labels in forms.items():
            for key in _variants(phrase):
                if key in findings:
                    continue
                findings[key] = {"labels": sorted(labels), "kind": ASSERT, "requires": None, "forbids": None}
                made.add(key)
                if tail:
                    tails.add(key)
    return tails, made


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _edits1(word: str) -> set[str]:
    """Every string one edit from ``word``: deletion, transposition, substitution, insertion (a-z)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS if c != b[0]}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


def _fuzzy_map(findings: dict[str, dict[str, Any]], cues: dict[str, list[Cue]], names: dict[str, set[str]],
               spec: Any, source: str) -> dict[str, str]:
    """Misspelling -> vocabulary word, for the long words of label phrases.

    A word of ``min_length`` or more letters in a phrase that names a label (not an "other"
    finding, not a cue) stands for its one-edit misspellings (a letter dropped, doubled, swapped
    or wrong), and a word of ``transpose_min_length`` or more for its swapped-letter misspellings
    ("atrail", "blcok"), when the misspelling is (1) no word of any vocabulary phrase or cue
    itself, (2) not on the ``stoplist`` of real words, and (3) one edit only from words that name
    the same labels: "tigeminy" is one edit from trigeminy and from bigeminy, so it stands for
    neither, while "fibrilltion" (fibrillation or the listed misspelling fibrilation) is AFIB.
    Two adjacent words of a label phrase typed as one ("atrialfibrillation") stand for the pair.
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"vocabulary {source}: fuzzy must be a mapping (min_length, stoplist)")
    min_len = int(spec.get("min_length", 7))
    swap_len = int(spec.get("transpose_min_length", min_len))
    if min_len <= 0:
        return {}
    stop = {normalize_text(str(w)).strip() for w in _as_list(spec.get("stoplist"), "fuzzy.stoplist")}
    known: set[str] = set()
    for key in set(findings) | set(cues):
        known.update(key.split())
    shortest = min(min_len - 1, swap_len)
    out: dict[str, str] = {}
    ambiguous: set[str] = set()
    for target in sorted(names, key=lambda w: (-len(w), w)):
        if len(target) < min(min_len, swap_len):
            continue
        typos = (_edits1(target) if len(target) >= min_len else _swaps(target)) - known - stop
        for typo in typos:
            if len(typo) < shortest:
                continue
            other = out.setdefault(typo, target)
            if other != target and names[other] != names[target]:
                ambiguous.add(typo)
    for typo in ambiguous:
        del out[typo]
    # two words of a label phrase typed without the space between them ("atrialfibrillation",
    # "leftventricular hypertrophy", "premature ventricularbeat")
    for key, f in findings.items():
        if f["kind"] == OTHER:
            continue
        words = key.split()
        for w1, w2 in zip(words, words[1:]):
            glued = w1 + w2
            if (len(w1) >= 3 and len(w2) >= 3 and w1.isalpha() and w2.isalpha() and glued not in known
                    and glued not in stop):
                out.setdefault(glued, f"{w1} {w2}")
    return out


def _swaps(word: str) -> set[str]:
    return {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)} - {word}


def _segmenter(raw: dict, source: str, continuation: tuple[str, ...], abbreviations: frozenset[str]) -> Segmenter:
    """Segmentation settings: joiners are the listed words plus every cue that needs a following finding."""
    footers = raw.get("footers") or {}
    if not isinstance(footers, dict):
        raise ConfigError(f"vocabulary {source}: footers must map a footer kind to phrases")
    kinds = {"confirmed", "unconfirmed", "confirmed_signature", "signature"}
    if set(footers) - kinds:
        raise ConfigError(f"vocabulary {source}: unknown footer kind(s) {sorted(set(footers) - kinds)}; "
                          f"known: {sorted(kinds)}")
    joiners = {normalize_text(str(j)).strip() for j in _as_list(raw.get("joiners"), "joiners")}
    for name, spec in (raw.get("cues") or {}).items():
        if str(name).split("/")[0] in ("negated", "no_longer", "uncertain", "history", "excluded", "current"):
            for p in _as_list((spec or {}).get("before"), f"cues.{name}.before"):
                joiners.update(v.strip() for v in _variants(p))
    joiners.discard("?")
    joiners.discard("")
    listed = {str(k): _as_list(v, f"footers.{k}") for k, v in footers.items()}
    pattern, meta = footer_pattern(listed)
    anchors = footer_anchors(listed)
    anchor_ac = None
    if anchors:
        anchor_ac = ahocorasick.Automaton()
        for a in anchors:
            anchor_ac.add_word(a, a)
        anchor_ac.make_automaton()
    return Segmenter(continuation=continuation, joiners=frozenset(joiners), abbreviations=abbreviations,
                     footer_re=pattern, footer_kinds=meta, footer_anchors=anchors, anchor_automaton=anchor_ac)


class _PhraseLoader(yaml.SafeLoader):
    """YAML loader that keeps yes/no/on/off as strings: "no" is a negation cue, not False."""


_PhraseLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> Vocabulary:
    """Compile a vocabulary file, or take it from the per-user cache (:mod:`ecgkit.labels.cache`)."""
    from ecgkit.labels.cache import cached_vocabulary

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read vocabulary file {path}: {exc}") from exc
    return cast(Vocabulary, cached_vocabulary(path, data, lambda: _compile_file(data, path)))


def _compile_file(data: bytes, path: str) -> Vocabulary:
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_PhraseLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read vocabulary file {path}: {exc}") from exc
    return _compile(raw, path)


def load_vocabulary(vocabulary: str | Path | Vocabulary = "ecg-p18") -> Vocabulary:
    """Load and compile a vocabulary, once per file version (cached on path and modification time).

    Parameters
    ----------
    vocabulary : str, Path or Vocabulary
        A shipped name (``"ecg-p18"``), a path to a YAML vocabulary file, or an already loaded one.

    Raises
    ------
    ConfigError
        If the name is unknown, the file is missing or malformed, or it names unknown labels/macros.
    """
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    name = str(vocabulary)
    if name in SHIPPED:
        path = data_path(SHIPPED[name])
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"unknown vocabulary {name!r}: not a shipped name ({sorted(SHIPPED)}) "
                              f"and no file at {path}")
    path = path.resolve()
    return _load_cached(str(path), path.stat().st_mtime_ns)
