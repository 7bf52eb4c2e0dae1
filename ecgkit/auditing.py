"""Label audit: text labels set against the record's own measured ECG, by written rules.

The module is called ``auditing`` (not ``audit``) so that ``ecgkit.audit`` stays the function,
as ``ecgkit.ingest`` holds ``ecgkit.scan``.

Entry points: :func:`load_rules` (the rules file, shipped as ``data/audit_rules.yaml``),
:func:`audit` (manifest with labels and measurements in, :class:`AuditResult` out) and
:func:`write_audit` (``audit.parquet``, ``audit.md`` and ECG plots of a sample of flagged records).

The manifest gains ``audit_flags`` (list of the label columns that a rule contradicted on that
record), which ``ecgkit shard --audit mask|drop`` uses. Statement rules (a regex on the statements
instead of a label column) are reported but add no label to ``audit_flags``.
"""
from __future__ import annotations

import logging
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray

from ecgkit._resources import data_path
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.manifest import STATUS_OK

log = logging.getLogger(__name__)

_OPS: dict[str, Callable[[Any, Any], Any]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                              ">=": operator.ge}
#: Columns of ``audit.parquet`` (besides the rule's own measured values in ``values``).
AUDIT_COLUMNS: tuple[str, ...] = ("record_id", "label", "rule", "stated", "values", "hr_bpm", "rr_cv",
                                  "pr_ms", "qrs_ms", "quality")
AUDIT_FILE = "audit.parquet"


@dataclass(frozen=True)
class Condition:
    """``column op value`` on one measurement column."""

    column: str
    op: str
    value: float


@dataclass(frozen=True)
class Rule:
    """One audit rule (see the header of ``data/audit_rules.yaml``)."""

    id: str
    conditions: tuple[Condition, ...]
    label: str | None = None
    stated: int = 1
    statement: str | None = None
    unless_statement: str | None = None
    unless_labels: tuple[str, ...] = ()
    enabled: bool = True

    @property
    def target(self) -> str:
        """The label column, or ``statement:<regex>`` for statement rules."""
        return self.label if self.label is not None else f"statement:{self.statement}"


@dataclass(frozen=True)
class RuleSet:
    """Rules plus the guard conditions every audited record must meet."""

    version: str
    guard: tuple[Condition, ...]
    rules: tuple[Rule, ...]
    source: str = ""


@dataclass(frozen=True)
class AuditResult:
    """Output of :func:`audit`.

    ``flags``: one row per (record, rule) flagged, columns :data:`AUDIT_COLUMNS`; ``summary``: one
    row per rule (``rule``, ``label``, ``stated``, ``candidates`` records with that label state,
    ``audited`` of them passing the guard with every measurement present, ``unmeasured``,
    ``guarded_out``, ``flagged``, ``flagged_share`` of audited); ``manifest``: the input with
    ``audit_flags``.
    """

    flags: pd.DataFrame
    summary: pd.DataFrame
    manifest: pd.DataFrame
    rules: RuleSet = field(repr=False)


