"""Context rules: decide, for each label phrase found in a statement, whether it asserts the label.

Rules are scoped to one statement (a line plus its continuation lines, or one sentence):

* a ``before`` cue qualifies label phrases that start at most ``window_before`` words after it, up to
  a break word ("with", "but", ...) or an out-of-vocabulary finding ("RBBB with possible RVH": the
  hedge reaches RVH only);
* an ``after`` cue qualifies the nearest label phrase ending at most ``window_after`` words before it
  ("anterolateraler infarkt möglich" hedges the infarct, not a bundle branch block before it);
* ``replaced`` ("X has replaced Y") marks everything after it in the statement, ``replaced_by``
  everything before it;
* ``statement_excluded`` ("Confirmed by ...") voids the rest of its statement (its clause: the
  findings after it; segmentation has already cut footers into statements of their own); ``comparison`` ("When
  compared with ECG of ...") starts the comparison section: from there to the end of the report a
  finding counts only when a ``current`` cue ("has replaced", "now present", "new") marks it;
* a ``break`` cue ends a cue's reach; a scoped one (``stops``) only that of the rules it names (a comma
  or "and" ends a hedge: "possible LVH, RBBB");
* a conditional phrase carries its condition ("bigeminy" requires VPC, a "2:1 A-V block" forbids AFL)
  in its decision; :func:`apply_conditions` checks it against the whole report.

Precedence when several rules apply: excluded > negated > replaced > history > comparison >
uncertain > asserted.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from typing import cast

from ecgkit.labels.matcher import match_statement
from ecgkit.labels.vocab import CONDITIONAL, EXCLUDED, OTHER, Finding, Vocabulary

#: Decisions, in precedence order; only "asserted" and "uncertain" can set a label.
DECISIONS = ("excluded", "negated", "replaced", "history", "comparison", "uncertain", "asserted")
_RANK = {d: i for i, d in enumerate(DECISIONS)}
# cue rule -> decision it leads to (no_longer is a negation that names the serial comparison)
_DECISION_OF = {"excluded": "excluded", "negated": "negated", "no_longer": "negated",
                "replaced": "replaced", "replaced_by": "replaced", "history": "history",
                "uncertain": "uncertain"}


@dataclass(frozen=True)
class Decision:
    """One label mention in one statement and what the rules made of it."""

    label: str
    decision: str
    phrase: str
    cue: str | None
    via: str | None = None
    # for conditional phrases: ("requires" | "forbids", label), checked against the whole report
    condition: tuple[str, str] | None = None


def _cue_applies(cue_labels: tuple[str, ...] | None, labels: tuple[str, ...]) -> bool:
    return cue_labels is None or any(lab in cue_labels for lab in labels)


def decide_statement(norm: str, vocab: Vocabulary, in_comparison: bool) -> tuple[list[Decision], bool]:
    """Apply the context rules to one normalised statement.

    Parameters
    ----------
    norm : str
        Normalised statement (see :func:`ecgkit.labels.normalize.normalize_text`).
    vocab : Vocabulary
        Compiled vocabulary.
    in_comparison : bool
        True when an earlier statement of the report opened the comparison section.

    Returns
    -------
    decisions : list of Decision
        One per label a label phrase mentions (implied labels included), in statement order.
    starts_comparison : bool
        Whether this statement opens the comparison section for the statements after it.
    """
    fixed: tuple[int, ...] = ()
    if vocab.fuzzy:
        norm, fixed = correct_spelling(norm, vocab.fuzzy)
    findings, cues = match_statement(norm, vocab)
    starts_comparison = any(c.rule == "comparison" for h in cues for c in h.cues)
    labelled = [h for h in findings if h.finding is not None and h.finding.kind != OTHER]
    if not labelled:
        return [], starts_comparison

    # an overreader or boilerplate phrase voids its own clause: the findings after it in the statement
    excluded_at = [(h.first, h.phrase) for h in cues for c in h.cues if c.rule == "statement_excluded"]
    comparison_at = min((h.first for h in cues for c in h.cues if c.rule == "comparison"), default=None)
    # barriers end a cue's reach: break words and out-of-vocabulary findings end every cue's reach,
    # scoped breaks (a comma, "and") only that of the cue rules they name
    barriers = sorted([h.first for h in cues if any(c.rule == "break" and c.stops is None for c in h.cues)]
                      + [h.first for h in findings if h.finding is not None and h.finding.kind == OTHER])
    scoped: dict[str, list[int]] = {}  # cue rule -> sorted positions of the scoped breaks that stop it
    for h in cues:
        for role in h.cues:
            if role.rule == "break" and role.stops is not None:
                for rule in role.stops:
                    scoped.setdefault(rule, []).append(h.first)
    before = [h for h in cues if any(c.side == "before" and c.rule not in ("replaced",) for c in h.cues)]
    before_ends = [h.last for h in before]
    before_starts = [h.first for h in before]
    after = [h for h in cues if any(c.side == "after" and c.rule != "replaced_by" for c in h.cues)]
    after_starts = [h.first for h in after]
    # "X has replaced Y" reaches to the end of the statement, "Y replaced by X" to its start: per
    # label restriction, only the first "replaced" and the last "replaced by" cue matter
    replaced: dict[tuple[str, ...] | None, tuple[int, str]] = {}
    replaced_by: dict[tuple[str, ...] | None, tuple[int, str]] = {}
    for h in cues:
        for role in h.cues:
            if role.rule == "replaced" and role.side == "before" and role.labels not in replaced:
                replaced[role.labels] = (h.last, h.phrase)
            elif role.rule == "replaced_by" and role.side == "after":
                replaced_by[role.labels] = (h.first, h.phrase)

    def blocked(lo: int, hi: int, rule: str) -> bool:
        """Is there a barrier for cue rule ``rule`` at a word index strictly between lo and hi?"""
        for positions in (barriers, scoped.get(rule, ())):
            i = bisect_right(positions, lo)
            if i < len(positions) and positions[i] < hi:
                return True
        return False

    out: list[Decision] = []
    for n, h in enumerate(labelled):
        f = cast(Finding, h.finding)
        decision, cue_phrase = "asserted", None
        current = False
        excluded_stmt = next((p for pos, p in excluded_at if pos <= h.first), None) if excluded_at else None
        if excluded_stmt is not None:
            decision, cue_phrase = "excluded", excluded_stmt
        elif f.kind == EXCLUDED:
            decision, cue_phrase = "excluded", h.phrase
        else:
            hits: list[tuple[str, str]] = []  # (cue rule, cue phrase)
            hits += [("replaced", p) for labs, (pos, p) in replaced.items()
                     if pos < h.first and _cue_applies(labs, f.labels)]
            hits += [("replaced_by", p) for labs, (pos, p) in replaced_by.items()
                     if pos > h.last and _cue_applies(labs, f.labels)]
            # cues starting before the finding and ending at most window_before words before it (or
            # inside it: "minimal voltage criteria for" + "voltage criteria for lvh"), no barrier between
            lo = bisect_left(before_ends, h.first - vocab.window_before - 1)
            hi = bisect_left(before_starts, h.first)
            for c in before[lo:hi]:
                for cue in c.cues:
                    if (cue.side != "before" or cue.rule == "replaced"
                            or not _cue_applies(cue.labels, f.labels)
                            or (c.last < h.first and blocked(c.last, h.first, cue.rule))):
                        continue
                    hits.append((cue.rule, c.phrase))
            # cues starting at most window_after words after it, if it is the nearest label phrase
            next_label = labelled[n + 1].first if n + 1 < len(labelled) else None
            lo = bisect_right(after_starts, h.last)
            hi = bisect_right(after_starts, h.last + vocab.window_after + 1)
            for c in after[lo:hi]:
                if next_label is not None and next_label < c.first:
                    continue
                hits += [(cue.rule, c.phrase) for cue in c.cues
                         if cue.side == "after" and cue.rule != "replaced_by"
                         and _cue_applies(cue.labels, f.labels) and not blocked(h.last, c.first, cue.rule)]
            for rule, phrase in hits:
                if rule == "current":
                    current = True
                elif rule in _DECISION_OF and _RANK[_DECISION_OF[rule]] < _RANK[decision]:
                    decision, cue_phrase = _DECISION_OF[rule], phrase
            in_section = in_comparison or (comparison_at is not None and comparison_at < h.first)
            if in_section and not current and _RANK[decision] > _RANK["comparison"]:
                decision, cue_phrase = "comparison", "comparison section"
        condition = None
        if f.kind == CONDITIONAL:
            condition = ("requires", f.requires) if f.requires is not None else \
                ("forbids", f.forbids) if f.forbids is not None else None
        # fixed is sorted: is any corrected word inside this phrase? (bisect keeps long statements linear)
        fuzzy = bool(fixed) and bisect_right(fixed, h.last) > bisect_left(fixed, h.first)
        for lab in f.labels:
            out.append(Decision(lab, decision, h.phrase, cue_phrase, via="fuzzy" if fuzzy else None,
                                condition=condition))
            for implied in vocab.implies.get(lab, ()):
                out.append(Decision(implied, decision, h.phrase, cue_phrase, via=f"{lab}+fuzzy" if fuzzy else lab,
                                    condition=condition))
    return out, starts_comparison


def correct_spelling(norm: str, fuzzy: dict[str, str]) -> tuple[str, tuple[int, ...]]:
    """Replace one-edit misspellings and glued word pairs; return the text and the word indices fixed.

    >>> correct_spelling(" ventricular bigemeny ", {"bigemeny": "bigeminy"})
    (' ventricular bigeminy ', (1,))
    >>> correct_spelling(" atrialfibrillation ", {"atrialfibrillation": "atrial fibrillation"})
    (' atrial fibrillation ', (0, 1))
    """
    words = norm.split(" ")  # ['', w0, w1, ..., '']
    if fuzzy.keys().isdisjoint(words):
        return norm, ()
    out: list[str] = []
    fixed: list[int] = []
    for w in words[1:-1]:
        target = fuzzy.get(w)
        if target is None:
            out.append(w)
            continue
        for part in target.split(" "):  # a glued pair ("atrialfibrillation") becomes two words
            fixed.append(len(out))
            out.append(part)
    return f" {' '.join(out)} ", tuple(fixed)


def apply_conditions(decisions: list[Decision]) -> list[Decision]:
    """Check conditional decisions against the labels the rest of the report asserts (or hedges).

    "Atrial flutter. 2:1 AV block." is the flutter's conduction (2AVB excluded) and "PVCs. Bigeminy."
    a ventricular bigeminy, however the report splits its statements. A failed condition makes the
    decision "excluded", naming the condition as its cue.
    """
    if all(d.condition is None for d in decisions):
        return decisions
    present = {d.label for d in decisions if d.condition is None and d.decision in ("asserted", "uncertain")}
    out = []
    for d in decisions:
        if d.condition is not None and d.decision != "excluded":
            kind, label = d.condition
            if kind == "requires" and label not in present:
                d = replace(d, decision="excluded", cue=f"no {label} in report")
            elif kind == "forbids" and label in present:
                d = replace(d, decision="excluded", cue=f"{label} in report")
        out.append(d)
    return out

