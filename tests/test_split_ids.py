"""Patient-id normalisation before grouping (issue 11): spellings of one id never straddle splits."""
from __future__ import annotations

import logging

import pandas as pd
import pytest

from ecgkit.manifest import conform
from ecgkit.split import audit, id_collisions, normalize_patient_id, patient_keys, split_by_patient

SPELLINGS = ["00123", "123", "\uff11\uff12\uff13", " 1-23 ", "1 2 3"]  # one patient, five spellings


def _manifest() -> pd.DataFrame:
    ids = SPELLINGS + ["AB-7", "ab7"] + [f"P{i}" for i in range(40)] + [None, None]
    return conform(pd.DataFrame({
        "record_id": [f"r{i}" for i in range(len(ids))], "patient_id": ids,
        "source_path": [f"/x/r{i}.hea" for i in range(len(ids))], "status": "ok"}))


def test_normalize_patient_id() -> None:
    assert {normalize_patient_id(s) for s in SPELLINGS} == {"123"}
    assert normalize_patient_id("AB-7") == normalize_patient_id("ab7") == "ab7"
    assert normalize_patient_id("0000") == "0"
    assert normalize_patient_id("A0012") == "a0012"  # leading zeros are dropped from all-digit ids only


@pytest.mark.parametrize("method", ["hash", "stratified"])
def test_spellings_of_one_id_land_in_one_split_and_are_reported(method: str, caplog: pytest.LogCaptureFixture
                                                                 ) -> None:
    df = _manifest()
    with caplog.at_level(logging.WARNING, logger="ecgkit.split"):
        out = split_by_patient(df, ratios=(1, 1, 1), seed=3, method=method)
    assert out.loc[out["patient_id"].isin(SPELLINGS), "split"].nunique() == 1
    assert out.loc[out["patient_id"].isin(["AB-7", "ab7"]), "split"].nunique() == 1
    assert out["patient_id"].tolist() == df["patient_id"].tolist()  # the raw ids stay for display
    rep = audit(out, ratios=None)
    assert dict(rep.id_collisions) == {"123": sorted(SPELLINGS), "ab7": ["AB-7", "ab7"]}
    assert rep.n_without_patient_id == 2
    assert "patient ids grouped after normalisation: 2" in rep.summary()
    assert "2 of 49 records have no patient id" in caplog.text
    assert "spelled several ways" in caplog.text
    keys = patient_keys(out)
    assert len({keys[i] for i in range(5)}) == 1  # one pseudonymous key in the shards too


def test_id_collisions_is_empty_for_distinct_ids() -> None:
    assert id_collisions(conform(pd.DataFrame({"record_id": ["a", "b"], "patient_id": ["1", "2"],
                                               "source_path": ["a", "b"], "status": "ok"}))) == {}
