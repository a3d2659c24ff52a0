"""Image models end to end: the transformers image classifier, gradient attribution on its pixels
(checked against autograd and finite differences, integrated gradients against f(x) − f(black)),
`litdesk explain` on images, and the Salience dock's overlay."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QLabel, QToolTip

from litdesk.api import CategoryLabel, Dataset, ImageBytes, LoadOptions, ModelLoadError
from litdesk.cli import main
from litdesk.core.cache import ResultCache
from litdesk.core.explain import Attribution, explain_job, methods_for
from litdesk.core.jobs import run_job
from litdesk.core.model_loading import load_model
from litdesk.core.predict import predict_rows
from litdesk.core.session import Session
from litdesk.ui.docks.salience import SalienceDock, attribution_view
from litdesk.ui.jobs import JobRunner
from litdesk.ui.palette import salience_color
from litdesk.ui.widgets.salience_charts import OVERLAY_OPACITY, ColorBar, ImageOverlay
from litdesk_transformers import loader
from litdesk_transformers.image_classifier import crop_region
from tests.helpers import finished

LABELS = ["cat", "dog", "bird"]
SIDE = 16  # the tiny ViT's input: 16 × 16 pixels in 4 × 4 patches


def png(seed: int, width: int = 24, height: int = 20) -> bytes:
    """A small random RGB image, PNG-encoded."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encoded(pixels)


def encoded(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def image_dataset(n: int = 4) -> Dataset:
    table = pa.table({"image": pa.array([png(seed) for seed in range(n)], pa.binary()),
                      "label": [LABELS[seed % 3] for seed in range(n)]})
    return Dataset(table, {"image": ImageBytes(), "label": CategoryLabel(vocab=tuple(LABELS))},
                   "pictures")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised ViT classifier and its image processor, saved like a user's."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("tiny_vit")
    config = transformers.ViTConfig(
        image_size=SIDE, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        initializer_range=0.2)  # not the default 0.02, under which the logits hardly move
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": SIDE, "width": SIDE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit(vit_dir):
    from litdesk_transformers.image_classifier import HFImageClassifier

    model = load_model(vit_dir, LoadOptions(device="cpu"))
    assert type(model) is HFImageClassifier
    return model


def reference_logit(model, pixels, target: int):
    """The target's logit computed by a float64 copy of the network, outside the plugin."""
    network = copy.deepcopy(model.network).double()
    return lambda p: network(pixel_values=p).logits[:, target]


# --- The plugin ----------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["ViTForImageClassification",
                                          "ResNetForImageClassification",
                                          "DeiTForImageClassificationWithTeacher"])
def test_image_classifier_configs_are_read_as_images(architecture):
    kind = loader.model_kind({"architectures": [architecture]})
    assert kind is loader.IMAGE_CLASSIFIER and kind.images


@pytest.mark.slow
def test_the_classifier_predicts_probabilities_of_its_labels(vit, vit_dir):
    import torch
    import transformers
    from PIL import Image

    assert vit.input_spec()["image"] == ImageBytes()
    assert vit.output_spec()["probas"].vocab == tuple(LABELS)
    images = [png(seed, width=12 + seed, height=30 - seed) for seed in range(5)]
    outputs = predict_rows(vit, [{"image": image} for image in images], 2, ["probas", "emb"])
    probas = np.stack([output["probas"] for output in outputs])
    assert probas.shape == (5, 3)
    np.testing.assert_allclose(probas.sum(axis=1), 1.0, rtol=1e-6)
    assert all(output["emb"].shape == (16,) for output in outputs)
    # The same numbers as the network run by hand on the processor's pixels.
    processor = transformers.ViTImageProcessor.from_pretrained(vit_dir)
    network = transformers.ViTForImageClassification.from_pretrained(vit_dir).eval()
    decoded = [Image.open(io.BytesIO(image)).convert("RGB") for image in images]
    with torch.no_grad():
        logits = network(**processor(images=decoded, return_tensors="pt")).logits
    np.testing.assert_allclose(probas, torch.softmax(logits, -1).numpy(), atol=1e-5)
    assert np.ptp(probas[:, 0]) > 1e-4  # the images do change the prediction


