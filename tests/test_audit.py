"""Audit rules file, the audit's handling of unmeasured records, shard --audit mask|drop and
--min-quality, and the measure/audit CLI commands end to end."""
from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgkit.auditing import AuditResult, audit, flag_scores, load_rules
from ecgkit.cli import main
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.manifest import read_manifest
from ecgkit.shards import ShardConfig, write_shards
from ecgkit.synth import synth_cohort


def test_shipped_rules_load_with_citations() -> None:
    rules = load_rules()
    ids = [r.id for r in rules.rules]
    assert {"afib_regular_rr_with_p", "1avb_short_pr", "rbbb_narrow_qrs", "irbbb_wide_qrs",
            "3avb_constant_pr", "vt_no_fast_beats", "sinus_rhythm_irregular_rr"} <= set(ids)
    assert [c.column for c in rules.guard] == ["bsqi", "quality"]
    text = Path(rules.source).read_text()
    for rule_id in ids:  # every rule is followed by a comment naming its criterion
        block = text.split(f"id: {rule_id}\n", 1)[1].split("- id:", 1)[0]
        assert "#" in block and any(ch.isdigit() for ch in block), rule_id


@pytest.mark.parametrize("body, problem", [
    ("rules:\n  - id: a\n    label: AFIB\n    colour: red\n    all: [[rr_cv, '<', 1]]\n", "unknown key"),
    ("rules:\n  - id: a\n    label: AFIB\n    all: [[rr_cv, '~', 1]]\n", "condition"),
    ("rules:\n  - id: a\n    all: [[rr_cv, '<', 1]]\n", "exactly one"),
    ("rules:\n  - id: a\n    statement: '('\n    all: [[rr_cv, '<', 1]]\n", "regex"),
    ("rules:\n  - id: a\n    label: AFIB\n", "at least one condition"),
])
def test_bad_rules_files_are_config_errors(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=problem):
        load_rules(path)


def _toy_manifest() -> pd.DataFrame:
    base = {"record_id": ["a", "b", "c", "d"], "status": ["ok", "ok", "ok", "quarantined"],
            "statements": [["Sinus rhythm"], ["Atrial fibrillation"], ["Sinus rhythm"], []],
            "AFIB": np.array([0, 1, 1, 1], dtype=np.int8),
            "measure_reason": [None, None, None, "not measured"],
            "bsqi": [1.0, 1.0, 0.5, np.nan], "quality": [0.99, 0.99, 0.99, np.nan],
            "rr_cv": [0.02, 0.03, 0.03, np.nan], "p_share": [1.0, np.nan, 1.0, np.nan]}
    return pd.DataFrame(base)


