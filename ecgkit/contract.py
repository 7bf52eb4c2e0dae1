"""A model's input contract: what a record must look like, and how ecgkit makes it so.

The contract is written from the shards a model was trained on (their attributes and resolved
:class:`~ecgkit.shards.ShardConfig`), carried in every exported model file, and applied at
prediction time by the same function the shard stage used (:func:`ecgkit.preprocess.prepare_record`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import h5py

from ecgkit.errors import SchemaError
from ecgkit.record import LEADS

__all__ = ["InputContract", "contract_from_shards"]

RESAMPLING = ("scipy.signal.resample_poly: polyphase FIR anti-aliasing filter (Kaiser window, beta 5), "
              "rational ratio with denominator <= 1000, applied along time to all 12 leads")
CROP = "records longer than `seconds` keep their first `seconds` (cropped at the end)"
LEAD_DERIVATION = ("sources with only I, II, V1-V6 get III = II - I, aVR = -(I + II)/2, aVL = I - II/2, "
                   "aVF = II - I/2 (exact); any other missing lead is quarantined")


@dataclass(frozen=True)
class InputContract:
    """What the network expects and how a source record is brought to it.

    Attributes
    ----------
    fs : float
        Sampling frequency of the network input, Hz.
    seconds : float
        Duration of the network input, s.
    n_samples : int
        ``round(fs * seconds)`` samples per lead.
    leads : tuple of str
        Row order of the (B, 12, n_samples) input (:data:`ecgkit.record.LEADS`).
    units : str
        Input units: ``"mV"``.
    short : {"pad", "reject"}
        Records shorter than ``seconds``: zero-padded at the end (recorded) or quarantined.
    storage_dtype : {"int16", "float16"}
        How the shards stored the signal; prediction applies the same rounding.
    scale_mv : float
        Millivolts per int16 step (1.0 for float16 storage).
    crop, resampling, lead_derivation : str
        The policies in words.
    filters : tuple of str
        Filters applied to the signal (none: the network sees the resampled signal unfiltered).
    normalisation : str
        Amplitude normalisation (none: millivolts as stored).

    ``steps`` (property): the preprocessing steps in the order they are applied.
    """

    fs: float
    seconds: float
    n_samples: int
    leads: tuple[str, ...] = LEADS
    units: str = "mV"
    short: Literal["pad", "reject"] = "pad"
    storage_dtype: Literal["int16", "float16"] = "int16"
    scale_mv: float = 0.001
    crop: str = CROP
    resampling: str = RESAMPLING
    lead_derivation: str = LEAD_DERIVATION
    filters: tuple[str, ...] = ()
    normalisation: str = "none: float32 millivolts as stored"

    @property
    def steps(self) -> tuple[str, ...]:
        """The preprocessing steps in the order they are applied (derived from the fields)."""
        store = (f"round to int16 steps of {self.scale_mv:g} mV, then back to float32 mV"
                 if self.storage_dtype == "int16" else "round to float16 mV, then back to float32 mV")
        pad = ("zero-pad shorter records at the end" if self.short == "pad"
               else "quarantine records shorter than `seconds`")
        return ("read with ecgkit.io (format detected as in `ecgkit scan`), signal in mV",
                "order the leads as " + ",".join(self.leads) + "; derive limb leads from I, II if only those 8 exist",
                f"resample to {self.fs:g} Hz (resample_poly) when the source rate differs",
                f"crop to the first {self.seconds:g} s; {pad}",
                "quarantine: non-finite samples, all leads flat, amplitude beyond the storage range",
                store)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples)."""
        d = asdict(self)
        for k in ("leads", "filters"):
            d[k] = list(d[k])
        d["steps"] = list(self.steps)  # for people reading the file; recomputed on load
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputContract":
        """Inverse of :meth:`to_dict`; unknown keys (written by a newer ecgkit) are rejected."""
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k != "steps"}
        extra = sorted(set(kw) - known)
        if extra:
            raise SchemaError(f"input contract has unknown field(s) {extra}; written by a newer ecgkit?")
        for k in ("leads", "filters"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

    def describe(self) -> str:
        """The contract in a few lines, for people."""
        lines = [f"input: (batch, {len(self.leads)}, {self.n_samples}) float32 {self.units}, "
                 f"{self.fs:g} Hz, {self.seconds:g} s, leads {','.join(self.leads)}"]
        lines += [f"  {i + 1}. {s}" for i, s in enumerate(self.steps)]
        lines.append(f"  filters: {', '.join(self.filters) or 'none'}; normalisation: {self.normalisation}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


def contract_from_shards(shards_dir: str | Path) -> InputContract:
    """The input contract of the shards in ``shards_dir`` (their first shard's attributes).

    Raises
    ------
    SchemaError
        If the folder has no shard file.
    """
    shards_dir = Path(shards_dir)
    files = sorted(shards_dir.glob("*-[0-9][0-9][0-9][0-9][0-9].h5"))
    if not files:
        raise SchemaError(f"no shard files in {shards_dir}; run `ecgkit shard` first")
    with h5py.File(files[0], "r") as f:
        attrs = dict(f.attrs)
    cfg = json.loads(attrs.get("config", "{}"))
    leads = tuple(str(v) for v in attrs["leads"])
    return InputContract(fs=float(attrs["fs"]), seconds=float(attrs["seconds"]), n_samples=int(attrs["n_samples"]),
                         leads=leads, units=str(attrs.get("units", "mV")), short=cfg.get("short", "pad"),
                         storage_dtype=str(attrs["dtype"]),  # type: ignore[arg-type]
                         scale_mv=float(attrs["scale_mv"]))
