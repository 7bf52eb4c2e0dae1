"""Where the model looked: per-lead, per-time attributions and their ECG-paper plots.

Method: **integrated gradients** (Sundararajan, Taly & Yan, ICML 2017) with an **all-zero baseline**
(0 mV on every lead: a flat isoelectric line, the ECG with no activity). The attribution of input
sample (lead l, time t) to a label is ``x[l, t] * mean_k dF/dx[l, t](alpha_k * x)`` over ``steps``
points ``alpha_k = (k + 1/2) / steps`` (midpoint rule), where F is the label's logit (the network of
an ecgkit model file; a TorchScript file returns probabilities, so F is the probability there).
The attributions add up to ``F(x) - F(0)`` (completeness), up to the quadrature error.
Positive values push towards the label, negative values away from it.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from ecgkit.errors import ConfigError
from ecgkit.plot import LAYOUT, plot_ecg
from ecgkit.record import LEADS

if TYPE_CHECKING:
    from ecgkit.model_file import EcgModel

logger = logging.getLogger(__name__)

__all__ = ["integrated_gradients", "record_saliency", "plot_saliency", "write_saliency", "METHOD"]

METHOD = "integrated gradients"
BASELINE = "all-zero signal (0 mV on every lead)"


def integrated_gradients(net: nn.Module, signal: NDArray[np.floating] | torch.Tensor, head: int, *,
                         steps: int = 32, batch: int = 32) -> NDArray[np.float32]:
    """Integrated-gradients attribution of output ``head`` for one (12, L) signal in mV.

    Parameters
    ----------
    net : nn.Module
        (B, 12, L) -> (B, T); evaluated in eval mode (dropout off, BatchNorm running statistics).
    signal : array (12, L) float32 mV
    head : int
        Output column to explain.
    steps : int
        Points on the straight path from the zero baseline to the signal.

    Returns
    -------
    float32 array (12, L)
        Attribution per lead and sample (units of the output: logit).
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    x = torch.as_tensor(np.asarray(signal, dtype=np.float32) if not torch.is_tensor(signal) else signal)
    x = x.float()
    device = next(iter(net.parameters()), torch.empty(0)).device
    x = x.to(device)
    was = net.training
    net.eval()
    total = torch.zeros_like(x)
    alphas = (torch.arange(steps, dtype=torch.float32, device=device) + 0.5) / steps
    for a in alphas.split(batch):
        inp = (a[:, None, None] * x[None]).requires_grad_(True)  # (b, 12, L) points on the path
        out = net(inp)[:, head]  # (b,)
        (grad,) = torch.autograd.grad(out.sum(), inp)
        total += grad.sum(dim=0)
    net.train(was)
    return (x * total / steps).detach().cpu().numpy().astype(np.float32)


def _head(model: "EcgModel", label: str | int) -> int:
    if isinstance(label, int):
        if not 0 <= label < len(model.label_names):
            raise ConfigError(f"label index {label} out of range for {len(model.label_names)} labels")
        return label
    if label not in model.label_names:
        raise ConfigError(f"label {label!r} is not one of the model's labels {model.label_names}")
    return model.label_names.index(label)


def record_saliency(model: "EcgModel", record: Any, label: str | int, *, fs: float | None = None,
                    steps: int = 32) -> NDArray[np.float32]:
    """Attribution (12, n_samples) of ``label`` for one record (path, Record or (12, n) array in mV).

    The record is conformed by the contract's preprocessing first (as :meth:`EcgModel.predict` does),
    so the attribution is aligned with the network input (``model.contract.fs``).
    """
    from ecgkit.preprocess import decode_stored, prepare_record
    from ecgkit.record import Record

    c = model.contract
    if isinstance(record, np.ndarray):
        record = Record(record_id="array", patient_id=None, signal=np.asarray(record, dtype=np.float32),
                        fs=float(fs or c.fs), source_format="array", source_path="<array>")
    stored = np.empty((len(c.leads), c.n_samples), dtype=c.storage_dtype)
    prepare_record(record, stored, fs=c.fs, seconds=c.seconds, short=c.short, dtype=c.storage_dtype,
                   scale_mv=c.scale_mv)
    x = decode_stored(stored, c.scale_mv)
    return integrated_gradients(model.torch_module(), x, _head(model, label), steps=steps)


