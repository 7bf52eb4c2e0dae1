"""Patient-id normalisation before grouping (issue 11): spellings of one id never straddle splits."""
from __future__ import annotations

import logging
from pathlib import Path

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


def test_ids_and_hash_split_are_stable_when_another_source_is_scanned_beside(shared_data: Path,
                                                                            tmp_path: Path) -> None:
    from ecgkit.ingest import scan

    other = tmp_path / "other"
    other.mkdir()
    for name in ("E07500", "E07501"):  # same relative names as the archive: their ids collide
        for ext in (".hea", ".mat"):
            (other / f"{name}{ext}").write_bytes((shared_data / "cinc2021" / f"{name}{ext}").read_bytes())
    alone = scan([shared_data / "cinc2021"])
    both = scan([shared_data / "cinc2021", other])
    assert alone["patient_id"].isna().all()  # the Challenge headers carry no patient id: the fallback is used
    assert both["record_id"].tolist()[:len(alone)] == alone["record_id"].tolist()
    assert both["record_id"].tolist()[len(alone):] == ["other/E07500", "other/E07501"]
    s1 = split_by_patient(alone, method="hash").set_index("record_id")["split"]
    s2 = split_by_patient(both, method="hash").set_index("record_id")["split"]
    assert s2.loc[s1.index].tolist() == s1.tolist()
