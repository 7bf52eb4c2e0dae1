"""The trainer on CPU: loss goes down, resume is exact, export drops auxiliary heads, configs are strict.

The in-memory fakes (``tests/_fakes.py``) follow the ShardDataset / TaskAwareSampler / cotask
protocols so the loop is tested on its own.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import ecgkit.trainer as T
from _fakes import FakeShardDataset
from ecgkit.cotask import aux_labels, load_aux_tasks
from ecgkit.config import load_config
from ecgkit.errors import ConfigError, DataError


@pytest.fixture()
def fakes() -> dict[str, FakeShardDataset]:
    """In-memory datasets; the real TaskAwareSampler and CO-TASK generator run on their labels."""
    return {"train": FakeShardDataset(384, seed=0), "val": FakeShardDataset(192, seed=1)}


def _cfg(**kw: object) -> T.TrainConfig:
    base = dict(blocks=2, batch_size=32, epochs=2, batches_per_epoch=6, log_interval=1, warmup_steps=3, lr=3e-3,
                tensorboard=False, device="cpu")
    base.update(kw)
    return T.TrainConfig(**base)  # type: ignore[arg-type]


def test_task_aware_training_with_aux_tasks_learns(fakes: dict, tmp_path: Path) -> None:
    cfg = _cfg(epochs=3, batches_per_epoch=16, log_interval=8, aux_tasks=2, tensorboard=True)
    res = T.train(cfg, tmp_path / "run", datasets=fakes)
    losses = [h["train_loss"] for h in res.history]
    assert res.step == 48 and res.epoch == 3
    assert losses[-1] < 0.8 * losses[0]
    assert res.best_val_macro_auroc > 0.85  # the fake's classes are separable sinusoids
    ckpt = T.load_checkpoint(tmp_path / "run" / "best.pt")
    # the CO-TASK definitions are saved with the run in the cotask file format, and reproduce the
    # auxiliary labels the heads were trained on
    defs = load_aux_tasks(tmp_path / "run" / "aux_tasks.json")
    assert defs == ckpt["aux_tasks"] and len(defs) == 2
    assert ckpt["head_names"] == ["T0", "T1", "T2", *(d["name"] for d in defs)] and ckpt["n_major"] == 3
    assert all(set(d["tasks"]) <= {"T0", "T1", "T2"} for d in defs)
    aux = aux_labels(defs, fakes["train"].labels)
    assert aux.shape == (384, 2) and ((aux == -1).mean(axis=0) > 0.4).all()  # 1/2 subset plus unknowns
    assert {"model", "optimizer", "scheduler", "sampler", "epoch", "step", "config", "label_names",
            "aux_tasks", "rng", "batch_in_epoch"} <= set(ckpt)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # epochs count from 1, as in the logs and plots
    assert float(rows[-1]["val_macro_auroc"]) == pytest.approx(res.history[-1]["val_macro_auroc"])
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run" / "tb").iterdir())
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["aux_tasks"] == 2 and saved["blocks"] == 2 and "ecgkit_version" in saved


@pytest.mark.parametrize("sampler, weighting", [("task_aware", "dwa"), ("joint", "uncertainty")])
def test_resume_continues_exactly(fakes: dict, tmp_path: Path, sampler: str, weighting: str) -> None:
    kw = dict(sampler=sampler, weighting=weighting, aux_tasks=1 if sampler == "task_aware" else 0, dropout=0.3)
    straight = T.train(_cfg(**kw), tmp_path / "a", datasets=fakes)
    first = T.train(_cfg(max_steps=4, **kw), tmp_path / "b", datasets=fakes)
    assert first.step == 4
    second = T.train(_cfg(**kw), tmp_path / "b", datasets=fakes, resume=True)
    assert second.step == straight.step == 12
    # the step after the resume point, and every one after it, has the identical loss
    assert dict(second.interval_losses) == {s: l for s, l in straight.interval_losses if s > 4}
    a = T.load_checkpoint(tmp_path / "a" / "last.pt")
    b = T.load_checkpoint(tmp_path / "b" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"][-1]["val_macro_auroc"] == b["history"][-1]["val_macro_auroc"]
    assert torch.equal(a["weighting"].get("log_var", torch.zeros(1)), b["weighting"].get("log_var", torch.zeros(1)))


def test_export_keeps_only_major_heads(fakes: dict, tmp_path: Path) -> None:
    T.train(_cfg(aux_tasks=3, epochs=1), tmp_path / "run", datasets=fakes)
    from ecgkit.contract import InputContract

    contract = InputContract(fs=100.0, seconds=2.56, n_samples=256)  # the fakes' records
    path = T.export(tmp_path / "run", tmp_path / "model.pt", contract=contract)
    model, names = T.load_exported(path)
    assert names == ["T0", "T1", "T2"]
    full = T.checkpoint._model_from_ckpt(T.load_checkpoint(tmp_path / "run" / "best.pt")).eval()
    x = torch.from_numpy(fakes["val"].get_batch(np.arange(8))[0])
    with torch.no_grad():
        out = model(x)
        assert out.shape == (8, 3)
        torch.testing.assert_close(out, full(x)[:, :3], rtol=0, atol=1e-5)
        assert full(x).shape == (8, 6)


def test_predict_run_matches_predict(fakes: dict, tmp_path: Path) -> None:
    T.train(_cfg(epochs=1), tmp_path / "run", datasets=fakes)
    y, scores, names = T.predict_run(tmp_path / "run", "val", dataset=fakes["val"], device="cpu")
    assert y.dtype == np.int8 and np.array_equal(y, fakes["val"].labels)
    assert scores.shape == (192, 3) and scores.dtype == np.float32
    assert np.all((scores > 0) & (scores < 1)) and names == ["T0", "T1", "T2"]


def test_predict_run_picks_the_runs_tasks_from_a_wider_dataset(fakes: dict, tmp_path: Path) -> None:
    class Reordered:  # the val data with its task columns in another order, as a wider shard folder has
        def __init__(self, ds: FakeShardDataset) -> None:
            self.ds, self.label_names = ds, ("T2", "T0", "T1")
            self.labels = ds.labels[:, [2, 0, 1]]

        def __len__(self) -> int:
            return len(self.ds)

        def get_batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x, _ = self.ds.get_batch(idx)
            return x, self.labels[np.asarray(idx)]

    T.train(_cfg(epochs=1, tasks=("T1",)), tmp_path / "one", datasets={
        "train": _Subset(fakes["train"], [1]), "val": _Subset(fakes["val"], [1])})
    y, scores, names = T.predict_run(tmp_path / "one", "val", dataset=Reordered(fakes["val"]), device="cpu")
    assert names == ["T1"] and np.array_equal(y[:, 0], fakes["val"].labels[:, 1]) and scores.shape == (192, 1)
    with pytest.raises(ConfigError, match="T1"):
        T.predict_run(tmp_path / "one", "val", dataset=_Subset(fakes["val"], [0]), device="cpu")


class _Subset:
    """A FakeShardDataset restricted to some task columns (as ShardDataset(tasks=...) is)."""

    def __init__(self, ds: FakeShardDataset, cols: list[int]) -> None:
        self.ds, self.cols = ds, cols
        self.label_names = tuple(ds.label_names[c] for c in cols)
        self.labels = ds.labels[:, cols]
        self.fs = ds.fs

    def __len__(self) -> int:
        return len(self.ds)

    def get_batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, _ = self.ds.get_batch(idx)
        return x, self.labels[np.asarray(idx)]


def test_early_stopping_without_improvement_keeps_the_best_checkpoint(fakes: dict, tmp_path: Path) -> None:
    res = T.train(_cfg(epochs=10, lr=0.0, patience=2), tmp_path / "run", datasets=fakes)
    assert res.stopped_early and res.epoch == 3  # best at epoch 0, no gain in epochs 1 and 2
    best = T.load_checkpoint(tmp_path / "run" / "best.pt")
    last = T.load_checkpoint(tmp_path / "run" / "last.pt")
    assert best["epoch"] == 1 and last["epoch"] == 3  # epochs completed when each was written
    assert best["best"] == res.history[0]["val_macro_auroc"] == res.best_val_macro_auroc


def test_joint_sampler_over_an_oversampled_pool(fakes: dict, tmp_path: Path) -> None:
    from ecgkit.sampler import oversample_indices

    labels = fakes["train"].labels
    pool = oversample_indices(labels, 200, seed=0)
    s = T.JointBatchSampler(len(labels), 16, seed=0, pool=pool)
    assert len(s) == len(pool) // 16
    drawn = np.concatenate([idx for _, idx in s])
    # one pass over the pool: every pool entry (duplicates included) at most once
    want = np.bincount(pool, minlength=len(labels))
    got = np.bincount(drawn, minlength=len(labels))
    assert (got <= want).all() and got.sum() == len(s) * 16
    res = T.train(_cfg(sampler="joint", oversample="duplicate", oversample_k=200, epochs=1), tmp_path / "run",
                  datasets=fakes)
    assert res.step == 6
    with pytest.raises(ValueError, match="needs sampler='joint'"):
        _cfg(sampler="task_aware", oversample="duplicate", oversample_k=200)
    with pytest.raises(ValueError, match="oversample_k=200 is set but oversample='none'"):
        _cfg(sampler="joint", oversample_k=200)


def test_config_errors(fakes: dict, tmp_path: Path) -> None:
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text("blocks: 16\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(T.TrainConfig, cfg_file)
    cfg_file.write_text("blocks: 16\nweighting: dwa\n")
    cfg = load_config(T.TrainConfig, cfg_file, {"epochs": "3", "weighting": None})
    assert (cfg.blocks, cfg.epochs, cfg.weighting) == (16, 3, "dwa")
    with pytest.raises(DataError, match="last.pt"):
        T.train(_cfg(), tmp_path / "nothing", datasets=fakes, resume=True)
    assert not (tmp_path / "nothing").exists()  # refused before anything was written
    with pytest.raises(ConfigError, match="shards_dir"):
        T.train(_cfg(), tmp_path / "x")


# --------------------------------------------------------------------------- real stages, real records
# PTB-XL records 1-500 -> scan -> labels straight from the cardiologist-validated SCP codes (the text
# label stage is tested elsewhere) -> patient split -> HDF5 shards -> ShardDataset + TaskAwareSampler
# + CO-TASK aux tasks -> tiny model on CPU.
_SCP_TASKS = {"LVH": "LVH", "IRBBB": "IRBBB", "AFIB": "AFIB", "1AVB": "1AVB", "VPC": "PVC"}


@pytest.fixture(scope="module")
def ptbxl_shards(ptbxl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import ast

    import pandas as pd

    from ecgkit.ingest import scan
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.split import split_by_patient

    manifest = scan([ptbxl_dir])
    meta = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    ecg_id = manifest["record_id"].str.extract(r"(\d{5})_hr$")[0].astype(int)
    codes = meta.loc[ecg_id, "scp_codes"].map(ast.literal_eval).to_numpy()
    for task, scp in _SCP_TASKS.items():
        manifest[task] = np.array([int(scp in c) for c in codes], dtype=np.int8)
    manifest = split_by_patient(manifest, labels=list(_SCP_TASKS), seed=0)
    out = tmp_path_factory.mktemp("ptbxl-shards")
    write_shards(manifest, out, ShardConfig(labels=tuple(_SCP_TASKS), workers=1, records_per_shard=128))
    return out


@pytest.mark.slow
def test_tiny_model_on_real_ptbxl_shards_learns_and_resumes(ptbxl_shards: Path, tmp_path: Path) -> None:
    from ecgkit.data import ShardDataset

    cfg = T.TrainConfig(shards_dir=str(ptbxl_shards), blocks=2, batch_size=16, epochs=2, batches_per_epoch=8,
                        aux_tasks=2, weighting="dwa", log_interval=1, warmup_steps=2, lr=3e-3, device="cpu",
                        tensorboard=False)
    straight = T.train(cfg, tmp_path / "a")
    assert straight.step == 16 and len(straight.history) == 2
    assert straight.history[1]["train_loss"] < straight.history[0]["train_loss"]
    ckpt = T.load_checkpoint(tmp_path / "a" / "last.pt")
    assert ckpt["label_names"] == list(_SCP_TASKS) and ckpt["fs"] == 500.0 and len(ckpt["aux_tasks"]) == 2
    T.train(T.TrainConfig(**{**cfg.__dict__, "max_steps": 5}), tmp_path / "b")
    resumed = T.train(cfg, tmp_path / "b", resume=True)
    assert dict(resumed.interval_losses) == {s: v for s, v in straight.interval_losses if s > 5}
    b = T.load_checkpoint(tmp_path / "b" / "last.pt")
    for key in ckpt["model"]:
        assert torch.equal(ckpt["model"][key], b["model"][key]), key
    y, s, names = T.predict_run(tmp_path / "a", "test", device="cpu")
    assert names == list(_SCP_TASKS) and y.shape == s.shape == (len(ShardDataset(ptbxl_shards, "test")), 5)


_DDP_SCRIPT = '''
import json, os, sys
import numpy as np
import torch
sys.path[:0] = sys.argv[3:5]
import ecgkit.trainer as T
from _fakes import FakeShardDataset


def run(rank, world, port, out):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    data = {"train": FakeShardDataset(384, seed=0), "val": FakeShardDataset(192, seed=1)}
    kw = dict(blocks=2, batch_size=16, epochs=2, batches_per_epoch=6, log_interval=1, warmup_steps=3, lr=3e-3,
              tensorboard=False, device="cpu", aux_tasks=1, weighting="dwa", dropout=0.3, eval_batch_size=64)
    straight = T.train(T.TrainConfig(**kw), f"{out}/a", datasets=data)
    T.train(T.TrainConfig(max_steps=4, **kw), f"{out}/b", datasets=data)
    resumed = T.train(T.TrainConfig(**kw), f"{out}/b", datasets=data, resume=True)
    with open(f"{out}/rank{rank}.json", "w") as fh:
        json.dump({"straight": straight.interval_losses, "resumed": resumed.interval_losses,
                   "history": [straight.history, resumed.history]}, fh)
    # both ranks reach teardown together: gloo aborts a rank whose peer closes the pair mid-teardown
    # ("terminate called without an active exception", seen once in CI-style runs)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    torch.multiprocessing.spawn(run, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2)
'''


@pytest.mark.slow
def test_two_rank_run_resumes_exactly(tmp_path: Path) -> None:
    """torchrun-style DDP on CPU (gloo): each rank resumes its own stream, dropout and partial losses."""
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    repo = Path(__file__).resolve().parent.parent
    args = [sys.executable, str(script), str(port), str(tmp_path), str(repo), str(repo / "tests")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        straight = {s: v for s, v in r["straight"] if s > 4}
        assert dict((s, v) for s, v in r["resumed"]) == straight and len(straight) == 8
    assert ranks[0]["straight"] != ranks[1]["straight"]  # the ranks trained on different batches
    # epoch losses are averaged over the ranks: every rank logs the same history
    def timeless(history: list) -> list:
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in history]

    assert timeless(ranks[0]["history"][0]) == timeless(ranks[1]["history"][0])
    assert timeless(ranks[0]["history"][1]) == timeless(ranks[0]["history"][0])  # resumed run: same epochs
    a = T.load_checkpoint(tmp_path / "a" / "last.pt")
    b = T.load_checkpoint(tmp_path / "b" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert len(b["rng"]["per_rank"]) == 2


def test_a_kill_between_best_and_last_never_leaves_a_stale_best(fakes: dict, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """best.pt is written before last.pt; a kill in between is repaired by resume."""
    import ecgkit.trainer.loop as loop
    kw = dict(epochs=2, checkpoint_interval=4)  # last.pt exists mid-epoch 0, at step 4
    straight = T.train(_cfg(**kw), tmp_path / "a", datasets=fakes)
    real_save, calls = loop._atomic_save, []

    def killed_after_best(obj: dict, path: Path) -> None:
        calls.append(path.name)
        if obj["epoch"] == 1 and path.name == "last.pt" and calls[-2:-1] == ["best.pt"]:
            raise KeyboardInterrupt("killed between best.pt and last.pt")
        real_save(obj, path)

    monkeypatch.setattr(loop, "_atomic_save", killed_after_best)
    with pytest.raises(KeyboardInterrupt):
        T.train(_cfg(**kw), tmp_path / "b", datasets=fakes)
    monkeypatch.setattr(loop, "_atomic_save", real_save)
    # epoch 0 always improves: best.pt is at step 6, last.pt still at step 4
    assert T.load_checkpoint(tmp_path / "b" / "best.pt")["step"] == 6
    assert T.load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 4
    resumed = T.train(_cfg(**kw), tmp_path / "b", datasets=fakes, resume=True)
    assert resumed.step == straight.step == 12
    a, b = (T.load_checkpoint(tmp_path / r / "best.pt") for r in "ab")
    assert a["step"] == b["step"] and a["best"] == b["best"]
    assert T.load_checkpoint(tmp_path / "b" / "last.pt")["best_step"] == b["step"]


def test_resume_repairs_a_best_checkpoint_left_behind(fakes: dict, tmp_path: Path) -> None:
    """A run whose last.pt holds the best model but whose best.pt is older (a kill between writes of
    an earlier version, or a lost file): resume restores best.pt from last.pt."""
    T.train(_cfg(epochs=1), tmp_path / "r", datasets=fakes)
    last = T.load_checkpoint(tmp_path / "r" / "last.pt")
    assert last["best_step"] == last["step"] == 6
    (tmp_path / "r" / "best.pt").unlink()
    T.train(_cfg(epochs=1), tmp_path / "r", datasets=fakes, resume=True)
    assert T.load_checkpoint(tmp_path / "r" / "best.pt")["step"] == 6


def test_training_without_tensorboard_installed(fakes: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """tensorboard is optional: one notice, then the CSV log and checkpoints as usual."""
    import sys
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with caplog.at_level("WARNING", logger="ecgkit.train"):
        res = T.train(_cfg(epochs=1, tensorboard=True), tmp_path / "run", datasets=fakes)
    assert res.step == 6 and (tmp_path / "run" / "metrics.csv").exists()
    assert not (tmp_path / "run" / "tb").exists()
    assert [r.message for r in caplog.records if "tensorboard is not installed" in r.message]
