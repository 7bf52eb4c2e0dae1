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
    # A source checkout (setup.cfg beside the package) uses its own data/, so code and data files
    # come from the same tree even when another checkout is the one installed in editable mode.
    root = Path(__file__).resolve().parent.parent
    if (root / "setup.cfg").is_file() and (root / "data" / name).is_file():
        return root / "data" / name
    try:
        candidate = Path(str(resources.files("ecgkit._data") / name))
        if candidate.exists():
            return candidate
    except ModuleNotFoundError:
        pass
    candidate = root / "data" / name
    if candidate.exists():
        return candidate
    raise FileNotFoundError(f"ecgkit ships no data file named {name!r}")
