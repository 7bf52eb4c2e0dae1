"""The ecgkit exception hierarchy.

Every message names the record, its source and the problem in the text itself, so a log line or a
quarantine row is enough to find and understand the failure without the traceback.
"""
from __future__ import annotations

from pathlib import Path


class EcgkitError(Exception):
    """Base class of all ecgkit errors."""


class RecordError(EcgkitError, ValueError):
    """A source record cannot be read or fails validation.

    Batch stages catch this (and only this) to quarantine the record and go on.

    Parameters
    ----------
    problem
        What is wrong, e.g. ``"lead V3 has 0 samples, expected 5000"``.
    path
        The source file.
    record_id
        The record's id when known.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, record_id: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.record_id = record_id
        where = []
        if record_id is not None:
            where.append(f"record {record_id}")
        if self.path is not None:
            where.append(f"({self.path})")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {problem}" if prefix else problem)


class FormatError(RecordError):
    """The file is not in any format ecgkit reads, or is malformed for its format."""


class SignalError(RecordError):
    """The signal itself is unusable: missing leads, too short, wrong size."""


class SchemaError(EcgkitError, ValueError):
    """A manifest or shard does not match the schema ecgkit expects."""


class ConfigError(EcgkitError, ValueError):
    """A configuration value or key is invalid."""


class EcgkitWarning(UserWarning):
    """Warning category for API misuse (data problems go to the quarantine, not here)."""


class DataError(EcgkitError, ValueError):
    """The input does not allow the stage to run: no records found, an empty split, a folder of the
    wrong kind, an existing output that would be overwritten. The message names the folder."""
