"""``ShardConfig``: the settings of the shard stage (:func:`ecgkit.shards.write_shards`), each with why."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ecgkit.config import config_to_dict
from ecgkit.errors import ConfigError
from ecgkit.split import ECG_P18


@dataclass(frozen=True)
class ShardConfig:
    """Configuration of :func:`write_shards` (load with :func:`ecgkit.config.load_config`)."""

    #: Target sampling frequency, Hz: 500 Hz is the native rate of PTB-XL and GE MUSE exports.
    fs: float = 500.0
    #: Record length, seconds: 10 s is the standard resting 12-lead ECG.
    seconds: float = 10.0
    #: Records per shard file: 1024 x 12 x 5000 int16 = 123 MB, small enough that a crash loses
    #: little work and that workers balance, big enough to keep the file count low (300 files for
    #: 300,000 records).
    records_per_shard: int = 1024
    #: Storage dtype: int16 with ``scale_mv`` is exact for 1 uV-resolution sources and half of
    #: float32; float16 millivolts has <= 3.9 uV error and no range limit below 65 V.
    dtype: Literal["int16", "float16"] = "int16"
    #: int16 step in millivolts: 1 uV matches PTB-XL's resolution and covers +-32.7 mV, beyond any
    #: plausible surface ECG (scan flags > 20 mV).
    scale_mv: float = 0.001
    #: None (default): uncompressed random reads are ~10x faster than lzf (measured in
    #: benchmarks/bench_shards.py); "lzf" saves 37% of the disk space.
    compression: Literal["lzf"] | None = None
    #: Records shorter than ``seconds``: zero-padded at the end ("pad", recorded in ``repairs``) or
    #: quarantined ("reject").
    short: Literal["pad", "reject"] = "pad"
    #: Label names, in shard column order; None: the manifest's label columns (those of the vocabulary
    #: it was labelled with; ECG-P18, all -1, for an unlabelled manifest). Missing columns -> -1.
    labels: tuple[str, ...] | None = None
    #: Worker processes; 0: one per core (parallel by default).
    workers: int = 0
    #: "local" process pool, or "dask" (dask.distributed, same per-shard function).
    engine: Literal["local", "dask"] = "local"
    #: Dask scheduler address; None starts a local Dask cluster.
    scheduler: str | None = None
    #: HMAC key of ``patient_key``; None uses the public default (pseudonymisation against casual
    #: viewing only). Never written to the shards.
    patient_key: str | None = None
    #: The CLI exits with status 3 when more than this fraction of records is quarantined here
    #: (same default as scan: a higher rate means a systematic problem worth stopping for).
    max_quarantine_rate: float = 0.05
    #: Labels that ``ecgkit audit`` found contradicted by the record's ECG (manifest ``audit_flags``):
    #: "keep" them as stated (default: the audit only reports), "mask" them to -1 (unknown, no loss
    #: for that task), or "drop" the whole record (quarantined with the reason).
    audit: Literal["keep", "mask", "drop"] = "keep"
    #: Quarantine records whose measured ``quality`` (``ecgkit measure``) is below this, or not
    #: measured; None keeps every record.
    min_quality: float | None = None

    def __post_init__(self) -> None:
        if self.fs <= 0 or self.seconds <= 0:
            raise ConfigError(f"fs and seconds must be positive, got fs={self.fs}, seconds={self.seconds}")
        if self.records_per_shard < 1:
            raise ConfigError(f"records_per_shard must be >= 1, got {self.records_per_shard}")
        if self.dtype not in ("int16", "float16"):
            raise ConfigError(f"dtype must be 'int16' or 'float16', got {self.dtype!r}")
        if self.compression not in (None, "lzf"):
            raise ConfigError(f"compression must be None or 'lzf', got {self.compression!r}")
        if self.short not in ("pad", "reject"):
            raise ConfigError(f"short must be 'pad' or 'reject', got {self.short!r}")
        if self.engine not in ("local", "dask"):
            raise ConfigError(f"engine must be 'local' or 'dask', got {self.engine!r}")
        if self.scale_mv <= 0:
            raise ConfigError(f"scale_mv must be positive, got {self.scale_mv}")
        if self.audit not in ("keep", "mask", "drop"):
            raise ConfigError(f"audit must be 'keep', 'mask' or 'drop', got {self.audit!r}")

    @property
    def n_samples(self) -> int:
        """Samples per lead in the shards."""
        return int(round(self.fs * self.seconds))

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label columns written to the shards."""
        return ECG_P18 if self.labels is None else tuple(self.labels)

    def public_dict(self) -> dict[str, Any]:
        """The resolved config as written into shards: the patient key redacted; fields that do not
        change the output (engine, workers, quarantine limit) dropped."""
        d = config_to_dict(self)
        d["patient_key"] = None if self.patient_key is None else "<secret>"
        for name in ("workers", "engine", "scheduler", "max_quarantine_rate"):
            d.pop(name)
        d["label_names"] = list(self.label_names)
        d["n_samples"] = self.n_samples
        return d