def test_nan_measurements_and_failed_guard_are_never_flagged(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("guard: [[bsqi, '>=', 0.9]]\nrules:\n  - id: af\n    label: AFIB\n    stated: 1\n"
                    "    all: [[rr_cv, '<', 0.06], [p_share, '>=', 0.8]]\n"
                    "  - id: sr\n    statement: 'sinus rhythm'\n    all: [[rr_cv, '<', 0.06]]\n")
    res = audit(_toy_manifest(), load_rules(path))
    # b: p_share NaN -> unmeasured; c: bsqi 0.5 -> guarded out; d: quarantined -> not a candidate
    af = res.summary.set_index("rule").loc["af"]
    counts = (af["candidates"], af["audited"], af["unmeasured"], af["guarded_out"], af["flagged"])
    assert counts == (2, 0, 1, 1, 0)
    sr = res.summary.set_index("rule").loc["sr"]
    assert (sr["candidates"], sr["flagged"]) == (2, 1)
    assert res.flags["record_id"].tolist() == ["a"] and res.flags["label"].iloc[0] == "statement:sinus rhythm"
    assert res.manifest["audit_flags"].tolist() == [[], [], [], []]  # statement rules mask no label
    with pytest.raises(SchemaError, match="run `ecgkit measure`"):
        audit(_toy_manifest().drop(columns=["measure_reason"]), load_rules(path))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic cohort taken through the CLI: synth, scan, label, split, measure, audit."""
    root = tmp_path_factory.mktemp("cli")
    synth_cohort(14, root / "raw", seed=4, label_noise=0.3)
    runner = CliRunner()
    cohort = root / "cohort"
    for args in (["scan", str(root / "raw"), "--out", str(cohort)], ["label", str(cohort)],
                 ["split", str(cohort), "--seed", "1"], ["measure", str(cohort), "--delineate"],
                 ["audit", str(cohort), "--plots", "2"]):
        res = runner.invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, (args, res.output)
    return cohort


def test_cli_measure_and_audit_write_their_outputs(cohort: Path) -> None:
    m = read_manifest(cohort)
    assert m["hr_bpm"].notna().all() and m["pr_ms"].notna().mean() > 0.5
    flags = pd.read_parquet(cohort / "audit.parquet")
    assert len(flags) > 0 and set(flags["rule"]) <= {r.id for r in load_rules().rules}
    md = (cohort / "audit.md").read_text()
    assert "| rule | label |" in md and md.count("![") == min(2, len(flags))
    pngs = sorted((cohort / "audit_plots").glob("*.png"))
    assert len(pngs) == min(2, len(flags)) and all(p.stat().st_size > 10_000 for p in pngs)
    assert sum(len(v) for v in m["audit_flags"]) == int((~flags["label"].str.startswith("statement:")).sum())


def test_shard_audit_mask_drop_and_min_quality(cohort: Path, tmp_path: Path) -> None:
    m = read_manifest(cohort)
    flagged = m[[len(v) > 0 for v in m["audit_flags"]]]
    assert len(flagged) > 0
    masked = write_shards(m, tmp_path / "mask", ShardConfig(workers=1, audit="mask"))
    rid = flagged["record_id"].iloc[0]
    lab = list(flagged["audit_flags"].iloc[0])[0]
    row = masked.set_index("record_id").loc[rid]
    assert row[lab] == -1 and lab in list(row["audit_masked"]) and row["status"] == "ok"
    with h5py.File(tmp_path / "mask" / f"{row['shard']}.h5") as f:
        names = list(f.attrs["label_names"])
        assert f["labels"][int(row["row"]), names.index(lab)] == -1
        assert f.attrs["label_audit"] == "mask" and json.loads(f.attrs["config"])["audit"] == "mask"
        assert math.isnan(f.attrs["min_quality"])
    dropped = write_shards(m, tmp_path / "drop", ShardConfig(workers=1, audit="drop"))
    gone = dropped.set_index("record_id").loc[flagged["record_id"]]
    assert (gone["status"] == "quarantined").all() and gone["reason"].str.contains("--audit drop").all()
    q = pd.read_parquet(tmp_path / "drop" / "quarantine.parquet")
    assert set(flagged["record_id"]) <= set(q["record_id"])
    bound = float(m["quality"].median())
    low = write_shards(m, tmp_path / "q", ShardConfig(workers=1, min_quality=bound))
    below = m["quality"] < bound
    assert (low.loc[below.to_numpy(), "status"] == "quarantined").all()
    assert low.loc[below.to_numpy(), "reason"].str.contains("--min-quality").all()
    assert (low.loc[~below.to_numpy(), "status"] == m.loc[~below.to_numpy(), "status"]).all()
    # the measure stage reads the same records from the shards (int16 at 1 uV): same beats
    from ecgkit.measuring import MeasureConfig, measure

    from_shards = measure(masked, MeasureConfig(), shards_dir=tmp_path / "mask")
    in_shard = masked["shard"].notna().to_numpy()
    np.testing.assert_allclose(from_shards.loc[in_shard, "hr_bpm"], m.loc[in_shard, "hr_bpm"], rtol=1e-3)
    with pytest.raises(SchemaError, match="shard/row"):
        measure(m, MeasureConfig(), shards_dir=tmp_path / "mask")
    with pytest.raises(SchemaError, match="ecgkit audit"):
        write_shards(m.drop(columns=["audit_flags"]), tmp_path / "x", ShardConfig(workers=1, audit="mask"))


def test_flag_scores_against_flips_and_against_the_signal_by_hand(tmp_path: Path) -> None:
    """Four records, one rule label (AFIB). r1: noise flip (true 0, stated 1, signal 0); r2: silent finding
    (true 1, stated 1, signal 0); r3: agreement; r4: mimic (true 0, stated 0, signal 1). Flags on r1, r2, r3.
    Against flips: 1 of 3 flags right, 1 of 1 flip found. Against the signal: r1 and r2 are contradictions
    flagged, r4 one missed: precision 2/3, recall 2/3."""
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - id: af\n    label: AFIB\n    stated: 1\n    all: [[rr_cv, '<', 0.06]]\n")
    ids = ["r1", "r2", "r3", "r4"]
    flags = pd.DataFrame({"record_id": ["r1", "r2", "r3", "r9"], "label": ["AFIB"] * 3 + ["statement:x"]})
    result = AuditResult(flags=flags, summary=pd.DataFrame(), manifest=pd.DataFrame(), rules=load_rules(path))
    truth = pd.DataFrame({"record_id": ids, "AFIB": [0, 1, 1, 0]})
    stated = pd.DataFrame({"record_id": ids, "AFIB": [1, 1, 1, 0]})
    shown = pd.DataFrame({"record_id": ids[::-1], "AFIB": [1, 1, 0, 0]})  # r4, r3, r2, r1: order must not matter
    sc = flag_scores(result, truth, stated, shown=shown)
    assert (sc["flags"], sc["flipped"], sc["true_positives"]) == (3, 1, 1)
    assert sc["precision"] == pytest.approx(1 / 3) and sc["recall"] == 1.0
    assert (sc["contradictions"], sc["true_positives_signal"]) == (3, 2)
    assert sc["precision_signal"] == pytest.approx(2 / 3) and sc["recall_signal"] == pytest.approx(2 / 3)
    assert "precision_signal" not in flag_scores(result, truth, stated)
