"""Build a cohort manifest from the unpacked PTB-XL fixture (test helper for split/shard/data tests).

The manifest is built with :func:`ecgkit.manifest.conform` from ``ptbxl_database.csv`` (ecg_id 1-500,
the records in ``records500.tar.xz``): ``record_id`` is the header path without suffix relative to the
PTB-XL root, ``patient_id`` the CSV's patient id. Label columns are a stand-in for the label stage:
an ECG-P18 label is 1 when one of the SCP codes below appears in ``scp_codes`` (any likelihood),
else 0 (several label sets could be built; this one is only meant to give the split something real
and imbalanced to stratify).
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from ecgkit.manifest import conform

#: ECG-P18 name -> PTB-XL SCP codes that imply it.
SCP_TO_P18 = {
    "LVH": ("LVH",), "RVH": ("RVH",), "AFIB": ("AFIB",), "AFL": ("AFLT",), "IVCD": ("IVCD",),
    "RBBB": ("CRBBB",), "LBBB": ("CLBBB",), "IRBBB": ("IRBBB",), "ILBBB": ("ILBBB",), "1AVB": ("1AVB",),
    "2AVB": ("2AVB",), "3AVB": ("3AVB",), "VBIG": ("BIGU",), "VPC": ("PVC",), "APC": ("PAC",),
}


def ptbxl_manifest(root: Path, n: int = 500) -> pd.DataFrame:
    """Manifest of PTB-XL records 1..n under ``root`` with patient ids and stand-in label columns."""
    db = pd.read_csv(root / "ptbxl_database.csv").sort_values("ecg_id").head(n)
    codes = [ast.literal_eval(s) for s in db["scp_codes"]]
    rows = pd.DataFrame({
        "record_id": db["filename_hr"].to_numpy(),
        "patient_id": [str(int(p)) for p in db["patient_id"]],
        "source_path": [str(root / f"{f}.hea") for f in db["filename_hr"]],
        "source_format": "wfdb",
        "fs": 500.0,
        "n_samples": 5000,
        "duration_s": 10.0,
        "status": "ok",
    })
    df = conform(rows)
    for name, scp in SCP_TO_P18.items():
        df[name] = np.array([int(any(c in d for c in scp)) for d in codes], dtype=np.int8)
    return df
