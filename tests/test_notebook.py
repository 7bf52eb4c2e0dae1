"""notebooks/cohort_building.ipynb: executed end to end, so the walk-through cannot rot.

The notebook runs in a fresh ``python3`` kernel in a temporary working folder and writes
``walkthrough/results.json`` plus the files of each stage; this test checks the numbers it reports
and re-checks the files independently (manifest, split, shards).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import ecgkit
from ecgkit.data import ShardDataset
from ecgkit.manifest import read_manifest
from ecgkit.synth import LABELS

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "cohort_building.ipynb"


def _kernel_manager() -> object:
    """A manager for ipykernel's own ``python3`` kernel, which runs this very interpreter.

    ``kernel_dirs=[]`` ignores kernels registered in Jupyter's folders: a ``python3`` registered
    there may point at another Python without ecgkit. ipykernel always provides this spec itself,
    so nothing has to be installed with ``ipykernel install`` first.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
        from jupyter_client.manager import AsyncKernelManager
    except ImportError as exc:
        pytest.fail(f"jupyter_client is missing ({exc}); install the test extra: pip install -e '.[test]'")
    specs = KernelSpecManager(kernel_dirs=[])
    try:
        specs.get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.fail("no 'python3' kernel: ipykernel is not installed; "
                    "install the test extra: pip install -e '.[test]'")
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_executes_and_builds_a_consistent_cohort(tmp_path: Path, shared_data: Path) -> None:
    try:
        from nbclient import NotebookClient
    except ImportError as exc:
        pytest.fail(f"nbclient is missing ({exc}); install the test extra: pip install -e '.[test]'")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel imports the ecgkit under test (this checkout, even without an editable install)
    # and finds the real fixtures wherever this test session found them
    env = dict(os.environ, ECGKIT_SHARED_DATA=str(shared_data),
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    client = NotebookClient(nb, km=_kernel_manager(), timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}})
    # raises CellExecutionError, naming the cell, if any cell fails; cleanup_kc: shut the kernel down
    # at the end (nbclient leaves a kernel it did not start itself running by default)
    client.execute(env=env, cleanup_kc=True)

    work = tmp_path / "walkthrough"
    results = json.loads((work / "results.json").read_text())
    assert Path(results["ecgkit_file"]).resolve() == Path(ecgkit.__file__).resolve()

    # scan: every generated file became one manifest row, none quarantined
    truth = pd.read_parquet(work / "archive" / "truth.parquet")
    assert results["n_generated"] == len(truth) > 2 * 20  # a few dozen patients, WFDB + MUSE each
    assert results["n_scanned"] == results["n_ok"] == len(truth)
    manifest = read_manifest(work / "cohort")
    assert sorted(manifest["record_id"]) == sorted(truth["record_id"])
    assert set(manifest["source_format"]) == {"wfdb", "muse"}
    # filter: the reported sub-cohort is what the stated criteria select
    expected_selected = manifest[(manifest["sex"] == "F") & (manifest["age"] >= 50)
                                 & (manifest["acquired_at"] >= pd.Timestamp("2016-01-01"))]
    assert results["n_selected"] == len(expected_selected)

    # label: the synthetic statements are written to be recoverable exactly
    assert results["labels_match_truth"] is True
    merged = manifest.merge(truth, on="record_id", suffixes=("", "_true"))
    for lab in LABELS:
        assert (merged[lab] == merged[f"{lab}_true"]).all(), lab

    # split: no patient in two splits, every record split, counts as reported
    assert results["leaked_patients"] == []
    assert manifest.groupby("patient_id")["split"].nunique().max() == 1
    assert results["split_counts"] == {k: int(v) for k, v in manifest["split"].value_counts().items()}
    assert set(results["split_counts"]) == {"train", "val", "test"}

    # shard: a batch of (B, 12 leads, 10 s x 500 Hz) float32 signals and (B, 18) labels
    assert results["batch_shape"] == [8, 12, 5000]
    assert results["batch_labels_shape"] == [8, len(LABELS)]
    train = ShardDataset(work / "shards", split="train")
    assert len(train) == results["n_train_shard_records"] == results["split_counts"]["train"]
    x, y = train.get_batch(np.arange(8))
    assert x.shape == (8, 12, 5000) and x.dtype == np.float32 and y.shape == (8, len(LABELS))
    ids = list(train.record_ids[:8])
    by_id = truth.set_index("record_id").loc[ids, list(LABELS)].to_numpy()
    np.testing.assert_array_equal(y, by_id)

    # the real GE MUSE example file was read (12 leads, 10 s at 500 Hz) and labelled
    real = results["real_muse"]
    muse_file = sorted((shared_data / "muse").glob("*.xml"))[0]
    assert real["record_id"] == muse_file.stem
    assert real["shape"] == [12, 5000]
    assert real["n_statements"] > 0

    # both ECG plots (synthetic example, real MUSE) were rendered inline, and the example saved
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(pngs) == 2
    assert (work / "example_ecg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
