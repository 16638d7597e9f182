"""The napari plugin, headless: manifest, reader, analysis dock, live edits, export, batch review.

Run under Xvfb (``python -m pytest tests/test_napari_plugin.py --xvfb-backend=xvfb``): napari's
canvas needs OpenGL, which ``QT_QPA_PLATFORM=offscreen`` alone does not give.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari is not installed (pip install "
                             "'sempore[napari]')")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from pipeline import analyze  # noqa: E402
from pipeline.io import from_array  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.size import local_thickness  # noqa: E402
from pipeline.synthetic import make_membrane_phantom  # noqa: E402
from plugins.napari_sempore._reader import micrograph_layer_data  # noqa: E402
from plugins.napari_sempore._session import get_session  # noqa: E402
from plugins.napari_sempore._widget import (  # noqa: E402
    AnalysisWidget,
    BatchReviewWidget,
    ProfileWidget,
    ResultsWidget,
)

pytestmark = pytest.mark.napari

REPO = Path(__file__).resolve().parents[1]
PX = 0.1  # µm per pixel of the test phantom
WAIT_MS = 30_000


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


@pytest.fixture(scope="module")
def phantom():
    """A small two-surface membrane, dark-pore rendering (about 0.5 s to make)."""
    return make_membrane_phantom((256, 320), pixel_size_um=PX, profile="uniform",
                                 pore_size_um=1.0, surfaces="both", seed=3)


def _add_phantom(viewer, phantom):
    micrograph = from_array(phantom.grey, PX)
    data, kwargs, _ = micrograph_layer_data(micrograph, name="phantom")
    return viewer.add_image(data, **kwargs)


def _run(qtbot, viewer, phantom):
    """Analysis dock on the phantom; returns (dock, session) once the analysis is shown."""
    layer = _add_phantom(viewer, phantom)
    dock = AnalysisWidget(viewer)
    assert dock.selected_layer() is layer
    worker = dock.run()
    assert worker is not None
    session = get_session(viewer)
    qtbot.waitUntil(lambda: session.analysis is not None, timeout=WAIT_MS)
    return dock, session


def _settle(qtbot, session):
    qtbot.waitUntil(lambda: not session.busy, timeout=WAIT_MS)


# ------------------------------------------------------------------------------------------------


def test_manifest_validates_and_plugin_is_discovered():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(
        REPO / "plugins" / "napari_sempore" / "napari.yaml")
    manifest.validate_imports()
    pm = npe2.PluginManager.instance()
    pm.discover()
    found = pm.get_manifest("sempore")
    assert found.contributions.readers and found.contributions.readers[0].command == \
        "sempore.get_reader"
    assert {w.display_name for w in found.contributions.widgets} == {
        "Analysis", "Depth profile", "Results and export", "Review a batch"}
    assert {s.key for s in found.contributions.sample_data} >= {
        "hitachi_cross_section", "fei_porous_aggregate", "phantom_sponge_internal_minimum",
        "phantom_generated", "all_examples"}
    readers = [r.command for r in pm.iter_compatible_readers(["scan.tif"])]
    assert "sempore.get_reader" in readers
    assert not [r for r in pm.iter_compatible_readers(["notes.txt"])
                if r.command == "sempore.get_reader"]


def test_reader_fei_scale_and_databar(make_napari_viewer):
    path = _first_existing(REPO / "example_images" / "porous_aggregate_fei.tif",
                           REPO / "tests" / "data" / "real" / "porous_aggregate_fei.tif")
    if path is None:
        pytest.skip("porous_aggregate_fei.tif is neither in example_images/ nor tests/data/real/")
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="sempore")
    assert len(layers) == 1
    layer = layers[0]
    # FEI metadata: 0.134896 µm/px, image rows 0..1023, data bar below (1103 rows in the file)
    assert layer.data.shape == (1024, 1536)
    np.testing.assert_allclose(layer.scale, [0.134896, 0.134896], rtol=1e-5)
    assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]
    meta = layer.metadata["sempore"]
    assert meta["databar_rows"] == 79 and meta["raw_shape"] == (1103, 1536)
    assert meta["pixel_size_source"] == "fei_metadata"
    assert meta["metadata"]["instrument"].startswith("FEI")
    dock = AnalysisWidget(viewer)
    assert dock.pixel_size.value() == pytest.approx(0.134896, rel=1e-5)


def test_pixel_size_from_the_scale_bar(make_napari_viewer):
    """A file without metadata (the Hitachi cross-section without its sidecar): the reader
    measured the ruler in its data bar; typing the length its label states (100 µm) sets the
    pixel size, and the analysis records it as from the scale bar."""
    from plugins.napari_sempore._reader import micrograph_from_layer

    path = REPO / "tests" / "data" / "real" / "polymer_membrane_xsection_hitachi.bmp"
    viewer = make_napari_viewer()
    layer = viewer.open(str(path), plugin="sempore")[0]
    dock = AnalysisWidget(viewer)
    assert dock.pixel_size.value() == 0.0 and dock.scale_bar.isEnabled()
    assert "403 px" in dock.pixel_source.text()
    dock.scale_bar.setValue(100.0)
    assert dock.pixel_size.value() == pytest.approx(100 / 403, rel=1e-5)
    assert "from the scale bar" in dock.pixel_source.text()
    px = dock._scale_bar_pixel_size()
    m = micrograph_from_layer(layer, dock.pixel_size.value(), pixel_size_source="scale_bar")
    assert px == pytest.approx(m.pixel_size_um, rel=1e-5) and m.pixel_size_source == "scale_bar"


def test_sample_data_from_example_images(make_napari_viewer):
    from plugins.napari_sempore._sample_data import example_images

    if not (REPO / "example_images" / "phantom_sponge_internal_minimum_dark.tif").is_file():
        pytest.skip("example_images/ has no phantom_sponge_internal_minimum_dark.tif")
    viewer = make_napari_viewer()
    viewer.open_sample("sempore", "phantom_sponge_internal_minimum")
    image, truth = viewer.layers[-2], viewer.layers[-1]
    assert isinstance(truth, napari.layers.Labels) and truth.data.shape == image.data.shape
    np.testing.assert_allclose(image.scale, [0.05, 0.05], rtol=1e-6)
    assert 0.3 < truth.data.astype(bool).mean() < 0.9
    hitachi = REPO / "example_images" / "polymer_membrane_xsection_hitachi.bmp"
    if hitachi.is_file():
        viewer.open_sample("sempore", "hitachi_cross_section")
        layer = viewer.layers[-1]
        # pixel size from the sidecar, data bar rows 896-959 removed
        np.testing.assert_allclose(layer.scale, [0.2488, 0.2488], rtol=1e-6)
        assert layer.data.shape == (896, 1280)
    assert all(".pores" not in p.name for p in example_images())


def test_reader_rejects_bad_file_with_one_line(tmp_path):
    from pipeline.io import InputError
    from plugins.napari_sempore._reader import napari_get_reader

    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    reader = napari_get_reader(str(bad))
    assert reader is not None
    with pytest.raises(InputError) as err:
        reader(str(bad))
    assert "\n" not in str(err.value) and "broken.tif" in str(err.value)
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None


def test_run_analysis_dock_adds_scaled_layers(make_napari_viewer, qtbot, phantom):
    from qtpy.QtCore import QCoreApplication, QEvent, Qt

    viewer = make_napari_viewer()
    profile_dock = ProfileWidget(viewer)
    results_dock = ResultsWidget(viewer)
    closed = ProfileWidget(viewer)  # a dock the user closed must not be called back
    closed.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    with qtbot.waitSignal(closed.destroyed, timeout=5000):
        closed.close()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    dock, session = _run(qtbot, viewer, phantom)
    assert dock.pixel_size.value() == pytest.approx(PX)
    a = session.analysis
    # the same numbers as the library on the same input
    direct = analyze(from_array(phantom.grey, PX))
    np.testing.assert_array_equal(a.segmentation.mask, direct.segmentation.mask)
    roles = {"pores", "local_thickness", "membrane", "reference", "opposite", "min_layer"}
    assert roles <= set(session.layers)
    for role in roles:
        layer = session.layers[role]
        assert layer in viewer.layers
        np.testing.assert_allclose(layer.scale, [PX, PX])
    assert isinstance(session.layers["pores"], napari.layers.Labels)
    assert session.layers["reference"].shape_type == ["path"]
    np.testing.assert_allclose(session.layers["local_thickness"].data,
                               a.local_thickness_px * PX, rtol=1e-6)
    # a dark-method analysis has no basin probabilities to show
    assert ("pore_probability" in session.layers) == (a.segmentation.pore_probability is not None)
    # the reference polyline reproduces the found surface within 1 px
    verts = session.layers["reference"].data[0]
    found = np.interp(verts[:, 1], np.arange(a.membrane.top_px.size), a.membrane.top_px)
    assert np.abs(verts[:, 0] - found).max() <= 1.0
    assert profile_dock.plotted is a and results_dock.result is not None
    assert results_dock.result["membrane"]["porosity"] == pytest.approx(
        a.segmentation.mask.sum() / a.membrane.mask.sum())


def test_results_panel_shows_the_method_and_the_notes():
    from plugins.napari_sempore._widget import results_html

    page = results_html({"segmentation": {"method": "dark", "details": {"p_topographic": 0.4}},
                         "notes": ["segmentation method uncertain: <x>", "edited in napari"]})
    assert "dark (auto, P(topographic) 0.40)" in page
    assert "segmentation method uncertain: &lt;x&gt;" in page
    assert "<li>edited in napari" not in page  # shown once, as the banner of edited results


def test_topographic_analysis_shows_the_pore_probability(make_napari_viewer):
    """A topographic segmentation's basin probabilities become a hidden image layer in µm,
    for reviewers to find the doubtful pores."""
    ph = make_membrane_phantom((256, 320), pixel_size_um=PX, profile="uniform",
                               pore_size_um=1.5, surfaces="both", rendering="topographic",
                               seed=3)
    a = analyze(from_array(ph.grey, PX), settings=Settings().replace(
        segment={"method": "topographic"}))
    assert a.segmentation.pore_probability is not None
    viewer = make_napari_viewer()
    profile_dock = ProfileWidget(viewer)
    layer = _add_phantom(viewer, ph)
    session = get_session(viewer)
    session.set_analysis(a, layer)
    # the depth profile dock draws the ambiguous share per depth on the porosity axis
    ax_por = profile_dock.figure.axes[0]
    drawn = {line.get_label(): line for line in ax_por.get_lines()}
    np.testing.assert_allclose(drawn["ambiguous share"].get_xdata(),
                               a.profile["ambiguous_fraction"])
    shown = session.layers["pore_probability"]
    assert shown in viewer.layers and not shown.visible
    inside = a.membrane.mask
    np.testing.assert_array_equal(shown.data[inside], a.segmentation.pore_probability[inside])
    assert (~inside).any() and np.isnan(shown.data[~inside]).all()  # transparent outside
    np.testing.assert_allclose(shown.scale, [PX, PX])


def test_results_dock_steps_through_the_doubtful_regions(make_napari_viewer):
    """"Next doubtful region" centres the view on the largest group of ambiguous basins first,
    then the next, and shows the pore probability layer; the regions are those of
    pipeline.segment.ambiguous_regions."""
    from pipeline.segment import ambiguous_regions

    ph = make_membrane_phantom((256, 320), pixel_size_um=PX, profile="uniform",
                               pore_size_um=0.9, surfaces="both", rendering="topographic",
                               morphology="spheres", seed=3)
    a = analyze(from_array(ph.grey, PX), settings=Settings().replace(
        segment={"method": "topographic"}))
    regions = ambiguous_regions(a.segmentation.pore_probability, a.membrane.mask,
                                min_area_px=16)
    assert len(regions) >= 2, "the phantom should leave the classifier unsure somewhere"
    viewer = make_napari_viewer()
    layer = _add_phantom(viewer, ph)
    session = get_session(viewer)
    dock = ResultsWidget(viewer)
    session.set_analysis(a, layer)
    assert dock.doubt_button.isEnabled()
    assert not session.layers["pore_probability"].visible
    for expected in regions[:2]:
        got = dock.next_doubtful_region()
        assert got == tuple(int(v) for v in expected)
        r0, r1, c0, c1, _ = got
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
        np.testing.assert_allclose(np.asarray(camera.center)[-2:],
                                   [(r0 + r1) / 2 * PX, (c0 + c1) / 2 * PX], atol=1e-6)
    assert session.layers["pore_probability"].visible
    assert f"doubtful region 2 of {len(regions)}" in dock.status.text()
    # a mask without probabilities (a bare mask, or the dark method): nothing to step through
    session.set_analysis(analyze(from_array(ph.grey, PX), membrane=a.membrane,
                                 pore_mask=a.segmentation.mask), layer)
    assert not dock.doubt_button.isEnabled() and dock.next_doubtful_region() is None


def test_macrovoids_layer(make_napari_viewer):
    """A NIPS-like phantom (fingers under a skin): its macrovoids are a visible labels layer
    numbered as in macrovoids.csv; a plain sponge gets an empty, hidden one."""
    ph = make_membrane_phantom((384, 512), pixel_size_um=PX, pore_size_um=0.8,
                               morphology="fingers", surfaces="top", rendering="dark", seed=2)
    a = analyze(from_array(ph.grey, PX))
    table, summary = a.macrovoids()
    assert len(table) >= 3
    viewer = make_napari_viewer()
    layer = _add_phantom(viewer, ph)
    session = get_session(viewer)
    session.set_analysis(a, layer)
    shown = session.layers["macrovoids"]
    assert shown in viewer.layers and shown.visible and not shown.editable
    assert set(np.unique(shown.data)) == set(range(len(table) + 1))
    np.testing.assert_allclose(shown.scale, [PX, PX])
    sponge = make_membrane_phantom((256, 320), pixel_size_um=PX, pore_size_um=1.0,
                                   surfaces="both", seed=1)
    b = analyze(from_array(sponge.grey, PX))
    session.set_analysis(b, _add_phantom(viewer, sponge))
    shown = session.layers["macrovoids"]
    assert not shown.visible and not np.asarray(shown.data).any()


def test_minimum_layer_band_follows_structure(make_napari_viewer):
    """An internal-minimum phantom analysed with its true membrane and pores: the band layer
    spans min_layer_top_um .. min_layer_bottom_um below the reference surface."""
    ph = make_membrane_phantom((256, 320), pixel_size_um=PX, profile="internal_minimum",
                               pore_size_um=1.0, surfaces="both", seed=0)
    a = analyze(from_array(ph.grey, PX), membrane=ph.membrane(), pore_mask=ph.pore_mask)
    s = a.structure
    if s is None or s.get("kind") != "internal_minimum":
        pytest.skip(f"structure stage found {s and s.get('kind')}, not the designed minimum")
    viewer = make_napari_viewer()
    layer = _add_phantom(viewer, ph)
    session = get_session(viewer)
    session.set_analysis(a, layer)
    band = session.layers["min_layer"]
    assert len(band.data) == 1
    rows = band.data[0][:, 0]
    top = np.nanmedian(a.membrane.top_px)  # flat surface: depth = row - top
    assert rows.min() - top == pytest.approx(s["min_layer_top_um"] / PX, abs=1.0)
    assert rows.max() - top == pytest.approx(s["min_layer_bottom_um"] / PX, abs=1.0)
    np.testing.assert_allclose(band.scale, [PX, PX])


def test_run_without_pixel_size_reports_error(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((64, 64)).astype(np.float32))
    dock = AnalysisWidget(viewer)
    assert dock.pixel_size.value() == 0
    assert dock.run() is None
    assert "pixel size unknown" in dock.status.text()


def test_edit_mask_then_recompute(make_napari_viewer, qtbot, phantom):
    viewer = make_napari_viewer()
    profile_dock = ProfileWidget(viewer)
    _, session = _run(qtbot, viewer, phantom)
    before = session.analysis
    p0 = before.profile.set_index("depth_um")
    pores = session.layers["pores"]
    depth_um = before.membrane.depth_px * PX
    # erase every pore between 4 and 6 µm deep (a brush stroke through the napari API)
    erase = np.nonzero((depth_um >= 4.0) & (depth_um < 6.0) & (np.asarray(pores.data) > 0))
    pores.data_setitem(erase, 0)
    # paint a 3 µm pore about 12 µm deep where the mask holds the fewest pores
    raw = np.asarray(pores.data) > 0
    centre_row = int(np.nanmedian(before.membrane.top_px)) + 120
    window = raw[centre_row - 15:centre_row + 16]
    col_counts = np.convolve(window.sum(axis=0), np.ones(31), mode="valid")
    centre_col = int(np.argmin(col_counts)) + 15
    disk = np.hypot(*(np.mgrid[:256, :320] - np.array([centre_row, centre_col])[:, None, None])
                    ) <= 15
    added_depth = depth_um[disk & ~raw & before.membrane.mask]
    pores.data_setitem(np.nonzero(disk), 1)
    qtbot.waitUntil(lambda: session.analysis is not before, timeout=WAIT_MS)
    _settle(qtbot, session)
    after = session.analysis
    p1 = after.profile.set_index("depth_um")
    erased_bins = [d for d in p0.index if p0.loc[d, "depth_lo_um"] >= 4.0 and
                   p0.loc[d, "depth_hi_um"] <= 6.0]
    assert erased_bins
    assert (p0.loc[erased_bins, "porosity"] > 0.2).all()
    assert (p1.loc[erased_bins, "porosity"] == 0).all()
    # bins gaining at least 10 pore pixels: porosity and pore size grow
    gained = [d for d in p0.index if np.sum((added_depth >= p0.loc[d, "depth_lo_um"])
                                            & (added_depth < p0.loc[d, "depth_hi_um"])) >= 10]
    assert len(gained) >= 3
    assert (p1.loc[gained, "porosity"] > p0.loc[gained, "porosity"]).all()
    assert (p1.loc[gained, "pore_size_um"] > p0.loc[gained, "pore_size_um"]).all()
    # far from the edits nothing moved
    far = [d for d in p0.index if d > 16.0 and d in p1.index]
    np.testing.assert_allclose(p1.loc[far, "porosity"], p0.loc[far, "porosity"])
    # the window update is exact
    mask = (np.asarray(pores.data) > 0) & after.membrane.mask
    np.testing.assert_array_equal(after.segmentation.mask, mask)
    np.testing.assert_array_equal(after.local_thickness_px, local_thickness(mask))
    np.testing.assert_allclose(session.layers["local_thickness"].data,
                               after.local_thickness_um)
    assert session.edited and profile_dock.plotted is after
    assert session.last_timings["total"] < 1.0
    # napari's undo (which emits no paint event) also triggers the recompute
    pores.undo()
    pores.undo()
    qtbot.waitUntil(lambda: session.analysis is not after, timeout=WAIT_MS)
    _settle(qtbot, session)
    np.testing.assert_array_equal(session.analysis.segmentation.mask,
                                  before.segmentation.mask)
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(session.analysis.profile, before.profile,
                                  check_exact=False, rtol=1e-12)
    assert not session.edited


def test_move_surface_then_recompute(make_napari_viewer, qtbot, phantom):
    viewer = make_napari_viewer()
    _, session = _run(qtbot, viewer, phantom)
    before = session.analysis
    ref = session.layers["reference"]
    shift_px = 20
    ref.data = [ref.data[0] + np.array([shift_px, 0.0])]  # 2 µm deeper
    qtbot.waitUntil(lambda: session.analysis is not before, timeout=WAIT_MS)
    _settle(qtbot, session)
    after = session.analysis
    np.testing.assert_allclose(after.membrane.top_px, before.membrane.top_px + shift_px,
                               atol=1e-6)
    assert after.membrane.thickness_px == pytest.approx(before.membrane.thickness_px - shift_px,
                                                        abs=1.0)
    cols = before.membrane.mask.shape[1]
    lost = before.membrane.mask.sum() - after.membrane.mask.sum()
    assert lost == pytest.approx(shift_px * cols, rel=0.02)
    # the profile moved up by 2 µm: the new profile at depth d is the old one at d + 2
    p0 = before.profile.set_index("depth_lo_um")
    p1 = after.profile.set_index("depth_lo_um")
    common = [d for d in p1.index if 1.0 <= d <= 12.0 and (d + 2.0) in p0.index]
    assert len(common) > 10
    diff = np.abs(p1.loc[common, "porosity"].to_numpy()
                  - p0.loc[[d + 2.0 for d in common], "porosity"].to_numpy())
    assert np.median(diff) < 0.03
    assert not (np.asarray(after.segmentation.mask) & ~after.membrane.mask).any()
    assert session.edited


def test_export_marks_edited(make_napari_viewer, qtbot, phantom, tmp_path):
    viewer = make_napari_viewer()
    results_dock = ResultsWidget(viewer)
    _, session = _run(qtbot, viewer, phantom)
    with qtbot.waitSignal(results_dock.export(tmp_path / "plain").returned, timeout=WAIT_MS):
        pass
    plain = json.loads((tmp_path / "plain" / "phantom" / "result.json").read_text())
    assert plain["software"]["edited"] is False

    pores = session.layers["pores"]
    region = np.nonzero(np.asarray(pores.data)[100:140, 100:160] >= 0)
    pores.data_setitem((region[0] + 100, region[1] + 100), 0)
    _settle(qtbot, session)
    out = tmp_path / "edited"
    worker = results_dock.export(out)
    with qtbot.waitSignal(worker.returned, timeout=WAIT_MS):
        pass
    folder = out / "phantom"
    for name in ("result.json", "profile.csv", "pores.png", "membrane.png",
                 "local_thickness.tif", "overlay.png", "profile.png"):
        assert (folder / name).is_file(), name
    result = json.loads((folder / "result.json").read_text())
    assert result["software"]["edited"] is True
    from pipeline.report import load_results

    saved = load_results(folder)
    np.testing.assert_array_equal(saved.pore_mask, session.analysis.segmentation.mask)
    assert not saved.pore_mask[100:140, 100:160].any()
    assert result["membrane"]["porosity"] < plain["membrane"]["porosity"]


def _write_batch(tmp_path, phantom) -> Path:
    """A results folder as `sempore analyze` writes it (per-image folders written by
    pipeline.report.write_results, summary.csv, report.html) for two files: the phantom and its
    mirror image. The analysis is given the true membrane and pores to keep the test fast."""
    import dataclasses

    from pipeline.io import load_micrograph
    from pipeline.report import summary_row, write_html_report, write_results, write_summary

    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "results"
    mirrored = dataclasses.replace(
        phantom, image=phantom.image[:, ::-1].copy(), pore_mask=phantom.pore_mask[:, ::-1].copy(),
        membrane_mask=phantom.membrane_mask[:, ::-1].copy(),
        local_thickness_px=phantom.local_thickness_px[:, ::-1].copy(),
        top_px=phantom.top_px[::-1].copy(), bottom_px=phantom.bottom_px[::-1].copy())
    rows = []
    for name, ph in (("scan1", phantom), ("scan2", mirrored)):
        path = inputs / f"{name}.tif"
        ph.save(path)  # FEI metadata: pixel size and data bar
        a = analyze(load_micrograph(path), membrane=ph.membrane(), pore_mask=ph.pore_mask)
        write_results(a, out / name, figures=False)
        result = json.loads((out / name / "result.json").read_text())
        rows.append(summary_row(result, image=str(path), result_dir=str(out / name)))
    write_summary(rows, out)
    write_html_report(out, rows)
    return out


def test_result_folders_in_review_order(tmp_path):
    """The batch reviewer can list the most ambiguous segmentations first (result.json
    segmentation.ambiguous_fraction, descending; results without one after them, edited ones
    last; ties by name)."""
    from plugins.napari_sempore._widget import result_folders, review_state

    shares = {"a": 0.05, "b": None, "c": 0.4, "d": 0.2, "e": None, "f": 0.9}
    for name, share in shares.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(
            {"segmentation": {"method": "dark" if share is None else "topographic",
                              "ambiguous_fraction": share},
             "software": {"edited": name == "f"}}))
    (tmp_path / "not_a_result").mkdir()
    assert [p.name for p in result_folders(tmp_path)] == ["a", "b", "c", "d", "e", "f"]
    # most ambiguous first, then no share, then the edited (already reviewed) ones
    assert [p.name for p in result_folders(tmp_path, order="review")] == [
        "c", "d", "a", "b", "e", "f"]
    assert review_state(tmp_path / "c") == (pytest.approx(0.4), False)
    assert review_state(tmp_path / "f") == (pytest.approx(0.9), True)
    assert review_state(tmp_path / "not_a_result") == (None, False)
    with pytest.raises(ValueError, match="order"):
        result_folders(tmp_path, order="size")


def test_review_batch_step_edit_save(make_napari_viewer, qtbot, tmp_path, phantom):
    out = _write_batch(tmp_path, phantom)
    viewer = make_napari_viewer()
    dock = BatchReviewWidget(viewer)
    dock.confirm_unsaved = False
    session = get_session(viewer)
    with qtbot.waitSignal(dock.open_folder(out).returned, timeout=WAIT_MS):
        pass
    assert [f.name for f in dock.folders] == ["scan1", "scan2"] and dock.index == 0
    saved = json.loads((out / "scan1" / "result.json").read_text())
    from pipeline.report import load_results

    np.testing.assert_array_equal(np.asarray(session.layers["pores"].data) > 0,
                                  load_results(out / "scan1").pore_mask)
    np.testing.assert_allclose(session.analysis.membrane.top_px,
                               saved["membrane"]["surface_row_px"], atol=1e-6)
    assert session.analysis.membrane.reference_surface == "top"
    assert session.analysis.structure == saved["structure"]
    if (saved["structure"] or {}).get("profile_band"):  # the saved confidence band is drawn
        band = session.analysis.extras["profile_band"]
        np.testing.assert_allclose(band["pore_size_lo_um"],
                                   saved["structure"]["profile_band"]["pore_size_lo_um"])
    # the surface is saved to 0.01 px: the rebuilt depth map moves a few pixels between bins
    np.testing.assert_allclose(session.analysis.profile["porosity"],
                               saved["profile"]["porosity"], atol=0.005)

    with qtbot.waitSignal(dock.next().returned, timeout=WAIT_MS):
        pass
    assert dock.index == 1 and session.result_dir == out / "scan2"
    assert dock.prev_button.isEnabled() and not dock.next_button.isEnabled()
    np.testing.assert_array_equal(np.asarray(session.layers["pores"].data) > 0,
                                  load_results(out / "scan1").pore_mask[:, ::-1])
    pores = session.layers["pores"]
    before = session.analysis
    rr, cc = np.nonzero(np.asarray(pores.data)[60:120, :] > 0)
    pores.data_setitem((rr + 60, cc), 0)
    qtbot.waitUntil(lambda: session.analysis is not before, timeout=WAIT_MS)
    _settle(qtbot, session)
    with qtbot.waitSignal(dock.save().returned, timeout=WAIT_MS):
        pass
    resaved = json.loads((out / "scan2" / "result.json").read_text())
    assert resaved["software"]["edited"] is True
    assert not load_results(out / "scan2").pore_mask[60:120].any()
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    row = summary[[Path(p).stem == "scan2" for p in summary["image"]]]
    assert len(row) == 1
    assert row["porosity"].iloc[0] == pytest.approx(resaved["membrane"]["porosity"], rel=1e-6)
    assert "scan2" in (out / "report.html").read_text()

    with qtbot.waitSignal(dock.previous().returned, timeout=WAIT_MS):
        pass
    assert dock.index == 0 and not session.edited


def test_launch_opens_docks_and_batch(make_napari_viewer, qtbot, monkeypatch, tmp_path, phantom):
    """`sempore view DIR` calls launch(DIR): a viewer with the four docks, the batch listed."""
    from pipeline.io import load_micrograph
    from pipeline.report import write_results
    from plugins.napari_sempore import launch

    phantom.save(tmp_path / "only.tif")
    a = analyze(load_micrograph(tmp_path / "only.tif"), membrane=phantom.membrane(),
                pore_mask=phantom.pore_mask)
    write_results(a, tmp_path / "results" / "only", figures=False)
    viewers = []

    def viewer_factory(**kwargs):
        viewers.append(make_napari_viewer(**kwargs))
        return viewers[-1]

    monkeypatch.setattr(napari, "Viewer", viewer_factory)
    monkeypatch.setattr(napari, "run", lambda *args, **kwargs: None)
    launch(tmp_path / "results")
    viewer = viewers[0]
    names = set(viewer.window.dock_widgets)
    assert {"sempore: analysis", "sempore: depth profile", "sempore: results",
            "sempore: review batch"} <= names
    session = get_session(viewer)
    qtbot.waitUntil(lambda: session.analysis is not None, timeout=WAIT_MS)
    assert session.result_dir == tmp_path / "results" / "only"
    with pytest.raises(FileNotFoundError):
        launch(tmp_path / "missing")


@pytest.mark.parametrize("box", ["deblur", "large_pores"])
def test_analysis_dock_checkboxes_reach_the_settings(make_napari_viewer, box):
    """The dock's 'deconvolve blurred images' and 'fill large topographic pores' boxes are the
    [segment] deblur and large_pores settings, both ways."""
    viewer = make_napari_viewer()
    dock = AnalysisWidget(viewer)
    assert getattr(dock, box).isChecked() and getattr(dock.settings().segment, box) is True
    getattr(dock, box).setChecked(False)
    assert getattr(dock.settings().segment, box) is False



def test_labels_left_out_are_shown_and_can_be_redrawn(make_napari_viewer, qtbot, phantom):
    """A micrograph with a scale-bar box burned into its corner: the run leaves the box out and
    shows it as a rectangle; a rectangle the user draws over another region is stored with the
    image layer, and the next run leaves that region out too."""
    from plugins.napari_sempore._edit import boxes_from_shapes, rectangles_from_boxes
    from plugins.napari_sempore._reader import micrograph_from_layer
    from plugins.napari_sempore._session import LABELS_CHANGED_STATUS

    from heldout import burn_label

    grey = np.round(phantom.grey * 255).astype(np.uint8)
    labelled, drawn = burn_label(grey, np.random.default_rng(0), style="box", corner="br",
                                 scale=0.8)
    viewer = make_napari_viewer()
    data, kwargs, _ = micrograph_layer_data(from_array(labelled, PX), name="labelled")
    layer = viewer.add_image(data, **kwargs)
    dock = AnalysisWidget(viewer)
    session = get_session(viewer)
    dock.run()
    qtbot.waitUntil(lambda: session.analysis is not None, timeout=WAIT_MS)
    _settle(qtbot, session)
    a = session.analysis
    (box,) = a.micrograph.annotations_px
    shapes = session.layers["labels"]
    assert boxes_from_shapes(shapes.data, a.micrograph.image.shape) == [box]
    assert not (a.membrane.mask & drawn).any()

    extra = (60, 90, 40, 100)  # an artefact the user wants left out
    shapes.add_rectangles(rectangles_from_boxes([extra]))
    qtbot.waitUntil(lambda: session.labels_pending, timeout=WAIT_MS)
    assert session.status == LABELS_CHANGED_STATUS
    stored = micrograph_from_layer(layer).annotations_px
    assert sorted(stored) == sorted([box, extra])
    first = session.analysis
    dock.run()
    qtbot.waitUntil(lambda: session.analysis is not first, timeout=WAIT_MS)
    _settle(qtbot, session)
    b = session.analysis
    assert sorted(b.micrograph.annotations_px) == sorted([box, extra])
    r0, r1, c0, c1 = extra
    assert not b.membrane.mask[r0:r1, c0:c1].any() and a.membrane.mask[r0:r1, c0:c1].any()
    assert not session.labels_pending


def test_label_rectangles_round_trip():
    from plugins.napari_sempore._edit import boxes_from_shapes, rectangles_from_boxes

    boxes = [(0, 5, 3, 9), (10, 30, 0, 40)]
    assert boxes_from_shapes(rectangles_from_boxes(boxes), (30, 40)) == boxes
    # a hand-drawn shape: the pixels whose centres it holds, clipped to the frame
    assert boxes_from_shapes([np.array([[2.2, -4.0], [2.2, 5.7], [7.9, 5.7], [7.9, -4.0]])],
                             (30, 40)) == [(3, 8, 0, 6)]
    assert boxes_from_shapes([np.array([[2.2, 3.2], [2.8, 3.8]])], (30, 40)) == []
