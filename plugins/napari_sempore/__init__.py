"""sempore napari plugin: review and correct pore segmentations and membrane surfaces.

Registered through the ``napari.manifest`` entry point (``napari.yaml``): a reader for SEM
files (scale in µm, data bar removed), sample data, and four docks (Analysis, Depth profile,
Results and export, Review a batch). napari is imported only when a viewer is opened.

>>> from plugins.napari_sempore import launch
>>> launch("results")        # what `sempore view results` runs
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["launch"]


def launch(results_dir: str | Path | None = None) -> None:
    """Open a napari viewer with the sempore docks and run it until it is closed.

    Parameters
    ----------
    results_dir : str or Path, optional
        A results folder written by ``sempore analyze``: its images are listed in the
        "review batch" dock and the first one is loaded.

    Raises
    ------
    ImportError
        napari is not installed (``pip install 'sempore[napari]'``).
    FileNotFoundError
        ``results_dir`` is not a folder.
    """
    if results_dir is not None and not Path(results_dir).is_dir():
        raise FileNotFoundError(f"{results_dir}: not a folder")
    try:
        import napari
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("sempore view needs napari: pip install 'sempore[napari]'") from exc

    from ._widget import add_sempore_docks

    viewer = napari.Viewer(title="sempore")
    docks = add_sempore_docks(viewer)
    if results_dir is not None:
        docks["batch"].open_folder(results_dir)
        docks["batch"].parentWidget().raise_()
    napari.run()
