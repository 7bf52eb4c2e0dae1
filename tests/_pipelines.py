"""Load a script under pipelines/ as a module (pipelines/ is not a package)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PIPELINES = Path(__file__).resolve().parent.parent / "pipelines"


def load_pipeline(name: str = "run_experiment") -> ModuleType:
    """A fresh module object of ``pipelines/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, PIPELINES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