@pytest.mark.slow
def test_image_folders_need_their_processor_and_run_no_custom_code(vit_dir, tmp_path):
    bare = Path(shutil.copytree(vit_dir, tmp_path / "bare"))
    (bare / "preprocessor_config.json").unlink()
    with pytest.raises(ModelLoadError, match="no image processor configuration"):
        loader.load(bare)
    custom = Path(shutil.copytree(vit_dir, tmp_path / "custom"))
    settings = json.loads((custom / "preprocessor_config.json").read_text())
    settings["auto_map"] = {"AutoImageProcessor": "processing.MyProcessor"}
    (custom / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(ModelLoadError, match="preprocessor_config.json names custom code"):
        loader.load(custom)


@pytest.mark.slow
def test_an_unreadable_image_is_named(vit):
    with pytest.raises(ValueError, match="not a readable image"):
        vit.predict([{"image": b"not a picture"}])


# --- Attribution on pixels -----------------------------------------------------------------


@pytest.mark.slow
def test_pixel_gradients_match_autograd_and_finite_differences(vit):
    import torch

    assert methods_for(vit) == ["grad_l2", "grad_dot_input", "integrated_gradients"]
    dataset = image_dataset(2)
    l2 = run_job(explain_job(vit, dataset, [0, 1], "grad_l2"))
    dot = run_job(explain_job(vit, dataset, [0, 1], "grad_dot_input", target="dog"))
    for row in (0, 1):
        pixels = vit.pixels_from_images([dataset.table.column("image")[row].as_py()]).double()
        target = LABELS.index(l2[row].target)
        logit = reference_logit(vit, pixels, target)
        with torch.no_grad():
            assert target == int(vit.network(pixel_values=pixels.float()).logits.argmax())
        leaf = pixels.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(logit(leaf).sum(), leaf)
        # Central differences on one 3 × 3 block of pixels, every channel.
        step = 1e-6
        for channel in range(3):
            for y in range(5, 8):
                for x in range(9, 12):
                    bumped = pixels.clone()
                    bumped[0, channel, y, x] += step
                    dipped = pixels.clone()
                    dipped[0, channel, y, x] -= step
                    with torch.no_grad():
                        difference = float(logit(bumped) - logit(dipped)) / (2 * step)
                    assert difference == pytest.approx(float(gradient[0, channel, y, x]),
                                                       rel=1e-4, abs=1e-7)
        norms = gradient[0].norm(dim=0).numpy()
        assert l2[row].kind == "image" and l2[row].scores.shape == (SIDE, SIDE)
        np.testing.assert_allclose(l2[row].scores, norms / norms.sum(), rtol=1e-4, atol=1e-7)
        assert not l2[row].signed and l2[row].features == ()
        dog = reference_logit(vit, pixels, LABELS.index("dog"))
        leaf = pixels.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(dog(leaf).sum(), leaf)
        expected = (gradient * pixels)[0].sum(dim=0).numpy()
        assert dot[row].target == "dog" and dot[row].signed
        np.testing.assert_allclose(dot[row].scores, expected, rtol=1e-3, atol=1e-6)
        assert l2[row].image == dataset.table.column("image")[row].as_py()


@pytest.mark.slow
def test_integrated_gradients_adds_up_to_the_logit_change_from_black(vit):
    import torch

    dataset = image_dataset(4)
    results = run_job(explain_job(vit, dataset, range(4), "integrated_gradients"))
    zeros = run_job(explain_job(vit, dataset, [0], "integrated_gradients",
                                {"baseline": "zeros"}))
    for row, attribution in enumerate(results):
        assert attribution.completeness_error <= 0.01
        pixels = vit.pixels_from_images([dataset.table.column("image")[row].as_py()]).double()
        logit = reference_logit(vit, pixels, LABELS.index(attribution.target))
        black = torch.full_like(pixels, -1.0)  # (0 − mean 0.5) / std 0.5: black, normalised
        with torch.no_grad():
            change = float(logit(pixels) - logit(black))
        assert abs(change) > 1e-3
        assert attribution.scores.sum() == pytest.approx(change, rel=0.01)
    with torch.no_grad():
        pixels = vit.pixels_from_images([dataset.table.column("image")[0].as_py()]).double()
        logit = reference_logit(vit, pixels, LABELS.index(zeros[0].target))
        change = float(logit(pixels) - logit(torch.zeros_like(pixels)))
    assert zeros[0].scores.sum() == pytest.approx(change, rel=0.01)
    assert not np.allclose(zeros[0].scores, results[0].scores)


@pytest.mark.slow
def test_image_attributions_come_back_from_the_cache(vit, monkeypatch):
    dataset = image_dataset(2)
    cache = ResultCache()
    first = run_job(explain_job(vit, dataset, [0, 1], "integrated_gradients", cache=cache))

    def refuse(*_args):
        raise AssertionError("computed again")

    monkeypatch.setattr(vit, "pixels_from_images", refuse)
    again = run_job(explain_job(vit, dataset, [0, 1], "integrated_gradients", cache=cache))
    for before, after in zip(first, again):
        assert after.kind == "image" and after.scores.shape == (SIDE, SIDE)
        np.testing.assert_array_equal(after.scores, before.scores)
        assert after.completeness_error == before.completeness_error
        assert after.region == before.region and after.image == before.image
        assert after.features == ()


def test_the_crop_region_is_where_the_processor_crops():
    transformers = pytest.importorskip("transformers")
    width, height = 100, 80
    # Each pixel holds its own column (red) and row (green): the processor's output tells where
    # in the image it comes from.
    ys, xs = np.mgrid[0:height, 0:width]
    coordinates = np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1),
                            np.zeros_like(xs)], axis=-1).astype(np.uint8)
    from PIL import Image

    image = Image.fromarray(coordinates)
    processors = {
        "convnext": transformers.ConvNextImageProcessor(size={"shortest_edge": 224},
                                                        crop_pct=0.875),
        "deit": transformers.DeiTImageProcessor(size={"height": 256, "width": 256},
                                                crop_size={"height": 224, "width": 224}),
        "vit": transformers.ViTImageProcessor(size={"height": 32, "width": 32}),
    }
    expected = {"convnext": (0.15, 0.0625, 0.85, 0.9375), "deit": (0.0625, 0.0625, 0.9375, 0.9375),
                "vit": (0.0, 0.0, 1.0, 1.0)}
    for name, processor in processors.items():
        region = crop_region(processor, width, height)
        assert region == pytest.approx(expected[name]), name
        out = processor(images=[image], return_tensors="np", do_rescale=False,
                        do_normalize=False)["pixel_values"][0]
        seen_x = out[0][:, [0, -1]].mean(axis=0) / 255  # left and right columns' positions
        seen_y = out[1][[0, -1], :].mean(axis=1) / 255
        left, top, right, bottom = region
        assert seen_x == pytest.approx([left, right], abs=0.03), name
        assert seen_y == pytest.approx([top, bottom], abs=0.03), name


