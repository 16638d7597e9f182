"""sempore: pores, depth profiles, asymmetry and network isotropy from SEM cross-sections.

>>> from pipeline import analyze
>>> result = analyze("membrane.tif")            # pixel size read from the file's metadata
>>> result.profile[["depth_um", "pore_size_um"]]

Every stage is importable on its own (``pipeline.io``, ``pipeline.geometry``,
``pipeline.segment``, ``pipeline.size``, ``pipeline.profile``, ``pipeline.structure``,
``pipeline.isotropy``), taking plain arrays with physical units.
"""

__version__ = "0.1.0"

from .analysis import Analysis, AnalysisError, analyze  # noqa: E402
from .io import InputError, Micrograph, load_micrograph  # noqa: E402
from .settings import Settings, load_settings  # noqa: E402

__all__ = [
    "Analysis",
    "AnalysisError",
    "InputError",
    "Micrograph",
    "Settings",
    "analyze",
    "load_micrograph",
    "load_settings",
    "__version__",
]
