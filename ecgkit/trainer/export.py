"""Exporting a trained run: one self-describing model file, and TorchScript / ONNX for serving.

The ecgkit model file (``format="ecgkit"``, a ``torch.save`` dict) holds:

===================  ==================================================================================
key                  meaning
===================  ==================================================================================
``format``           ``"ecgkit-model"``; ``format_version`` (this module writes :data:`FORMAT_VERSION`)
``model``            state dict of the network with the major tasks' heads only (CO-TASK heads dropped)
``model_config``     the :class:`~ecgkit.models.resnet1d.ResNet1dConfig` saved in the checkpoint, as a dict
``label_names``      one name per head, in output order; ``vocabulary``: name and version when known
``thresholds``       rule -> label -> threshold, chosen on the validation split (``threshold_rules``)
``contract``         the :class:`~ecgkit.contract.InputContract` (lead order, fs, seconds, crop/pad,
                     units, storage scaling, every preprocessing step of the shards)
``config``           the training config; ``ecgkit_version``; ``run``: run directory, checkpoint, step
``training_data``    SHA-256 of the shards' ``index.parquet``, the shards' manifest hash and shard config
===================  ==================================================================================

``format="torchscript"`` (``torch.jit.trace``) and ``format="onnx"`` (opset 17, dynamic batch axis)
write the same network wrapped to return probabilities: input ``signal`` (B, 12, L) float32 mV,
output ``probabilities`` (B, T). Both carry the same description (everything above except the
weights) as JSON: the TorchScript file in its extra file ``ecgkit.json``, the ONNX file in the
metadata property ``ecgkit``. :func:`ecgkit.load_model` reads all three.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ecgkit import __version__
from ecgkit.contract import InputContract, contract_from_shards
from ecgkit.errors import ConfigError, SchemaError
from ecgkit.models.resnet1d import ResNet1d
from ecgkit.trainer.checkpoint import _atomic_save, _model_from_ckpt, load_checkpoint
from ecgkit.trainer.config import BEST_CKPT, LAST_CKPT

logger = logging.getLogger(__name__)

__all__ = ["export", "load_exported", "read_model_file", "MODEL_FORMAT", "FORMAT_VERSION", "DEFAULT_RULES"]

MODEL_FORMAT = "ecgkit-model"
#: version 1: contract, thresholds, training-data hashes (version 0: the first export, weights + names)
FORMAT_VERSION = 1
#: threshold rules stored by default: max F1 and sensitivity at 90/95/99 % specificity
DEFAULT_RULES: tuple[str, ...] = ("max_f1", "0.9", "0.95", "0.99")
META_NAME = "ecgkit.json"
Format = Literal["ecgkit", "torchscript", "onnx"]


class ServingModel(nn.Module):
    """The network as served: (B, 12, L) float32 mV -> (B, T) probabilities."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, signal: Tensor) -> Tensor:
        return torch.sigmoid(self.net(signal).float())  # (B, T)


def _run_checkpoint(run: Path, checkpoint: str) -> Path:
    path = run / checkpoint
    if not path.exists() and checkpoint == BEST_CKPT:
        path = run / LAST_CKPT
    return path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _training_data(shards: Path) -> dict[str, Any]:
    import h5py

    from ecgkit.shards import INDEX_FILE

    first = sorted(shards.glob("*-[0-9][0-9][0-9][0-9][0-9].h5"))[0]
    with h5py.File(first, "r") as f:
        mhash, cfg = str(f.attrs.get("manifest_hash", "")), json.loads(f.attrs.get("config", "{}"))
    return {"shards_dir": str(shards), "index_sha256": _sha256_file(shards / INDEX_FILE),
            "manifest_hash": mhash, "shard_config": cfg}


