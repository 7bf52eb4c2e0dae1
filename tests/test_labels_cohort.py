"""Tests of the cohort entry point ecgkit.labels.label_manifest and the `ecgkit label` command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgkit.cli import main
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.labels import label_manifest
from ecgkit.manifest import SCAN_COLUMNS, conform, read_manifest, write_manifest

LABELS = ["LVH", "RVH", "AFIB", "AFL", "IVCD", "NIVCD", "RBBB", "LBBB", "IRBBB", "ILBBB", "1AVB", "2AVB",
          "3AVB", "EAR", "VBIG", "VT", "VPC", "APC"]


def _manifest() -> pd.DataFrame:
    rows = [
        # MUSE example's statements (see tests/test_labels.py)
        dict(record_id="muse/1", source_path="muse/1.xml", status="ok",
             statements=["Sinus bradycardia", "with sinus arrhythmia", "with 1st degree A-V block",
                         "Otherwise normal ECG", "Confirmed by Garg, Ruchira M.D."], codes=None),
        # Challenge record: atrial fibrillation + PVC by SNOMED, no statements
        dict(record_id="cinc/E1", source_path="cinc/E1.hea", status="ok", statements=None,
             codes=json.dumps({"snomed": ["164889003", "427172004", "426783006"]})),
        # PTB-XL record 45: text says IRBBB; scp adds RVH with likelihood 35
        dict(record_id="ptbxl/45", source_path="ptbxl/45.hea", status="ok",
             statements=["sinusrhythmus unvollstÄndiger rechtsschenkelblock sonst normales ekg"],
             codes=json.dumps({"scp": {"IRBBB": 100.0, "RAO/RAE": 50.0, "RVH": 35.0, "SR": 0.0}})),
        # quarantined for a signal problem, still labelled from its text
        dict(record_id="muse/2", source_path="muse/2.xml", status="quarantined", reason="lead V3 flat",
             statements=["RBBB with possible RVH"], codes="not json"),
    ]
    return conform(rows)


def test_label_manifest_text_columns_and_provenance():
    out = label_manifest(_manifest(), uncertain="mask")
    assert list(out.columns) == list(SCAN_COLUMNS) + LABELS + ["label_provenance", "report_status"]
    assert all(out[lab].dtype == np.int8 for lab in LABELS)
    got = {rid: {lab for lab in LABELS if out.loc[i, lab] != 0} for i, rid in enumerate(out.record_id)}
    assert got == {"muse/1": {"1AVB"}, "cinc/E1": set(), "ptbxl/45": {"IRBBB"}, "muse/2": {"RBBB", "RVH"}}
    assert out.loc[3, "RVH"] == -1 and out.loc[3, "RBBB"] == 1
    assert out.label_provenance.tolist() == [
        "1AVB<-'1st degree a v block' (stmt 1)", "",
        "IRBBB<-'unvollstaendiger rechtsschenkelblock' (stmt 1)",
        "RBBB<-'rbbb' (stmt 1); RVH?<-'rvh' (stmt 1, uncertain: 'possible')"]


def test_label_manifest_codes_and_both():
    codes = label_manifest(_manifest(), source="codes")
    assert {lab for lab in LABELS if codes.loc[1, lab] == 1} == {"AFIB", "VPC"}
    assert {lab for lab in LABELS if codes.loc[2, lab] == 1} == {"IRBBB", "RVH"}  # likelihood 35 counts
    assert codes.loc[3, LABELS].sum() == 0  # unreadable codes JSON: no labels, no crash
    assert codes.label_provenance[1] == "AFIB<-snomed:164889003; VPC<-snomed:427172004"
    both = label_manifest(_manifest(), source="both", uncertain="negative")
    assert {lab for lab in LABELS if both.loc[2, lab] == 1} == {"IRBBB", "RVH"}
    assert {lab for lab in LABELS if both.loc[0, lab] == 1} == {"1AVB"}
    assert both.label_provenance[2] == ("IRBBB<-'unvollstaendiger rechtsschenkelblock' (stmt 1); "
                                        "IRBBB<-scp:IRBBB; RVH<-scp:RVH")


def test_label_manifest_errors():
    with pytest.raises(ConfigError, match="source"):
        label_manifest(_manifest(), source="pictures")
    with pytest.raises(ConfigError, match="uncertain"):
        label_manifest(_manifest(), uncertain="maybe")
    with pytest.raises(SchemaError, match="statements"):
        label_manifest(_manifest().drop(columns=["statements"]))


def test_label_manifest_wrong_statement_type_names_record():
    m = _manifest()
    m.at[2, "statements"] = 17
    with pytest.raises(TypeError, match="ptbxl/45"):
        label_manifest(m)


def test_cli_label_round_trip(tmp_path: Path):
    write_manifest(_manifest(), tmp_path)
    result = CliRunner().invoke(main, ["label", str(tmp_path), "--uncertain", "mask"])
    assert result.exit_code == 0, result.output
    assert "labelled 4 records with ecg-p18 1.0" in result.output
    assert "1AVB 1," in result.output and "RBBB 1," in result.output and "masked: 1" in result.output
    back = read_manifest(tmp_path)
    assert list(back.columns) == list(SCAN_COLUMNS) + LABELS + ["label_provenance", "report_status"]
    assert back.loc[back.record_id == "muse/1", "1AVB"].item() == 1
    assert back.loc[back.record_id == "muse/2", "RVH"].item() == -1
    # rerun replaces the columns rather than duplicating them
    result = CliRunner().invoke(main, ["label", str(tmp_path), "--source", "both"])
    assert result.exit_code == 0, result.output
    again = read_manifest(tmp_path)
    assert list(again.columns) == list(back.columns)
    assert again.loc[again.record_id == "cinc/E1", "AFIB"].item() == 1


def _status_manifest() -> pd.DataFrame:
    rows = [
        # Schiller device footer typed into a one-line PTB-XL style report
        dict(record_id="a", source_path="a.hea", status="ok", codes=None,
             statements=["vorhofflimmern linkstyp 4.46      unbestätigter bericht"]),
        # MUSE: the reader's TestDemographics/Status field wins over the text
        dict(record_id="b", source_path="b.xml", status="ok", codes=json.dumps({"report_status": "confirmed"}),
             statements=["Atrial fibrillation", "Unconfirmed report"]),
        # an overreader's line after the device's footer: the last footer wins
        dict(record_id="c", source_path="c.xml", status="ok", codes=None,
             statements=["Sinus rhythm", "Right bundle branch block", "** Unconfirmed report **",
                         "Confirmed by Doe, John (123) on 3/14/2019 10:02:11 AM"]),
        dict(record_id="d", source_path="d.xml", status="ok", codes=None, statements=["RBBB"]),
        # Swedish: "obekräftad" (unconfirmed); quarantined at scan already
        dict(record_id="e", source_path="e.hea", status="quarantined", reason="lead V3 flat", codes=None,
             statements=["förmaksflimmer  Obekräftad tolkning"]),
        dict(record_id="f", source_path="f.xml", status="ok", codes=json.dumps({"report_status": "UNCONFIRMED"}),
             statements=["Left bundle branch block"]),
    ]
    return conform(rows)


def test_report_status_from_footers_and_format_fields():
    out = label_manifest(_status_manifest())
    assert out.report_status.tolist() == ["unconfirmed", "confirmed", "confirmed", "unknown", "unconfirmed",
                                          "unconfirmed"]
    assert out.report_status.dtype == "string"
    # kept by default: the footer voids only itself
    assert out.AFIB.tolist() == [1, 1, 0, 0, 1, 0] and out.LBBB.tolist() == [0, 0, 0, 0, 0, 1]


def test_unconfirmed_mask_and_drop():
    masked = label_manifest(_status_manifest(), unconfirmed="mask")
    unconf = masked.report_status == "unconfirmed"
    assert (masked.loc[unconf, LABELS] == -1).all().all()
    assert masked.loc[~unconf, "AFIB"].tolist() == [1, 0, 0] and masked.loc[~unconf, "RBBB"].tolist() == [0, 1, 1]
    dropped = label_manifest(_status_manifest(), unconfirmed="drop")
    assert len(dropped) == 6  # records in = records out; dropped ones are quarantined with a reason
    assert dropped.status.tolist() == ["quarantined", "ok", "ok", "ok", "quarantined", "quarantined"]
    assert dropped.reason.tolist()[:1] == ["label: unconfirmed report (--unconfirmed drop)"]
    assert dropped.reason[4] == "lead V3 flat"  # a scan reason is not overwritten
    with pytest.raises(ConfigError, match="unconfirmed"):
        label_manifest(_status_manifest(), unconfirmed="ignore")


def test_cli_label_unconfirmed_drop_counts_and_quarantines(tmp_path: Path):
    write_manifest(_status_manifest(), tmp_path)
    result = CliRunner().invoke(main, ["label", str(tmp_path), "--unconfirmed", "drop", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "report_status: confirmed 2, unconfirmed 3, unknown 1 (--unconfirmed drop)" in result.output
    assert "2 unconfirmed records quarantined" in result.output
    q = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert sorted(q.loc[q.stage == "label", "record_id"]) == ["a", "f"]


def test_workers_give_the_same_labels():
    from ecgkit.labels.core import explain_many
    from ecgkit.labels import load_vocabulary

    texts = [f"Sinus rhythm. Possible LVH. PR {i} ms" if i % 3 else f"vorhofflimmern {i}   kein rsb"
             for i in range(5000)]
    vocab = load_vocabulary()
    one = explain_many(texts, vocab, -1)
    two = explain_many(texts, vocab, -1, workers=2)
    assert np.array_equal(one[0], two[0]) and one[1] == two[1] and one[2] == two[2]