def _condition(item: Any, where: str) -> Condition:
    if not (isinstance(item, (list, tuple)) and len(item) == 3 and item[1] in _OPS):
        raise ConfigError(f"{where}: a condition is [column, op, value] with op in {list(_OPS)}, "
                          f"got {item!r}")
    try:
        return Condition(str(item[0]), str(item[1]), float(item[2]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: condition value must be a number, got {item[2]!r}") from exc


_RULE_KEYS = {"id", "label", "stated", "statement", "unless_statement", "unless_labels", "all", "enabled"}


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load audit rules from YAML (default: the shipped ``data/audit_rules.yaml``).

    Raises
    ------
    ConfigError
        On a missing file, an unknown key, a malformed condition or regex, or a rule with neither or
        both of ``label`` and ``statement``.
    """
    p = data_path("audit_rules.yaml") if path is None else Path(path)
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read audit rules {p}: {exc}") from exc
    guard = tuple(_condition(c, f"{p} guard") for c in doc.get("guard") or [])
    rules = []
    for i, r in enumerate(doc.get("rules") or []):
        where = f"{p} rule {r.get('id', i) if isinstance(r, dict) else i}"
        if not isinstance(r, dict):
            raise ConfigError(f"{where}: a rule is a mapping, got {r!r}")
        unknown = set(r) - _RULE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(_RULE_KEYS)}")
        if ("label" in r) == ("statement" in r):
            raise ConfigError(f"{where}: give exactly one of 'label' and 'statement'")
        for key in ("statement", "unless_statement"):
            if r.get(key) is not None:
                try:
                    re.compile(r[key])
                except re.error as exc:
                    raise ConfigError(f"{where}: bad {key} regex {r[key]!r}: {exc}") from exc
        if not r.get("all"):
            raise ConfigError(f"{where}: a rule needs at least one condition under 'all'")
        stated = int(r.get("stated", 1))
        if stated not in (0, 1):
            raise ConfigError(f"{where}: stated must be 0 or 1, got {stated}")
        rules.append(Rule(id=str(r.get("id", f"rule{i}")), label=r.get("label"), stated=stated,
                          statement=r.get("statement"), unless_statement=r.get("unless_statement"),
                          unless_labels=tuple(r.get("unless_labels") or ()),
                          enabled=bool(r.get("enabled", True)),
                          conditions=tuple(_condition(c, where) for c in r["all"])))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{p}: rule ids are not unique: {ids}")
    return RuleSet(version=str(doc.get("version", "")), guard=guard, rules=tuple(rules), source=str(p))


def _values(df: pd.DataFrame, conds: tuple[Condition, ...]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(all conditions hold, every column measured) per row; NaN never satisfies a condition."""
    holds = np.ones(len(df), dtype=bool)
    measured = np.ones(len(df), dtype=bool)
    for c in conds:
        v = pd.to_numeric(df[c.column], errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(v)
        measured &= finite
        with np.errstate(invalid="ignore"):
            holds &= finite & _OPS[c.op](v, c.value)
    return holds, measured


def _statement_match(df: pd.DataFrame, pattern: str) -> NDArray[np.bool_]:
    rx = re.compile(pattern, re.IGNORECASE)
    return np.array([bool(s is not None and any(rx.search(str(t)) for t in s)) for s in df["statements"]],
                    dtype=bool)


def audit(manifest: pd.DataFrame, rules: RuleSet | None = None) -> AuditResult:
    """Flag labels that the record's own measurements contradict.

    Parameters
    ----------
    manifest : DataFrame
        A manifest with label columns (``ecgkit label``) and measurements (``ecgkit measure``).
    rules : RuleSet or None
        :func:`load_rules` output; None loads the shipped rules.

    Returns
    -------
    AuditResult

    Raises
    ------
    SchemaError
        If the manifest has no measurements, or a rule names a label or measurement column the
        manifest lacks (the message names the rule).
    """
    rules = rules or load_rules()
    if "measure_reason" not in manifest.columns:
        raise SchemaError("manifest has no measurements; run `ecgkit measure` first")
    ok = (manifest["status"] == STATUS_OK).to_numpy()
    guard_ok, _ = _values(manifest, rules.guard)
    flags: list[pd.DataFrame] = []
    summary = []
    flagged_labels: list[set[str]] = [set() for _ in range(len(manifest))]
    for rule in rules.rules:
        if not rule.enabled:
            continue
        missing = [c.column for c in rule.conditions if c.column not in manifest.columns]
        missing += [lab for lab in ((rule.label,) if rule.label else ()) + rule.unless_labels
                    if lab not in manifest.columns]
        if missing:
            raise SchemaError(f"audit rule {rule.id} needs manifest column(s) {missing}")
        if rule.label is not None:
            cand = np.array(pd.to_numeric(manifest[rule.label], errors="coerce") == rule.stated, dtype=bool)
        else:
            cand = _statement_match(manifest, str(rule.statement))
        if rule.unless_statement:
            cand &= ~_statement_match(manifest, rule.unless_statement)
        for lab in rule.unless_labels:
            cand &= ~(pd.to_numeric(manifest[lab], errors="coerce") == 1).to_numpy()
        cand &= ok
        holds, measured = _values(manifest, rule.conditions)
        audited = cand & guard_ok & measured
        hit = audited & holds
        summary.append({"rule": rule.id, "label": rule.target, "stated": rule.stated,
                        "candidates": int(cand.sum()), "audited": int(audited.sum()),
                        "unmeasured": int((cand & ~measured).sum()),
                        "guarded_out": int((cand & measured & ~guard_ok).sum()), "flagged": int(hit.sum()),
                        "flagged_share": float(hit.sum() / audited.sum()) if audited.sum() else math.nan})
        if hit.any():
            sub = manifest.loc[hit]
            vals = [", ".join(f"{c.column}={float(v):.3g}" for c, v in zip(rule.conditions, row))
                    for row in sub[[c.column for c in rule.conditions]].itertuples(index=False)]
            extra = {k: (sub[k].to_numpy(dtype=np.float64) if k in sub.columns else np.full(len(sub), np.nan))
                     for k in ("hr_bpm", "rr_cv", "pr_ms", "qrs_ms", "quality")}
            flags.append(pd.DataFrame({"record_id": sub["record_id"].astype(str).to_numpy(),
                                       "label": rule.target, "rule": rule.id, "stated": rule.stated,
                                       "values": vals, **extra}))
            if rule.label is not None:
                for i in np.flatnonzero(hit):
                    flagged_labels[i].add(rule.label)
    flag_df = (pd.concat(flags, ignore_index=True) if flags
               else pd.DataFrame({c: pd.Series(dtype="float64" if c in AUDIT_COLUMNS[5:] else "object")
                                  for c in AUDIT_COLUMNS}))
    out = manifest.copy()
    out["audit_flags"] = pd.Series([sorted(s) for s in flagged_labels], index=out.index, dtype=object)
    log.info("audit: %d flags over %d rules", len(flag_df), len(summary))
    return AuditResult(flags=flag_df[list(AUDIT_COLUMNS)], summary=pd.DataFrame(summary), manifest=out,
                       rules=rules)


def flag_scores(result: AuditResult, truth: pd.DataFrame, stated: pd.DataFrame,
                shown: pd.DataFrame | None = None) -> dict[str, float]:
    """Recall and precision of label flags against known label noise (synthetic cohorts).

    A flipped label is a (record, label) whose ``stated`` value differs from ``truth``; a flag is
    correct when it names a flipped label. Recall counts flips of labels that some flag rule covers.

    Parameters
    ----------
    result : AuditResult
        :func:`audit` output; its enabled label rules define the labels covered (statement rules
        are ignored).
    truth, stated : DataFrame
        ``truth.parquet`` and ``labels_stated.parquet`` of :func:`ecgkit.synth.synth_cohort`, with
        ``record_id`` matching the manifest's.
    shown : DataFrame, optional
        ``labels_signal.parquet`` (what each signal shows; at harder difficulties some stated findings
        are silent in the signal and some signals mimic an unstated one). With it the result also
        scores flags against every *contradiction*, a (record, label) whose stated value differs from
        what its signal shows, noise flips and silent/mimic records alike: ``contradictions``,
        ``precision_signal`` and ``recall_signal``. That is what the audit is for; the flip scores
        count a correctly flagged silent finding as a false flag.
    """
    flags = result.flags
    lab = flags[~flags["label"].astype(str).str.startswith("statement:")]
    labels = sorted({r.label for r in result.rules.rules if r.enabled and r.label} & set(truth.columns))
    t = truth.set_index("record_id")
    s = stated.set_index("record_id").loc[t.index]
    flipped = {(rid, name) for name in labels for rid in t.index[(t[name] != s[name]).to_numpy()]}
    got = {(r, name) for r, name in zip(lab["record_id"], lab["label"]) if r in t.index}
    tp = len(got & flipped)
    out = {"flags": float(len(got)), "flipped": float(len(flipped)), "true_positives": float(tp),
           "precision": tp / len(got) if got else math.nan,
           "recall": tp / len(flipped) if flipped else math.nan}
    if shown is not None:
        w = shown.set_index("record_id").loc[t.index]
        contra = {(rid, name) for name in labels for rid in t.index[(w[name] != s[name]).to_numpy()]}
        hit = len(got & contra)
        out.update({"contradictions": float(len(contra)), "true_positives_signal": float(hit),
                    "precision_signal": hit / len(got) if got else math.nan,
                    "recall_signal": hit / len(contra) if contra else math.nan})
    return out


def _mark_beats(fig: Any, signal: NDArray[np.floating], fs: float, lead: str, row: pd.Series) -> None:
    """Mark the measured R peaks (and, with delineation, P onset and QRS onset/offset) on the
    rhythm strip of :func:`ecgkit.plot.plot_ecg`, and print the measurements under the title."""
    from ecgkit import _measure_signal as ms
    from ecgkit.record import LEADS

    ax = fig.axes[0]
    x = np.asarray(signal[LEADS.index(lead)], dtype=np.float64)
    clean = ms.clean_lead(x, fs)
    peaks = ms.detect_neurokit(clean, fs)
    base, mm_s, mm_mv = 15.0, 25.0, 10.0  # rhythm strip baseline (mm) and paper scales of plot_ecg
    t = peaks / fs * mm_s
    ax.plot(t, base + x[peaks] * mm_mv + 3.0, "v", color="tab:blue", ms=3, zorder=4)
    if np.isfinite(float(row.get("pr_ms", np.nan))) and len(peaks) >= 3:
        try:
            waves = ms.delineate(clean, peaks, fs, "prominence")
        except Exception:  # a plot without interval marks is still the record's plot
            waves = {}
        for key, colour in (("P_Onsets", "tab:green"), ("R_Onsets", "tab:orange"),
                            ("R_Offsets", "tab:orange"), ("T_Offsets", "tab:purple")):
            v = waves.get(key, np.zeros(0))
            v = v[np.isfinite(v)]
            ax.vlines(v / fs * mm_s, base - 6.0, base + 6.0, colors=colour, linewidth=0.6, zorder=4)

    def f(name: str, unit: str) -> str:
        v = float(row.get(name, np.nan))
        short = name.split("_")[0].upper()
        return f"{short} {v:.0f} {unit}" if np.isfinite(v) else f"{short} n/a"

    ax.text(0.0, ax.get_ylim()[1] + 1.0, f"measured on {lead}: " + ", ".join(
        [f("hr_bpm", "bpm"), f("pr_ms", "ms"), f("qrs_ms", "ms"), f("qt_ms", "ms")])
        + f", RR CV {float(row.get('rr_cv', np.nan)):.3f}, bSQI {float(row.get('bsqi', np.nan)):.2f}"
        "  (marks: R peaks v; P onset green, QRS onset/offset orange, T end purple)",
        fontsize=6, va="bottom", ha="left")


def write_audit(result: AuditResult, out_dir: str | Path, *, n_plots: int = 6,
                seed: int = 0) -> dict[str, Path]:
    """Write ``audit.parquet``, ``audit.md`` and ECG plots of up to ``n_plots`` flagged records.

    Plotted records are a seeded sample of flagged ones, spread over rules; each plot is the
    12-lead ECG-paper plot with the measured beats and intervals marked on the rhythm strip.
    Records are read again through :func:`ecgkit.io.read_record` for the plots.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ecgkit.io import read_record
    from ecgkit.plot import plot_ecg

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (AUDIT_FILE + ".tmp")
    result.flags.to_parquet(tmp, index=False)
    tmp.replace(out / AUDIT_FILE)
    plots_dir = out / "audit_plots"
    plots_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    flags = result.flags
    picked: list[int] = []
    by_rule = [rng.permutation(np.flatnonzero((flags["rule"] == r).to_numpy())).tolist()
               for r in flags["rule"].unique()]
    while len(picked) < n_plots and any(by_rule):  # round-robin over rules
        for idx in by_rule:
            if idx and len(picked) < n_plots:
                picked.append(idx.pop())
    m = result.manifest.set_index("record_id")
    lines = [f"# Label audit", "", f"Rules: `{result.rules.source}` (version {result.rules.version}). "
             f"{len(flags)} flags on {flags['record_id'].nunique()} records.", "",
             "| rule | label | stated | candidates | audited | unmeasured | guarded out | flagged | share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result.summary.itertuples(index=False):
        share = "" if not np.isfinite(r.flagged_share) else f"{r.flagged_share:.1%}"
        lines.append(f"| {r.rule} | {r.label} | {r.stated} | {r.candidates} | {r.audited} | {r.unmeasured} | "
                     f"{r.guarded_out} | {r.flagged} | {share} |")
    lines += ["", "## Flagged records (sample)", ""]
    for k, i in enumerate(picked):
        fl = flags.iloc[i]
        rid = str(fl["record_id"])
        row = m.loc[rid]
        try:
            rec = read_record(str(row["source_path"]), record_id=rid)
        except Exception as exc:  # the report lists the record even when it cannot be plotted
            lines += [f"### {rid}: {fl['rule']}", "", f"not plotted: {exc}", ""]
            continue
        lead = str(row.get("measure_lead") or "II")
        fig = plot_ecg(rec.signal, rec.fs, rhythm_lead=lead,
                       title=f"{rid}: {fl['rule']} ({fl['label']} stated {fl['stated']}; {fl['values']})")
        _mark_beats(fig, rec.signal, rec.fs, lead, row)
        FigureCanvasAgg(fig)
        name = f"{k:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', rid)}.png"
        fig.savefig(plots_dir / name, dpi=110)
        stmts = "; ".join(row["statements"]) if row["statements"] is not None else ""
        lines += [f"### {rid}: {fl['rule']}", "", f"Statements: {stmts}", "",
                  f"Measured: {fl['values']}", "", f"![{rid}](audit_plots/{name})", ""]
    (out / "audit.md").write_text("\n".join(lines) + "\n")
    return {"parquet": out / AUDIT_FILE, "md": out / "audit.md", "plots": plots_dir}

