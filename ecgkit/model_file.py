"""A trained model as users meet it: ``model = ecgkit.load_model(MODEL)``.

:class:`EcgModel` wraps any of the three files ``ecgkit export`` writes (the ecgkit model file,
TorchScript, ONNX) with what the file says about itself: :attr:`EcgModel.contract` (the input
contract), :attr:`EcgModel.label_names`, :attr:`EcgModel.thresholds` chosen on validation.
:meth:`EcgModel.predict` scores records, files or arrays through the same preprocessing as the
training shards (:mod:`ecgkit.predict`); :meth:`EcgModel.saliency` explains one record
(:mod:`ecgkit.saliency`).

Examples
--------
>>> model = ecgkit.load_model("model.pt")  # doctest: +SKIP
>>> print(model.contract)  # doctest: +SKIP
>>> model.predict(["records500/00000/00001_hr.hea"])[["record_id", "prob_AFIB", "pred_AFIB"]]  # doctest: +SKIP
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from ecgkit.contract import InputContract
from ecgkit.errors import ConfigError, SchemaError

__all__ = ["EcgModel", "load_model"]

Kind = Literal["ecgkit", "torchscript", "onnx"]


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class EcgModel:
    """An exported ecgkit model: the network plus its input contract, labels and thresholds.

    Build it with :func:`load_model`. Attributes: ``contract`` (:class:`~ecgkit.contract.InputContract`),
    ``label_names`` (list of str, output order), ``thresholds`` (rule -> label -> threshold or None),
    ``default_rule`` (the rule decisions use by default), ``meta`` (the whole description), ``kind``
    (``"ecgkit"``, ``"torchscript"`` or ``"onnx"``), ``path``.
    """

    def __init__(self, net: Any, meta: dict[str, Any], *, kind: Kind, path: str | Path,
                 outputs_probabilities: bool) -> None:
        from ecgkit.trainer.export import contract_of

        self.net, self.meta, self.kind, self.path = net, meta, kind, Path(path)
        self.contract: InputContract = contract_of(meta, path)
        self.label_names: list[str] = list(meta["label_names"])
        self.thresholds: dict[str, dict[str, float | None]] = dict(meta.get("thresholds") or {})
        self.default_rule: str | None = meta.get("default_rule") or next(iter(self.thresholds), None)
        self._probabilities = outputs_probabilities
        self.device = torch.device("cpu")
        self.amp = False
        self._compiled: Any = None
        self._batch = 0
        self._copy_stream: Any = None
        #: CUDA event recorded after the last host->device copy queued by the network (None on the CPU):
        #: the host buffer it read may be reused once it has completed
        self.copy_event: Any = None

    def __repr__(self) -> str:
        return (f"EcgModel({self.path.name}, {self.kind}, {len(self.label_names)} labels, "
                f"{self.contract.fs:g} Hz x {self.contract.seconds:g} s, device {self.device})")

    # -- configuration ---------------------------------------------------------------------------
    def to(self, device: str | torch.device = "auto", *, amp: bool = True, compile: bool = False,
           batch_size: int = 256) -> "EcgModel":
        """Run on ``device`` (``"auto"``: CUDA when available); bf16 autocast and ``torch.compile`` on CUDA."""
        self.device = torch.device("cpu") if (self.kind == "onnx" and str(device) == "auto") else _device(device)
        if self.kind == "onnx":
            if self.device.type != "cpu":
                raise ConfigError("the ONNX model runs on onnxruntime's CPU provider here; use the ecgkit "
                                  "or TorchScript file on a GPU")
            return self
        if hasattr(self.net, "set_conv_path"):  # the same function; channels-last conv2d is faster on CUDA
            self.net.set_conv_path("channels_last" if self.device.type == "cuda" else "conv1d")
        self.net = self.net.to(self.device).eval()
        self.amp = amp and self.device.type == "cuda"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
            self._copy_stream = torch.cuda.Stream(self.device)
        else:
            self._copy_stream = self.copy_event = None
        want = compile and self.device.type == "cuda" and self.kind == "ecgkit"
        if not want or int(batch_size) != self._batch:
            self._compiled = None
        self._batch = int(batch_size)
        if want and self._compiled is None:  # kept across calls: compiling costs tens of seconds
            self._compiled = torch.compile(self.net, dynamic=False)
        return self

    # -- the network on conformed input ----------------------------------------------------------
    def _forward_stored(self, stored: torch.Tensor) -> torch.Tensor:
        """(B, 12, L) stored values (int16 or float16, CPU) -> (B, T) float32 probabilities on the device."""
        if self.kind == "onnx":
            from ecgkit.preprocess import decode_stored

            signal = decode_stored(stored.numpy(), self.contract.scale_mv)
            return torch.from_numpy(self.net.run(None, {"signal": signal})[0])
        if self._copy_stream is not None and stored.device.type == "cpu":
            # copy on a side stream so that the next batch's copy overlaps this batch's compute
            with torch.cuda.stream(self._copy_stream):
                x = stored.to(self.device, non_blocking=True)
                self.copy_event = torch.cuda.Event()
                self.copy_event.record(self._copy_stream)
            torch.cuda.current_stream(self.device).wait_event(self.copy_event)
            x.record_stream(torch.cuda.current_stream(self.device))
        else:
            x = stored.to(self.device, non_blocking=True)
        # the same arithmetic as the trainer's device copy: cast, then one float32 multiply
        x = x.float() * self.contract.scale_mv if x.dtype == torch.int16 else x.float()
        n = x.shape[0]
        net = self.net
        if self._compiled is not None:
            net = self._compiled
            if n < self._batch:  # static shapes: pad the last batch rather than recompile
                x = torch.cat([x, x.new_zeros((self._batch - n, *x.shape[1:]))])
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = net(x)[:n]
        out = out.float()
        return out if self._probabilities else torch.sigmoid(out)

    def predict_proba(self, signals: NDArray[np.floating]) -> NDArray[np.float32]:
        """Probabilities for signals that already meet the contract: (B, 12, n_samples) float32 mV.

        No preprocessing here: use :meth:`predict` for records and files.
        """
        x = np.asarray(signals, dtype=np.float32)
        c = self.contract
        if x.ndim != 3 or x.shape[1:] != (len(c.leads), c.n_samples):
            raise SchemaError(f"signals must be (batch, {len(c.leads)}, {c.n_samples}) at {c.fs:g} Hz, "
                              f"got {x.shape}; use model.predict(...) to conform records first")
        if self.kind == "onnx":
            return np.asarray(self.net.run(None, {"signal": np.ascontiguousarray(x)})[0], dtype=np.float32)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(torch.from_numpy(np.ascontiguousarray(x)).to(self.device)).float()
        return (out if self._probabilities else torch.sigmoid(out)).cpu().numpy()

    # -- thresholds ------------------------------------------------------------------------------
    def decision_thresholds(self, rule: str | None = None) -> NDArray[np.float64]:
        """Per-label thresholds of a stored rule (``"max_f1"``, ``"0.95"`` ...) or ``"p=0.5"`` for all labels.

        Labels without a threshold (no positive in validation) get +inf: never called positive.
        """
        rule = rule if rule is not None else self.default_rule
        if rule is None:
            return np.full(len(self.label_names), np.nan)
        if rule.startswith("p="):
            try:
                p = float(rule[2:])
            except ValueError as exc:
                raise ConfigError(f"threshold {rule!r}: expected p=<probability>, e.g. p=0.5") from exc
            return np.full(len(self.label_names), p)
        if rule not in self.thresholds:
            raise ConfigError(f"threshold rule {rule!r} is not in {self.path.name}; it has "
                              f"{sorted(self.thresholds) or 'none'} (or use p=<probability>)")
        table = self.thresholds[rule]
        return np.array([np.inf if table.get(n) is None else float(table[n])  # type: ignore[arg-type]
                         for n in self.label_names])

    # -- the user-facing calls -------------------------------------------------------------------
    def predict(self, records: Any, *, fs: float | None = None, threshold: str | None = None,
                batch_size: int = 256) -> pd.DataFrame:
        """Score records: paths (files or folders of any format ``scan`` reads), Records, or arrays.

        Parameters
        ----------
        records : path, Record, NDArray (12, n) or (N, 12, n) mV, or a sequence of these
            Arrays are taken at ``fs`` (default: the contract's) in :data:`ecgkit.record.LEADS` order.
        threshold : str, optional
            A stored rule or ``"p=<probability>"``; default :attr:`default_rule`.

        Returns
        -------
        DataFrame
            One row per record, columns as :func:`ecgkit.predict.predict_sources` describes.
        """
        from ecgkit.predict import PredictConfig, predict_inputs

        cfg = PredictConfig(batch_size=batch_size, threshold=threshold, device=str(self.device), workers=1)
        return predict_inputs(self, records, cfg, fs=fs).predictions

    def saliency(self, record: Any, label: str | int, *, fs: float | None = None, steps: int = 32
                 ) -> NDArray[np.float32]:
        """Integrated-gradients attribution of one label for one record, shape (12, n_samples).

        Baseline: the all-zero signal (0 mV on every lead, a flat isoelectric line). See
        :func:`ecgkit.saliency.integrated_gradients`.
        """
        from ecgkit.saliency import record_saliency

        return record_saliency(self, record, label, fs=fs, steps=steps)

    def torch_module(self) -> torch.nn.Module:
        """The network (logits for the ecgkit file, probabilities for TorchScript)."""
        if self.kind == "onnx":
            raise ConfigError(f"{self.path.name} is an ONNX file: saliency and the torch module need the "
                              "ecgkit or TorchScript export")
        return self.net


def _kind(path: Path) -> Kind:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return "torchscript" if any(n.endswith("extra/ecgkit.json") for n in names) else "ecgkit"
    return "onnx"


def load_model(path: str | Path, device: str | torch.device = "cpu") -> EcgModel:
    """Load a model written by ``ecgkit export`` (ecgkit, TorchScript or ONNX file).

    Raises
    ------
    SchemaError
        If the file is not an ecgkit export, is of a newer format version, or has no input contract.
    FileNotFoundError
        If there is no file at ``path``.
    """
    from ecgkit.trainer.checkpoint import _model_from_ckpt
    from ecgkit.trainer.export import FORMAT_VERSION, META_NAME, read_model_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    kind = _kind(path)
    if kind == "ecgkit":
        obj = read_model_file(path)
        meta = {k: v for k, v in obj.items() if k != "model"}
        return EcgModel(_model_from_ckpt(obj).eval(), meta, kind=kind, path=path,
                        outputs_probabilities=False).to(device)
    if kind == "torchscript":
        extra = {META_NAME: ""}
        net = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        meta = json.loads(extra[META_NAME])
    else:
        try:
            import onnx
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError("reading an ONNX model needs onnx and onnxruntime: pip install 'ecgkit[onnx]'") from exc
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf raises its own DecodeError types
            raise SchemaError(f"{path} is neither an ecgkit model file, TorchScript nor ONNX: {exc}") from exc
        props = {p.key: p.value for p in proto.metadata_props}
        if "ecgkit" not in props:
            raise SchemaError(f"{path} is an ONNX file without ecgkit metadata (not written by ecgkit export)")
        meta = json.loads(props["ecgkit"])
        net = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise SchemaError(f"{path} has format version {meta['format_version']}; this ecgkit reads up to "
                          f"{FORMAT_VERSION}: upgrade ecgkit")
    return EcgModel(net, meta, kind=kind, path=path, outputs_probabilities=True).to(device)
