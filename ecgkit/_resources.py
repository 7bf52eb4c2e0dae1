"""Locate data files shipped with ecgkit (the repo's ``data/`` folder, installed as ``ecgkit._data``)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    """Return the path of a shipped data file, e.g. ``data_path("snomed_ct.csv")``.

    Works both for an installed package (``ecgkit._data``; ``ecgkit.data`` is the shard reader) and
    for a source checkout run without installing (``data/`` beside ``ecgkit/``).

    Raises
    ------
    FileNotFoundError
        If no shipped file has that name.
    """
    try:
        candidate = Path(str(resources.files("ecgkit._data") / name))
        if candidate.exists():
            return candidate
    except ModuleNotFoundError:
        pass
    candidate = Path(__file__).resolve().parent.parent / "data" / name
    if candidate.exists():
        return candidate
    raise FileNotFoundError(f"ecgkit ships no data file named {name!r}")