# --- litdesk explain -------------------------------------------------------------------------


@pytest.mark.slow
def test_explain_writes_image_maps_with_their_size(vit_dir, tmp_path, capsys):
    data = tmp_path / "pictures.parquet"
    pq.write_table(image_dataset(3).table, data)
    out = tmp_path / "maps.parquet"
    code = main(["explain", "--model", str(vit_dir), "--data", str(data), "--method",
                 "integrated_gradients", "--rows", "1:3", "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(out)
    assert table.column_names == ["row", "target", "height", "width", "scores",
                                  "completeness_error"]
    assert table.column("row").to_pylist() == [1, 2]
    assert table.column("height").to_pylist() == table.column("width").to_pylist() == [SIDE] * 2
    assert all(len(scores) == SIDE * SIDE for scores in table.column("scores").to_pylist())
    assert max(table.column("completeness_error").to_pylist()) <= 0.01
    assert set(table.column("target").to_pylist()) <= set(LABELS)


# --- The Salience dock -----------------------------------------------------------------------


def color_at(image: QImage, point) -> QColor:
    return QColor(image.pixel(point))


def blended(score: float, maximum: float, signed: bool, under: int) -> tuple[int, int, int]:
    """The salience colour of ``score`` at opacity OVERLAY_OPACITY × |score| / maximum over the
    grey level ``under``."""
    color, alpha = salience_color(score, maximum, signed), OVERLAY_OPACITY * abs(score) / maximum
    return tuple(round(alpha * 255 * channel + (1 - alpha) * under)
                 for channel in color.getRgbF()[:3])


def test_the_overlay_colours_hot_pixels_and_leaves_the_rest_and_the_margin_alone(qtbot):
    grey = np.full((40, 80, 3), 128, dtype=np.uint8)
    scores = np.zeros((4, 4))
    scores[1, 2], scores[3, 0] = 2.0, -1.0
    attribution = Attribution("m", "grad_dot_input", (), scores, True, kind="image",
                              image=encoded(grey), region=(0.25, 0.0, 0.75, 1.0),
                              completeness_error=None)
    view = attribution_view(attribution, words=False)
    qtbot.addWidget(view)
    view.show()
    overlay = view.findChild(ImageOverlay)
    assert view.findChild(ColorBar).maximum == 2.0
    assert overlay.width() == 2 * overlay.height()  # the image's shape, not the map's
    shot = overlay.grab().toImage()
    hot = color_at(shot, overlay.pixel_center(1, 2))
    cold = color_at(shot, overlay.pixel_center(3, 0))
    assert hot.getRgb()[:3] == pytest.approx(blended(2.0, 2.0, True, 128), abs=2)
    assert hot.blue() > 128 + 30 and hot.red() < 128 - 30  # blue: towards the class
    assert cold.getRgb()[:3] == pytest.approx(blended(-1.0, 2.0, True, 128), abs=2)
    assert cold.red() > cold.blue() + 20 and cold.red() > 128 + 20  # red: against it
    # A zero score leaves the image as it is, and so does the margin the model did not see.
    assert color_at(shot, overlay.pixel_center(0, 0)).getRgb()[:3] == (128, 128, 128)
    margin = QPointF(0.1 * overlay.width(), overlay.height() / 2).toPoint()
    assert overlay.pixel_at(QPointF(margin)) is None
    assert color_at(shot, margin).getRgb()[:3] == (128, 128, 128)
    # Unsigned maps are purple.
    unsigned = ImageOverlay(encoded(grey), np.abs(scores), False)
    qtbot.addWidget(unsigned)
    shot = unsigned.grab().toImage()
    assert color_at(shot, unsigned.pixel_center(1, 2)).getRgb()[:3] == pytest.approx(
        blended(2.0, 2.0, False, 128), abs=2)


@pytest.fixture
def image_dock(qtbot, vit):
    session = Session()
    session.set_dataset(image_dataset(3))
    runner = JobRunner()
    dock = SalienceDock(session, runner)
    qtbot.addWidget(dock)
    dock.resize(900, 700)
    dock.show()
    qtbot.waitExposed(dock)
    session.add_model(vit)
    yield dock
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=20_000)


@pytest.mark.slow
def test_the_dock_lays_the_map_over_the_image_and_hover_shows_a_score(qtbot, image_dock, vit):
    dock = image_dock
    dock.session.select([1])
    qtbot.waitUntil(lambda: finished(dock), timeout=60_000)
    assert sorted(method for _, method, _ in dock.results) == ["grad_l2", "integrated_gradients"]
    cell = dock.cell(vit.name, "integrated_gradients", 1)
    overlay = cell.findChild(ImageOverlay)
    attribution = dock.results[(vit.name, "integrated_gradients", 1)]
    assert overlay is not None and overlay.scores.shape == (SIDE, SIDE)
    note = cell.findChild(QLabel, "completeness")
    assert note.text().startswith("completeness error") and "#d62728" not in note.styleSheet()
    assert cell.findChild(ColorBar) is not None

    row, column = np.unravel_index(np.argmax(np.abs(attribution.scores)), attribution.scores.shape)
    spot = overlay.pixel_center(int(row), int(column))
    shot = overlay.grab().toImage()
    plain = QImage.fromData(image_dataset(3).table.column("image")[1].as_py()).scaled(
        overlay.size())
    ours, theirs = color_at(shot, spot), color_at(plain, spot)
    assert sum(abs(a - b) for a, b in zip(ours.getRgb()[:3], theirs.getRgb()[:3])) > 60

    qtbot.mouseMove(overlay, overlay.rect().topLeft())
    qtbot.mouseMove(overlay, spot)
    qtbot.waitUntil(QToolTip.isVisible, timeout=5_000)
    score = attribution.scores[row, column]
    assert QToolTip.text() == f"row {row}, column {column}: {score:+.4g}"
    assert overlay.hovered == (row, column)