def plot_saliency(signal: NDArray[np.floating], fs: float, attribution: NDArray[np.floating], *,
                  title: str | None = None) -> Figure:
    """The 12-lead ECG on paper with the attribution as a red highlight under each trace.

    Highlight strength is ``|attribution|`` scaled by its maximum over the record (positive and
    negative evidence alike: the question is where the model looked).
    """
    fig = plot_ecg(signal, fs, title=title)
    ax = fig.axes[0]
    strength = np.abs(np.asarray(attribution, dtype=np.float64))
    strength = strength / max(float(strength.max()), 1e-12)
    traces = next(c for c in ax.collections if isinstance(c, LineCollection) and c.get_zorder() == 2)
    segments = [np.asarray(s) for s in traces.get_segments()]
    n = signal.shape[1]
    per_panel = int(round(n / fs / 4.0 * fs))
    spans = [(lead, c * per_panel, min((c + 1) * per_panel + 1, n)) for row in LAYOUT for c, lead in enumerate(row)]
    spans.append(("II", 0, n))  # the rhythm strip
    pieces, colours = [], []
    for seg, (lead, lo, _) in zip(segments, spans):
        w = strength[LEADS.index(lead), lo:lo + len(seg)]
        pairs = np.stack([seg[:-1], seg[1:]], axis=1)  # (k, 2, 2) consecutive points
        keep = w[:-1] > 0.05  # skip the faintest evidence: keeps the file small
        pieces.append(pairs[keep])
        colours.append(w[:-1][keep])
    if pieces:
        import matplotlib

        col = np.concatenate(colours)
        rgba = matplotlib.colormaps["Reds"](0.25 + 0.75 * col)
        rgba[:, 3] = 0.2 + 0.6 * col
        ax.add_collection(LineCollection(list(np.concatenate(pieces)), colors=rgba, linewidths=3.0, zorder=1.8))
    ax.text(1.0, ax.get_ylim()[1] - 1.0, f"{METHOD}, baseline {BASELINE}: red = |attribution|",
            fontsize=6, va="top", ha="left", zorder=3)
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def write_saliency(run_dir: str | Path, split: str, n: int, out_dir: str | Path, *, y_true: NDArray[np.int8],
                   y_score: NDArray[np.float32], label_names: Sequence[str], dataset: Any = None,
                   steps: int = 32, device: str = "cpu") -> dict[str, Any]:
    """Plots for the ``n`` highest-scored test positives of each label (``ecgkit evaluate --saliency N``).

    Writes ``out_dir/saliency/<label>-<k>-<record_id>.png`` and returns the report entry: method,
    baseline, steps and one row per plot (label, record_id, score, file).
    """
    from ecgkit.trainer.batches import _open_dataset
    from ecgkit.trainer.checkpoint import _model_from_ckpt, load_checkpoint
    from ecgkit.trainer.config import BEST_CKPT, LAST_CKPT

    run = Path(run_dir)
    path = run / BEST_CKPT if (run / BEST_CKPT).exists() else run / LAST_CKPT
    ckpt = load_checkpoint(path)
    net = _model_from_ckpt(ckpt).keep_heads(range(int(ckpt["n_major"]))).to(device).eval()
    if dataset is None:
        dataset = _open_dataset(ckpt["config"]["shards_dir"], split, tuple(label_names))
    ids = list(getattr(dataset, "record_ids", [str(i) for i in range(len(dataset))]))
    fs = float(getattr(dataset, "fs", ckpt.get("fs") or 500.0))
    folder = Path(out_dir) / "saliency"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for j, name in enumerate(label_names):
        pos = np.flatnonzero(y_true[:, j] == 1)
        for k, i in enumerate(pos[np.argsort(-y_score[pos, j], kind="stable")][:n]):
            signal = dataset.get_batch(np.array([i]))[0][0]
            attr = integrated_gradients(net, signal, j, steps=steps)
            title = (f"{ids[i]} ({split})  {name}: score {y_score[i, j]:.2f}  {METHOD}, "
                     f"baseline 0 mV, {steps} steps")
            file = folder / f"{_safe(name)}-{k}-{_safe(str(ids[i]))}.png"
            fig = plot_saliency(signal, fs, attr, title=title)
            fig.savefig(file, dpi=90)
            rows.append({"label": name, "record_id": str(ids[i]), "score": float(y_score[i, j]), "file": str(file)})
    logger.info("saliency: %d plots in %s", len(rows), folder)
    return {"method": METHOD, "baseline": BASELINE, "steps": steps, "target": "logit",
            "per_label": n, "plots": rows}