def _thresholds(model: ResNet1d, shards: Path, names: Sequence[str], rules: Sequence[str],
                device: str) -> dict[str, dict[str, float | None]]:
    """rule -> label -> threshold chosen on the validation split (None: never positive there)."""
    from ecgkit.data import ShardDataset
    from ecgkit.metrics import choose_thresholds
    from ecgkit.trainer.predict import predict

    if not rules:
        return {}
    try:
        val = ShardDataset(shards, "val", tasks=list(names))
    except SchemaError as exc:
        logger.warning("no thresholds exported: %s", exc)
        return {}
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    scores = predict(model.to(dev), val, device=dev, amp=False)
    model.cpu()
    out: dict[str, dict[str, float | None]] = {}
    for rule in rules:
        thr = choose_thresholds(val.labels, scores, rule)
        out[str(rule)] = {n: (float(t) if np.isfinite(t) else None) for n, t in zip(names, thr)}
    return out


def _vocabulary(names: Sequence[str], vocabulary: str | None) -> dict[str, Any] | None:
    if vocabulary is None:
        return None
    from ecgkit.labels import load_vocabulary

    vocab = load_vocabulary(vocabulary)
    if not set(names) <= set(vocab.labels):
        return None  # labels from elsewhere (codes, a custom table): no vocabulary claim
    return {"name": vocab.name, "version": vocab.version}


def _description(ckpt: Mapping[str, Any], run: Path, ckpt_path: Path, shards: Path | None, names: list[str],
                 thresholds: dict[str, Any], vocabulary: dict[str, Any] | None,
                 contract: InputContract) -> dict[str, Any]:
    return {
        "format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "label_names": names,
        "vocabulary": vocabulary, "thresholds": thresholds, "default_rule": next(iter(thresholds), None),
        "contract": contract.to_dict(), "fs": contract.fs, "config": ckpt["config"],
        "ecgkit_version": __version__, "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": {"dir": str(run), "checkpoint": ckpt_path.name, "step": ckpt.get("step"),
                "trained_with_ecgkit": ckpt.get("ecgkit_version")},
        "training_data": None if shards is None else _training_data(shards),
    }


def export(run_dir: str | Path, out_path: str | Path, *, checkpoint: str = BEST_CKPT, format: Format = "ecgkit",
           shards_dir: str | Path | None = None, threshold_rules: Sequence[str] = DEFAULT_RULES,
           vocabulary: str | None = "ecg-p18", device: str = "cpu", contract: InputContract | None = None) -> Path:
    """Write a trained run as one self-describing model file (see the module docstring).

    Parameters
    ----------
    run_dir : path
        Written by :func:`ecgkit.train`.
    out_path : path
        The model file to write.
    checkpoint : str
        ``best.pt`` (default; ``last.pt`` when there is no best) or ``last.pt``.
    format : {"ecgkit", "torchscript", "onnx"}
    shards_dir : path, optional
        The training shards (default: the run's ``shards_dir``): the contract and the thresholds
        come from them.
    threshold_rules : sequence of str
        Rules of :func:`ecgkit.metrics.choose_thresholds` to store, chosen on the validation split.
    vocabulary : str or None
        Vocabulary whose name and version are recorded when every label belongs to it.
    contract : InputContract, optional
        For runs trained on in-memory datasets (no shards): the contract to record. The file then
        has no thresholds and no training-data hashes.

    Raises
    ------
    ConfigError
        If the shards cannot be found or the format is unknown.
    """
    if format not in ("ecgkit", "torchscript", "onnx"):
        raise ConfigError(f"format must be 'ecgkit', 'torchscript' or 'onnx', got {format!r}")
    if format == "onnx":  # an optional extra: say so before any work, not after a trace
        try:
            import onnx  # noqa: F401
        except ImportError as exc:
            raise ConfigError("--format onnx needs the onnx package: pip install 'ecgkit[onnx]'") from exc
    run = Path(run_dir)
    path = _run_checkpoint(run, checkpoint)
    ckpt = load_checkpoint(path)
    where = shards_dir or ckpt["config"].get("shards_dir")
    shards = Path(where) if where else None
    if shards is None or not (shards / "index.parquet").exists():
        if contract is None:
            raise ConfigError(f"run {run}: the training shards {where or '(none in its config)'} are not there; "
                              "pass shards_dir (ecgkit export --shards DIR): the input contract and thresholds "
                              "come from them")
        shards = None
    n_major = int(ckpt["n_major"])
    model = _model_from_ckpt(ckpt).keep_heads(range(n_major)).eval()
    names = list(ckpt["label_names"])[:n_major]
    thresholds = {} if shards is None else _thresholds(model, shards, names, threshold_rules, device)
    meta = _description(ckpt, run, path, shards, names, thresholds, _vocabulary(names, vocabulary),
                        contract_from_shards(shards) if shards is not None else contract)  # type: ignore[arg-type]
    meta["model_config"] = dataclasses.asdict(model.config)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "ecgkit":
        _atomic_save({**meta, "model": model.state_dict()}, out)
    else:
        example = torch.zeros(2, len(meta["contract"]["leads"]), int(meta["contract"]["n_samples"]))
        _export_serving(ServingModel(model).eval(), example, meta, out, format)
    logger.info("exported %s (%s, %d heads) to %s", run, format, n_major, out)
    return out


