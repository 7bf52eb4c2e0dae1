"""Several labelled cohorts in one shard folder (issue 17): mapping file, index masks, masked loss.

Two tiny synthetic cohorts (``ecgkit.synth``, scanned and labelled with ECG-P18 like a real cohort),
each then restricted to its own label set: cohort ``muse`` keeps 6 ECG-P18 names, cohort ``local``
keeps 5 labels under its own names (3 of them the same findings as ``muse``'s, told by the mapping).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ecgkit.cli import main
from ecgkit.data import ShardDataset
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.ingest import ScanConfig, scan
from ecgkit.labels import label_manifest
from ecgkit.losses import EqualWeighting
from ecgkit.manifest import label_names, write_manifest
from ecgkit.models.resnet1d import ResNet1d, ResNet1dConfig
from ecgkit.multicohort import merge_cohorts, read_label_mapping
from ecgkit.shards import read_index
from ecgkit.split import split_by_patient
from ecgkit.synth import synth_cohort
from ecgkit.trainer.step import train_step

MUSE = ("LVH", "AFIB", "RBBB", "1AVB", "VPC", "APC")
LOCAL = {"LVH": "lv_hypertrophy", "AFIB": "af", "RBBB": "RBBB", "IRBBB": "inc_rbbb", "LBBB": "lbbb"}
MAPPING_YAML = "LVH: [lv_hypertrophy]\nAFIB: [af]\n"  # RBBB has the same name in both
UNION = ("LVH", "AFIB", "RBBB", "1AVB", "VPC", "APC", "lbbb", "inc_rbbb")  # first-seen, ECG-P18 column order


def _cohort(root: Path, name: str, seed: int, keep: dict[str, str]) -> Path:
    raw, out = root / f"{name}_raw", root / name
    synth_cohort(12, raw, seed=seed)
    man = label_manifest(scan([raw], ScanConfig(workers=1)))
    drop = [c for c in label_names(man) if c not in keep]
    man = man.drop(columns=drop).rename(columns=keep)
    out.mkdir()
    write_manifest(split_by_patient(man, seed=0), out)
    return out


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("cohorts")
    dirs = {"muse": _cohort(root, "muse", 1, {k: k for k in MUSE}), "local": _cohort(root, "local", 2, LOCAL)}
    (root / "map.yaml").write_text(MAPPING_YAML)
    res = CliRunner().invoke(main, ["shard", "--cohort", f"muse={dirs['muse']}", "--cohort", f"local={dirs['local']}",
                                    "--label-map", str(root / "map.yaml"), "--out", str(root / "shards"),
                                    "--workers", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    return root / "shards", dirs


def test_index_records_cohort_and_defined_mask(sharded: tuple[Path, dict[str, Path]]) -> None:
    shards, dirs = sharded
    index = read_index(shards)
    ds = ShardDataset(shards, "train")
    assert ds.label_names == UNION
    want = {"muse": [n in MUSE for n in UNION],
            "local": [n in ("LVH", "AFIB", "RBBB", "inc_rbbb", "lbbb") for n in UNION]}
    assert set(index["cohort"]) == {"muse", "local"}
    for cohort, mask in zip(index["cohort"], index["defined"]):
        assert list(mask) == want[cohort]
    assert ds.cohort_labels == {"muse": MUSE, "local": ("LVH", "AFIB", "RBBB", "lbbb", "inc_rbbb")}
    # undefined = -1; defined labels are stated (1 or 0, the labeler states every label it knows)
    assert np.all(ds.labels[~ds.defined] == -1) and np.all(ds.labels[ds.defined] >= 0)
    # the mapped labels carry the local cohort's own values
    local = pd.read_parquet(dirs["local"] / "manifest.parquet").set_index("record_id")
    rows = np.flatnonzero(ds.cohorts == "local")
    for j in rows[:5]:
        rid = ds.record_ids[j].removeprefix("local/")
        assert ds.labels[j, UNION.index("LVH")] == local.loc[rid, "lv_hypertrophy"]
        assert ds.labels[j, UNION.index("AFIB")] == local.loc[rid, "af"]
    # records in = in shards + quarantined; patients namespaced per cohort
    n_in = sum(int(((m := pd.read_parquet(d / "manifest.parquet"))["split"].notna()).sum()) for d in dirs.values())
    quarantined = pd.read_parquet(shards / "quarantine.parquet") if (shards / "quarantine.parquet").exists() else []
    assert n_in == len(index) + len(quarantined)
    merged = pd.read_parquet(shards / "manifest.parquet")
    assert merged["patient_id"].dropna().str.match(r"^(muse|local)/").all()


def test_training_loss_ignores_undefined_labels(sharded: tuple[Path, dict[str, Path]]) -> None:
    shards, _ = sharded
    ds = ShardDataset(shards, "train")
    idx = np.arange(len(ds))
    x, y = ds.get_batch(idx)
    seen: dict[str, torch.Tensor] = {}

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = ResNet1d(ResNet1dConfig(n_leads=12, n_tasks=len(UNION), n_blocks=2, base_filters=8))

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            out = self.net(inp)
            out.retain_grad()
            seen["logits"] = out
            return out

    model = Spy()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(model, EqualWeighting(len(UNION)), opt, None, torch.as_tensor(x), torch.as_tensor(y), -1, amp=False)
    grad = seen["logits"].grad.numpy()
    defined = ds.defined[idx]
    assert (~defined).any() and np.all(grad[~defined] == 0.0)
    assert np.all(grad[defined] != 0.0)


def test_task_aware_batches_draw_only_records_whose_cohort_defines_the_task(
        sharded: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    from ecgkit.sampler import TaskAwareSampler
    from ecgkit.trainer import TrainConfig, train

    shards, _ = sharded
    ds = ShardDataset(shards, "train")
    sampler = TaskAwareSampler(ds.labels, 16, seed=0, batches_per_epoch=400)
    tasks_seen = set()
    for task, idx in list(sampler)[:200]:
        tasks_seen.add(int(task))
        assert ds.defined[idx, task].all(), (UNION[task], sorted(set(ds.cohorts[idx])))
    # a label only one cohort defines (VPC: muse) is drawn from that cohort alone; one both define from both
    vpc, lvh = UNION.index("VPC"), UNION.index("LVH")
    batches_ = list(sampler)[:400]
    vpc_rows = np.concatenate([idx for task, idx in batches_ if int(task) == vpc])
    lvh_rows = np.concatenate([idx for task, idx in batches_ if int(task) == lvh])
    assert set(ds.cohorts[vpc_rows]) == {"muse"} and set(ds.cohorts[lvh_rows]) == {"muse", "local"}
    # tasks never drawn are exactly those without a known positive and a known negative
    lacking = {t for t in range(len(UNION)) if not ((ds.labels[:, t] == 1).any() and (ds.labels[:, t] == 0).any())}
    assert tasks_seen == set(range(len(UNION))) - lacking
    # and a task-aware run trains on the union of cohorts end to end
    res = train(TrainConfig(shards_dir=str(shards), sampler="task_aware", blocks=1,
                            base_filters=8, batch_size=8, epochs=1, batches_per_epoch=12, device="cpu",
                            compile=False, num_workers=0, progress=False, tensorboard=False), tmp_path / "run")
    assert res.step == 12 and all(np.isfinite(loss) for _, loss in res.interval_losses)


def test_mapping_files_and_merge_errors(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("name,canonical\naf,AFIB\nlv_hypertrophy,LVH\n")
    assert read_label_mapping(tmp_path / "m.csv") == {"af": "AFIB", "lv_hypertrophy": "LVH"}
    (tmp_path / "m.yaml").write_text("mapping:\n  af: AFIB\n  AFIB: [fa]\n")
    assert read_label_mapping(tmp_path / "m.yaml") == {"af": "AFIB", "fa": "AFIB"}
    (tmp_path / "bad.yaml").write_text("af: AFIB\nAFL: [af]\n")
    with pytest.raises(ConfigError, match="maps to both"):
        read_label_mapping(tmp_path / "bad.yaml")
    a = pd.DataFrame({"record_id": ["r1"], "patient_id": ["p"], "af": np.int8([1]), "AFIB": np.int8([0])})
    with pytest.raises(ConfigError, match="several of its labels"):
        merge_cohorts({"a": a}, {"af": "AFIB"})
    b = pd.DataFrame({"record_id": ["r1"], "patient_id": ["p"], "LVH": np.int8([1])})
    with pytest.raises(SchemaError, match="no label columns"):
        merge_cohorts({"a": b[["record_id", "patient_id"]]})
    merged, labs = merge_cohorts({"a": b, "b": b.assign(record_id="r2", LVH=np.int8(0)).rename(columns={"LVH": "x"})})
    assert labs == {"a": ("LVH",), "b": ("x",)}
    assert merged[["LVH", "x"]].to_numpy().tolist() == [[1, -1], [-1, 0]]
    assert merged["patient_id"].tolist() == ["a/p", "b/p"] and merged["record_id"].tolist() == ["a/r1", "b/r2"]


def test_shard_cli_refuses_bad_cohort_arguments(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["shard", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "either COHORT_DIR or" in r.output
    r = CliRunner().invoke(main, ["shard", "--cohort", "nodir", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2 and "NAME=DIR" in r.output
