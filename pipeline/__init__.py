"""sempore: pores, depth profiles, asymmetry and network isotropy from SEM cross-sections.

>>> from pipeline import analyze
>>> result = analyze("membrane.tif")            # pixel size read from the file's metadata
>>> result.profile[["depth_um", "pore_size_um"]]
>>> result.save("results/membrane")            # the files of the output contract

Every stage is importable on its own (``pipeline.io``, ``pipeline.geometry``,
``pipeline.segment``, ``pipeline.size``, ``pipeline.profile``, ``pipeline.structure``,
``pipeline.isotropy``), taking plain arrays with physical units.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names and the module holding each; imported on first use so that `sempore --help`
# and `sempore info` start fast.
_LAZY = {
    "Analysis": "analysis",
    "AnalysisError": "analysis",
    "analyze": "analysis",
    "InputError": "io",
    "Micrograph": "io",
    "load_micrograph": "io",
    "Settings": "settings",
    "load_settings": "settings",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