def _export_serving(net: nn.Module, example: Tensor, meta: dict[str, Any], out: Path, format: str) -> None:
    text = json.dumps(meta)
    tmp = out.with_name(out.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():
        # tracing records the 'same' padding of each convolution as constants: fine, the contract
        # fixes the input length; the batch axis stays free
        warnings.simplefilter("ignore")
        if format == "torchscript":
            traced = torch.jit.trace(net, example)
            torch.jit.save(traced, str(tmp), _extra_files={META_NAME: text})
        else:
            import onnx

            torch.onnx.export(net, (example,), str(tmp), dynamo=False, input_names=["signal"],
                              output_names=["probabilities"], opset_version=17,
                              dynamic_axes={"signal": {0: "batch"}, "probabilities": {0: "batch"}})
            proto = onnx.load(str(tmp))
            proto.metadata_props.add(key="ecgkit", value=text)
            proto.doc_string = ("ecgkit model: input 'signal' (batch, 12, n_samples) float32 mV, output "
                                "'probabilities' (batch, n_labels); see metadata 'ecgkit'")
            onnx.save(proto, str(tmp))
    tmp.replace(out)


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Load an ecgkit model file (``format="ecgkit"``) and check its format version.

    Raises
    ------
    SchemaError
        If the file is not an ecgkit model file or is of a newer format version than this ecgkit reads.
    """
    obj = load_checkpoint(path)
    if not isinstance(obj, dict) or "model" not in obj or "model_config" not in obj:
        raise SchemaError(f"{path} is not an ecgkit model file (no model weights and config)")
    version = int(obj.get("format_version", 0))
    if obj.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise SchemaError(f"{path} has format {obj.get('format')!r}, not {MODEL_FORMAT!r}")
    if version > FORMAT_VERSION:
        raise SchemaError(f"{path} is an ecgkit model file of format version {version}; this ecgkit "
                          f"({__version__}) reads versions up to {FORMAT_VERSION}: upgrade ecgkit")
    return obj


def load_exported(path: str | Path) -> tuple[ResNet1d, list[str]]:
    """Rebuild an exported model (eval mode) and its label names (any format version)."""
    obj = read_model_file(path)
    return _model_from_ckpt(obj).eval(), list(obj["label_names"])


def contract_of(meta: Mapping[str, Any], path: str | Path) -> InputContract:
    """The input contract of a model description, or a clear error for files without one."""
    if "contract" not in meta:
        raise SchemaError(f"{path} carries no input contract (format version {meta.get('format_version', 0)}); "
                          "re-export it with `ecgkit export RUN --out MODEL`")
    return InputContract.from_dict(dict(meta["contract"]))
