"""Using a trained model: export, `ecgkit predict` on raw files, cohorts and shards, TorchScript/ONNX, saliency.

One tiny model is trained once per module on a synthetic cohort (WFDB + GE MUSE files, 100 Hz
shards, 2 residual blocks, a few steps) and exported; every test reuses it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import ecgkit
from ecgkit.cli import main
from ecgkit.contract import InputContract
from ecgkit.data import ShardDataset
from ecgkit.errors import SchemaError
from ecgkit.io import read_native
from ecgkit.predict import OUTPUT_COLUMNS, PredictConfig, predict_sources
from ecgkit.trainer import TrainConfig, export, load_exported, predict_run, train
from ecgkit.trainer.export import FORMAT_VERSION


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ecgkit.ingest import scan
    from ecgkit.labels import label_manifest
    from ecgkit.manifest import write_manifest
    from ecgkit.shards import ShardConfig, write_shards
    from ecgkit.split import split_by_patient
    from ecgkit.synth import synth_cohort

    root = tmp_path_factory.mktemp("predict")
    synth_cohort(14, root / "raw", fmt="both", seed=3)
    manifest = label_manifest(scan([root / "raw"]))
    manifest = split_by_patient(manifest, ratios=(0.5, 0.25, 0.25), seed=0)
    manifest = write_shards(manifest, root / "shards", ShardConfig(fs=100.0, workers=1, records_per_shard=64))
    write_manifest(manifest, root / "cohort")
    cfg = TrainConfig(shards_dir=str(root / "shards"), blocks=2, batch_size=8, epochs=1, batches_per_epoch=3,
                      sampler="joint", warmup_steps=1, device="cpu", amp=False, compile=False, num_workers=0,
                      tensorboard=False, log_interval=1)
    train(cfg, root / "run")
    model = export(root / "run", root / "model.pt")
    return {"root": root, "raw": root / "raw", "shards": root / "shards", "cohort": root / "cohort",
            "run": root / "run", "model": model}


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("record_id").sort_index()


def test_model_file_carries_contract_thresholds_and_provenance(trained: dict[str, Path]) -> None:
    model = ecgkit.load_model(trained["model"])
    c = model.contract
    assert (c.fs, c.seconds, c.n_samples, c.leads, c.units) == (100.0, 10.0, 1000, ecgkit.LEADS, "mV")
    assert (c.short, c.storage_dtype, c.scale_mv, c.filters) == ("pad", "int16", 0.001, ())
    assert "resample_poly" in c.resampling and "100 Hz" in c.describe()
    assert InputContract.from_dict(c.to_dict()) == c
    obj = torch.load(trained["model"], weights_only=False)
    assert obj["format"] == "ecgkit-model" and obj["format_version"] == FORMAT_VERSION
    assert obj["vocabulary"]["name"] == "ecg-p18" and obj["vocabulary"]["version"]
    assert len(obj["training_data"]["index_sha256"]) == 64 and obj["training_data"]["manifest_hash"]
    assert obj["config"]["blocks"] == 2 and obj["model_config"]["n_blocks"] == 2
    # major heads only, one threshold per label and rule, chosen on validation
    assert model.label_names == list(ShardDataset(trained["shards"], "val").label_names)
    assert set(model.thresholds) == {"max_f1", "0.9", "0.95", "0.99"} and model.default_rule == "max_f1"
    assert all(set(t) == set(model.label_names) for t in model.thresholds.values())
    net, names = load_exported(trained["model"])  # the old API still reads the new file
    assert names == model.label_names and net.heads.out_features == len(names)


def test_newer_format_version_is_refused(trained: dict[str, Path], tmp_path: Path) -> None:
    obj = torch.load(trained["model"], weights_only=False)
    obj["format_version"] = FORMAT_VERSION + 1
    torch.save(obj, tmp_path / "future.pt")
    with pytest.raises(SchemaError, match="format version 2.*upgrade ecgkit"):
        ecgkit.load_model(tmp_path / "future.pt")


def test_raw_wfdb_and_muse_equal_predict_run_on_shards(trained: dict[str, Path]) -> None:
    model = ecgkit.load_model(trained["model"])
    res = predict_sources(model, [trained["raw"]], PredictConfig(device="cpu"))
    frame = res.predictions
    assert list(frame.columns) == [*OUTPUT_COLUMNS, *[f"prob_{n}" for n in model.label_names],
                                   *[f"pred_{n}" for n in model.label_names]]
    assert set(frame["source_format"]) == {"wfdb", "muse"} and (frame["status"] == "ok").all()
    assert res.n_records == res.n_predicted + res.n_quarantined
    muse = frame[frame["source_format"] == "muse"]
    assert muse["adaptations"].map(lambda a: "derived III,aVR,aVL,aVF from I,II" in a).all()
    assert frame["adaptations"].map(lambda a: "resampled 500->100 Hz" in a).all()
    got = _by_id(frame)
    for split in ("train", "val", "test"):
        _, scores, names = predict_run(trained["run"], split, device="cpu")
        ids = ShardDataset(trained["shards"], split).record_ids
        raw = got.loc[list(ids), [f"prob_{n}" for n in names]].to_numpy()
        np.testing.assert_allclose(raw, scores, rtol=0, atol=1e-5)
    # decisions are the probabilities at the exported max-F1 thresholds
    thr = model.decision_thresholds("max_f1")
    pred = frame[[f"pred_{n}" for n in model.label_names]].to_numpy(dtype=float)
    np.testing.assert_array_equal(pred, (frame[[f"prob_{n}" for n in model.label_names]].to_numpy() >= thr))


def test_cohort_and_shard_folders_predict_like_raw_files(trained: dict[str, Path]) -> None:
    model = ecgkit.load_model(trained["model"])
    raw = _by_id(predict_sources(model, trained["raw"], PredictConfig(device="cpu")).predictions)
    cohort = _by_id(predict_sources(model, trained["cohort"], PredictConfig(device="cpu")).predictions)
    shards = _by_id(predict_sources(model, trained["shards"], PredictConfig(device="cpu",
                                                                             batch_size=5)).predictions)
    cols = [f"prob_{n}" for n in model.label_names]
    assert list(cohort.index) == list(raw.index)
    np.testing.assert_allclose(cohort[cols].to_numpy(), raw[cols].to_numpy(), rtol=0, atol=1e-6)
    ok = raw.loc[shards.index]
    np.testing.assert_allclose(shards[cols].to_numpy(), ok[cols].to_numpy(), rtol=0, atol=1e-5)
    assert (shards["source_format"] == "shard").all() and shards["patient_id"].str.len().min() > 8
    assert cohort["patient_id"].tolist() == raw["patient_id"].tolist()


def _write_wfdb_at(rec: ecgkit.Record, fs_out: int, folder: Path) -> Path:
    import wfdb
    from scipy.signal import resample_poly

    sig = resample_poly(rec.signal.astype(np.float64), fs_out, int(rec.fs), axis=1).T
    name = Path(rec.record_id).name
    wfdb.wrsamp(name, fs=fs_out, units=["mV"] * 12, sig_name=list(ecgkit.LEADS), p_signal=sig, fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(folder))
    return folder / f"{name}.hea"


def test_another_sampling_rate_is_adapted_and_recorded(trained: dict[str, Path], tmp_path: Path) -> None:
    model = ecgkit.load_model(trained["model"])
    heads = sorted(trained["raw"].rglob("*.hea"))[:4]
    for h in heads:
        _write_wfdb_at(read_native(h), 250, tmp_path)
    at_250 = _by_id(predict_sources(model, tmp_path, PredictConfig(device="cpu")).predictions)
    at_500 = _by_id(predict_sources(model, heads, PredictConfig(device="cpu")).predictions)
    assert (at_250["status"] == "ok").all() and len(at_250) == 4
    assert at_250["adaptations"].map(lambda a: a == ["resampled 250->100 Hz"]).all()
    cols = [f"prob_{n}" for n in model.label_names]
    # the same recordings: 500 -> 250 -> 100 Hz keeps the band the 100 Hz input has
    np.testing.assert_allclose(at_250[cols].to_numpy(), at_500.loc[at_250.index, cols].to_numpy(), atol=2e-3)


def test_bad_files_are_quarantined_with_reasons_and_the_rest_predicted(trained: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    model = ecgkit.load_model(trained["model"])
    good = sorted(trained["raw"].rglob("*.hea"))[:3]
    for h in good:
        for f in h.parent.glob(h.stem + ".*"):
            shutil.copy(f, tmp_path / f.name)
    muse = sorted(trained["raw"].rglob("*.xml"))[0]
    (tmp_path / "cut.xml").write_bytes(muse.read_bytes()[:3000])  # MUSE XML cut mid-tag
    (tmp_path / "empty.xml").write_bytes(b"")
    trunc = good[0]
    for f in trunc.parent.glob(trunc.stem + ".*"):
        shutil.copy(f, tmp_path / f"trunc{f.suffix}")
    (tmp_path / "trunc.hea").write_text((tmp_path / "trunc.hea").read_text().replace(trunc.stem, "trunc"))
    dat = (tmp_path / "trunc.dat").read_bytes()
    (tmp_path / "trunc.dat").write_bytes(dat[: len(dat) // 3])
    (tmp_path / "notes.txt").write_text("not an ECG")
    res = predict_sources(model, tmp_path, PredictConfig(device="cpu"))
    frame = _by_id(res.predictions)
    assert res.n_records == 6 and res.n_predicted == 3 and res.n_quarantined == 3
    q = frame[frame["status"] == "quarantined"]
    assert sorted(q.index) == ["cut", "empty", "trunc"]
    for rid, reason in q["reason"].items():
        assert f"record {rid}" in reason and str(tmp_path) in reason
    assert q[[f"prob_{n}" for n in model.label_names]].isna().all().all()
    assert q[[f"pred_{n}" for n in model.label_names]].isna().all().all()
    assert any(s["path"].endswith("notes.txt") for s in res.skipped)
    ref = _by_id(predict_sources(model, good, PredictConfig(device="cpu")).predictions)
    cols = [f"prob_{n}" for n in model.label_names]
    np.testing.assert_allclose(frame.loc[ref.index, cols].to_numpy(), ref[cols].to_numpy(), atol=1e-6)


def test_python_api_on_records_and_arrays(trained: dict[str, Path]) -> None:
    model = ecgkit.load_model(trained["model"])
    head = sorted(trained["raw"].rglob("*.hea"))[0]
    rec = read_native(head)
    from_path = model.predict([head])
    from_record = model.predict(rec)
    from_array = model.predict(rec.signal, fs=rec.fs)
    cols = [f"prob_{n}" for n in model.label_names]
    for other in (from_record, from_array):
        np.testing.assert_allclose(other[cols].to_numpy(), from_path[cols].to_numpy(), atol=1e-6)
    assert from_array["record_id"].tolist() == ["array-0"]
    short = model.predict(np.zeros((12, 10), dtype=np.float32))  # flat: quarantined, not scored
    assert short["status"].tolist() == ["quarantined"] and "flat" in short["reason"].iloc[0]
    fixed = model.predict(rec, threshold="p=0.0")
    assert (fixed[[f"pred_{n}" for n in model.label_names]] == 1).all().all()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_serving_exports_equal_the_eager_model_on_real_records(trained: dict[str, Path], tmp_path: Path,
                                                               shared_data: Path, fmt: str) -> None:
    out = export(trained["run"], tmp_path / f"model.{fmt}", format=fmt)  # type: ignore[arg-type]
    eager = ecgkit.load_model(trained["model"])
    served = ecgkit.load_model(out)
    assert served.kind == fmt and served.contract == eager.contract
    assert served.label_names == eager.label_names and served.thresholds == eager.thresholds
    sources = sorted((shared_data / "cinc2021").glob("*.hea"))[:6] + [
        shared_data / "muse" / "MUSE_20200923_093504_79000_example.xml"]
    a = _by_id(predict_sources(eager, sources, PredictConfig(device="cpu", batch_size=3)).predictions)
    b = _by_id(predict_sources(served, sources, PredictConfig(device="cpu", batch_size=4)).predictions)
    assert (a["status"] == "ok").sum() >= 6 and a["status"].tolist() == b["status"].tolist()
    cols = [f"prob_{n}" for n in eager.label_names]
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].to_numpy(), rtol=0, atol=1e-4)
    # the batch axis is dynamic: batches of 1 and 7 give the same numbers
    x = np.random.default_rng(0).normal(0, 0.3, (7, 12, 1000)).astype(np.float32)
    np.testing.assert_allclose(served.predict_proba(x[:1]), served.predict_proba(x)[:1], atol=1e-5)
    np.testing.assert_allclose(served.predict_proba(x), eager.predict_proba(x), atol=1e-4)


def test_cli_export_and_predict(trained: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["export", str(trained["run"]), "--out", str(tmp_path / "m.pt")])
    assert res.exit_code == 0, res.output
    assert "export:" in res.output and "100 Hz" in res.output
    out = tmp_path / "pred.parquet"
    res = runner.invoke(main, ["predict", str(tmp_path / "m.pt"), str(trained["raw"]), "--out", str(out),
                               "--device", "cpu", "--threshold", "0.95"])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert f"predict: {len(frame)} records, {len(frame)} predicted" in res.output
    assert "decisions at 0.95" in res.output
    res = runner.invoke(main, ["predict", str(tmp_path / "m.pt"), str(trained["raw"]), "--out", str(out),
                               "--threshold", "youden"])
    assert res.exit_code != 0 and "threshold rule 'youden' is not in" in res.output
    from ecgkit.ingest import pseudonymize

    plain = pd.read_parquet(out).set_index("record_id")["patient_id"]
    res = runner.invoke(main, ["predict", str(tmp_path / "m.pt"), str(trained["raw"]), "--out", str(out),
                               "--device", "cpu", "--pseudonymize"], env={"ECGKIT_PSEUDONYM_KEY": "k3y"})
    assert res.exit_code == 0, res.output
    hashed = pd.read_parquet(out).set_index("record_id")["patient_id"]
    assert plain.notna().all() and hashed.tolist() == [pseudonymize(p, "k3y") for p in plain]


def test_saliency_is_integrated_gradients_that_add_up(trained: dict[str, Path]) -> None:
    model = ecgkit.load_model(trained["model"])
    head = sorted(trained["raw"].rglob("*.hea"))[0]
    attr = model.saliency(head, model.label_names[0], steps=64)
    assert attr.shape == (12, 1000) and attr.dtype == np.float32 and np.abs(attr).max() > 0
    # completeness: the attributions add up to logit(x) - logit(0 mV baseline)
    from ecgkit.preprocess import decode_stored, prepare_record

    stored = np.empty((12, 1000), dtype=np.int16)
    prepare_record(head, stored, fs=100.0, seconds=10.0)
    x = torch.from_numpy(decode_stored(stored, 0.001))[None]
    with torch.no_grad():
        gap = float(model.net(x)[0, 0] - model.net(torch.zeros_like(x))[0, 0])
    assert abs(float(attr.sum()) - gap) <= 0.02 * abs(gap) + 1e-3
    by_index = model.saliency(read_native(head), 0, steps=64)
    np.testing.assert_allclose(by_index, attr, atol=1e-5)


def test_evaluate_saliency_plots_top_positives(trained: dict[str, Path], tmp_path: Path) -> None:
    import json

    from ecgkit.report import evaluate

    rep = evaluate(trained["run"], "test", n_bootstrap=0, device="cpu", out_dir=tmp_path, saliency=1)
    sal = rep["saliency"]
    assert sal["method"] == "integrated gradients" and "0 mV" in sal["baseline"]
    y, _, names = predict_run(trained["run"], "test", device="cpu")
    assert len(sal["plots"]) == int(((y == 1).sum(axis=0) > 0).sum()) > 0  # one per label with positives
    for row in sal["plots"]:
        assert Path(row["file"]).stat().st_size > 10_000 and row["label"] in names
    assert json.loads((tmp_path / "report.json").read_text())["saliency"]["plots"] == sal["plots"]
    assert "integrated gradients" in (tmp_path / "report.md").read_text()


def test_reader_processes_give_the_same_predictions(trained: dict[str, Path]) -> None:
    # records come back through a shared-memory ring; batches straddle chunks of 5 records
    model = ecgkit.load_model(trained["model"])
    files = sorted(trained["raw"].rglob("*.hea"))[:10] + sorted(trained["raw"].rglob("*.xml"))[:6]
    one = predict_sources(model, files, PredictConfig(device="cpu", batch_size=7)).predictions
    two = predict_sources(model, files, PredictConfig(device="cpu", batch_size=7, workers=2,
                                                      chunk_size=5)).predictions
    pd.testing.assert_frame_equal(one, two)


def test_records_the_contract_cannot_take_are_quarantined_with_the_reason(trained: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    import dataclasses

    import wfdb

    model = ecgkit.load_model(trained["model"])
    rec = read_native(sorted(trained["raw"].rglob("*.hea"))[0])
    keep = [i for i, lead in enumerate(ecgkit.LEADS) if lead != "V3"]
    common = dict(fs=int(rec.fs), units=["mV"] * 12, fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                  write_dir=str(tmp_path))
    wfdb.wrsamp("short", sig_name=list(ecgkit.LEADS), p_signal=rec.signal[:, :2500].T.astype(np.float64),
                **common)  # 5 s of a 10 s contract
    common.update(units=["mV"] * 11, fmt=["16"] * 11, adc_gain=[1000.0] * 11, baseline=[0] * 11)
    wfdb.wrsamp("no_v3", sig_name=[ecgkit.LEADS[i] for i in keep], p_signal=rec.signal[keep].T.astype(np.float64),
                **common)
    padded = _by_id(predict_sources(model, tmp_path, PredictConfig(device="cpu")).predictions)
    assert padded.loc["short", "status"] == "ok" and "padded 500->1000 samples" in padded.loc["short", "adaptations"]
    assert padded.loc["no_v3", "status"] == "quarantined"
    assert "missing lead(s) V3" in padded.loc["no_v3", "reason"] and "record no_v3" in padded.loc["no_v3", "reason"]
    model.contract = dataclasses.replace(model.contract, short="reject")  # a contract that rejects short records
    rejected = _by_id(predict_sources(model, tmp_path, PredictConfig(device="cpu")).predictions)
    assert rejected.loc["short", "status"] == "quarantined"
    assert "shorter than the required 10 s" in rejected.loc["short", "reason"]


def test_contract_steps_follow_its_policies() -> None:
    import dataclasses

    c = InputContract(fs=500.0, seconds=10.0, n_samples=5000)
    assert any("zero-pad" in s for s in c.steps)
    r = dataclasses.replace(c, short="reject", storage_dtype="float16", scale_mv=1.0)
    assert any("quarantine records shorter" in s for s in r.steps) and "float16" in r.steps[-1]
    assert InputContract.from_dict(r.to_dict()) == r
    with pytest.raises(SchemaError, match="unknown field"):
        InputContract.from_dict({**c.to_dict(), "bandpass": "0.5-40 Hz"})


def _reshard(trained: dict[str, Path], out: Path, **kw: object) -> Path:
    from ecgkit.manifest import read_manifest
    from ecgkit.shards import ShardConfig, write_shards

    write_shards(read_manifest(trained["cohort"]), out, ShardConfig(fs=100.0, workers=1, **kw))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("kw", [{"records_per_shard": 4}, {"records_per_shard": 5, "compression": "lzf"}],
                            ids=["preads", "lzf-h5py"])
def test_shard_folder_reads_equal_h5py_across_files_and_the_last_partial_batch(
        trained: dict[str, Path], tmp_path: Path, kw: dict[str, object]) -> None:
    import h5py

    from ecgkit._predict_shards import ShardFolder

    shards = _reshard(trained, tmp_path / "s", **kw)
    model = ecgkit.load_model(trained["model"])
    with ShardFolder(shards, model.contract) as folder:
        assert (folder._offsets[0] is None) == ("compression" in kw)  # which read path is tested
        want = []
        for src in folder.sources:
            name, row = src.split("#")
            with h5py.File(shards / name, "r") as f:
                want.append(f["signal"][int(row)])
        got = [b.numpy().copy() for b, _, _ in folder.batches(7, 3, torch.device("cpu"))]
        assert len(folder) % 7 != 0 and len(got[-1]) == len(folder) % 7  # a last partial batch
        np.testing.assert_array_equal(np.concatenate(got), np.stack(want))
        # reads that start inside one file and end in another, at any offset
        out = np.empty((6, *want[0].shape), dtype=want[0].dtype)
        folder.read(3, out)
        np.testing.assert_array_equal(out, np.stack(want[3:9]))
    # predictions from many small shards equal those from the fixture's shard folder
    a = _by_id(predict_sources(model, shards, PredictConfig(device="cpu", batch_size=6)).predictions)
    b = _by_id(predict_sources(model, trained["shards"], PredictConfig(device="cpu")).predictions)
    cols = [f"prob_{n}" for n in model.label_names]
    np.testing.assert_allclose(a.loc[b.index, cols].to_numpy(), b[cols].to_numpy(), rtol=0, atol=1e-6)


def test_shards_stored_otherwise_are_converted_to_the_contract(trained: dict[str, Path], tmp_path: Path) -> None:
    shards = _reshard(trained, tmp_path / "f16", dtype="float16", scale_mv=1.0)
    model = ecgkit.load_model(trained["model"])
    got = _by_id(predict_sources(model, shards, PredictConfig(device="cpu")).predictions)
    ref = _by_id(predict_sources(model, trained["shards"], PredictConfig(device="cpu")).predictions)
    assert got["adaptations"].map(lambda a: any("stored as float16" in x for x in a)).all()
    cols = [f"prob_{n}" for n in model.label_names]
    # float16 keeps ~3 significant digits: close to, not equal to, the int16 microvolt shards
    np.testing.assert_allclose(got.loc[ref.index, cols].to_numpy(), ref[cols].to_numpy(), rtol=0, atol=2e-3)


def test_overlapping_sources_predict_each_file_once(trained: dict[str, Path], caplog: pytest.LogCaptureFixture
                                                    ) -> None:
    model = ecgkit.load_model(trained["model"])
    cfg = PredictConfig(device="cpu")
    alone = predict_sources(model, trained["raw"], cfg)
    one_file = sorted(trained["raw"].rglob("*.hea"))[0]
    # the folder, a file inside it, the folder again (through another spelling), its cohort
    again = trained["raw"] / ".." / trained["raw"].name
    res = predict_sources(model, [trained["raw"], one_file, again, trained["cohort"]], cfg)
    assert res.n_records == alone.n_records and not res.predictions["source_path"].duplicated().any()
    assert res.n_repeats_dropped == 1 + alone.n_records + alone.n_records  # file + folder again + cohort
    assert "repeats of a file already read dropped" in res.summary()
    pd.testing.assert_frame_equal(res.predictions.reset_index(drop=True), alone.predictions.reset_index(drop=True))
    # one shard folder twice: read once
    sh = predict_sources(model, [trained["shards"], trained["shards"]], cfg)
    assert sh.n_records == sh.n_repeats_dropped and sh.n_shared_ids == 0
    # shards beside the raw files they were made from: different files, the same ids; both kept
    with caplog.at_level("WARNING", logger="ecgkit.predict"):
        both = predict_sources(model, [trained["raw"], trained["shards"]], cfg)
    frame = both.predictions
    assert both.n_records == alone.n_records + sh.n_records and both.n_repeats_dropped == 0
    assert both.n_shared_ids == 2 * sh.n_records and "share a record_id" in caplog.text
    dup = frame[frame["record_id"].duplicated(keep=False)]
    assert dup.groupby("record_id")["source_format"].apply(lambda s: sorted(set(s)) in (["shard", "wfdb"], ["muse", "shard"])).all()
    assert not dup["source_path"].duplicated().any()
