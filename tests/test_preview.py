import io
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import smooth_image  # noqa: E402
from nst_helpers import LivePreview, WidgetPreview, draw_progress, in_notebook, png_bytes  # noqa: E402
from nst_helpers.transfer import Progress  # noqa: E402


def _progress(step, done=False):
    history = {
        "content": [1.0 / (i + 1) for i in range(step)],
        "style": [2.0 / (i + 1) for i in range(step)],
        "tv": [0.0] * step,
        "total": [3.0 / (i + 1) for i in range(step)],
    }
    return Progress(step, 10, {k: v[-1] for k, v in history.items()}, history, torch.rand(1, 3, 8, 8), 0.1, done)


class _Handle:
    """Stands in for an IPython display handle; records what ``update`` gets."""

    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def _widgets():
    """Stand-ins for the image, progress-bar and HTML widgets: WidgetPreview only sets their attributes."""
    return SimpleNamespace(value=b""), SimpleNamespace(max=0, value=0), SimpleNamespace(value="")


def test_live_preview_updates_one_display_in_place(monkeypatch):
    shown, handle = [], _Handle()

    def fake_display(obj, display_id=False):
        shown.append(obj)
        return handle

    monkeypatch.setattr("IPython.display.display", fake_display)
    preview = LivePreview(figure=True, bar=False)
    for step in (2, 4, 6):
        preview(_progress(step))
    preview(_progress(8, done=True))
    updates = handle.updates
    assert len(shown) == 1 and len(updates) == 3 and preview.frames == 4
    assert all(obj is shown[0] for obj in updates)  # the same figure, redrawn


def test_plain_text_outside_notebooks(capsys):
    assert not in_notebook()  # pytest runs no Jupyter kernel
    preview = LivePreview(figure=False, bar=False)
    preview(_progress(3))
    assert "step     3/10" in capsys.readouterr().out


def test_widget_preview_sets_the_widgets_in_place():
    image, bar, text = _widgets()
    preview = WidgetPreview(image, bar, text, title="run #1")
    preview(_progress(4))
    assert (bar.max, bar.value) == (10, 4) and "step 4/10" in text.value and "done" not in text.value
    assert bytes(image.value).startswith(b"\x89PNG")
    preview(_progress(10, done=True))
    assert bar.value == 10 and "done" in text.value and preview.frames == 2


def test_live_and_widget_previews_draw_the_same_picture(monkeypatch):
    drawn = []

    def recording_draw(image_axis, loss_axis, progress, title=""):
        draw_progress(image_axis, loss_axis, progress, title)
        drawn.append((image_axis, loss_axis))

    monkeypatch.setattr("nst_helpers.preview.draw_progress", recording_draw)
    monkeypatch.setattr("IPython.display.display", lambda obj, display_id=False: _Handle())
    progress = _progress(6)
    live = LivePreview(figure=True, bar=False, title="run")
    live(progress)
    WidgetPreview(*_widgets(), title="run")(progress)
    live.close()

    assert len(drawn) == 2  # one call each, through the one renderer
    (live_image, live_loss), (widget_image, widget_loss) = drawn
    expected = progress.image[0].permute(1, 2, 0).numpy()
    for axis in (live_image, widget_image):
        assert np.array_equal(np.asarray(axis.images[0].get_array()), expected)
        assert axis.get_title() == "run: step 6/10"

    def curves(axis):
        return {line.get_label(): (list(line.get_ydata()), line.get_color()) for line in axis.lines}

    assert curves(live_loss) == curves(widget_loss)
    assert {name: ys for name, (ys, _colour) in curves(live_loss).items()} == {
        name: values for name, values in progress.history.items() if name != "tv"
    }  # tv is all zero: left out


def test_png_bytes_is_a_png_and_shrinks_to_max_side():
    image = smooth_image(30, 40)
    full = Image.open(io.BytesIO(png_bytes(image)))
    assert full.format == "PNG" and full.size == (40, 30)
    assert np.array_equal(np.asarray(full), (image[0].permute(1, 2, 0) * 255).round().byte().numpy())
    assert Image.open(io.BytesIO(png_bytes(image, max_side=20))).size == (20, 15)
    assert Image.open(io.BytesIO(png_bytes(image, max_side=100))).size == (40, 30)  # never enlarged
