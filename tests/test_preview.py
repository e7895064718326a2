import io
import math
import time
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
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
    preview = LivePreview(figure=True, bar=False, min_interval=0)
    for step in (2, 4, 6):
        preview(_progress(step))
    preview(_progress(8, done=True))
    updates = handle.updates
    assert len(shown) == 1 and len(updates) == 3 and preview.frames == 4  # one display, updated in place
    assert all(frame.data.startswith(b"\x89PNG") for frame in shown + updates)


def test_previews_redraw_at_most_once_per_interval_but_always_the_first_and_last_frame(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("nst_helpers.preview.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("IPython.display.display", lambda obj, display_id=False: _Handle())
    live = LivePreview(figure=True, bar=False, min_interval=1.0)
    image, bar, text = _widgets()
    widget = WidgetPreview(image, bar, text, min_interval=1.0)
    for step in range(1, 10):  # 0.3 s apart: frames at 0.0, 1.2, 2.4 s
        clock[0] = 0.3 * (step - 1)
        live(_progress(step))
        widget(_progress(step))
    assert live.frames == widget.frames == 3
    assert bar.value == 9 and "step 9/10" in text.value  # bar and text follow every call
    live(_progress(10, done=True))
    widget(_progress(10, done=True))
    assert live.frames == widget.frames == 4  # the final frame, however soon


def _history_progress(step, steps=300, height=120, width=160, scale=1.0):
    history = {"content": [scale * (1.0 - 0.001 * i) for i in range(step)], "style": [scale * 5.0] * step}
    history["total"] = [c + s for c, s in zip(history["content"], history["style"])]
    picture = torch.linspace(0, 1, 3 * height * width).reshape(1, 3, height, width)
    return Progress(step, steps, {k: v[-1] for k, v in history.items()}, history, picture.roll(step, -1), 1.0)


def test_progress_figure_blits_frames_that_look_like_a_fresh_drawing():
    from nst_helpers import ProgressFigure

    kept = ProgressFigure((8, 3.2), title="run")
    kept.png(_history_progress(10))
    blitted = kept.png(_history_progress(200))
    assert kept.redraws == 1  # same size, same curves, same decades: only the data changed
    fresh = ProgressFigure((8, 3.2), title="run").png(_history_progress(200))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(blitted))), np.asarray(Image.open(io.BytesIO(fresh))))


def test_progress_figure_redraws_for_a_new_decade_a_new_size_or_a_new_curve():
    from nst_helpers import ProgressFigure

    figure = ProgressFigure((8, 3.2))
    figure.png(_history_progress(10))
    figure.png(_history_progress(20, scale=0.01))  # the losses fell two decades: new axis limits
    assert figure.redraws == 2
    figure.png(_history_progress(30, scale=0.01, height=240, width=320))  # the next scale of a pyramid
    assert figure.redraws == 3
    with_tv = _history_progress(40, scale=0.01, height=240, width=320)
    with_tv.history["tv"] = [0.002] * 40
    assert len(ProgressFigure((8, 3.2)).png(with_tv)) > 0
    figure.png(with_tv)
    assert figure.redraws == 4 and "tv" in {line.get_label() for line in figure.loss_axis.lines}


def test_progress_figure_loss_axis_spans_at_most_four_decades_below_the_largest_loss():
    from nst_helpers import ProgressFigure

    progress = _history_progress(50)  # losses between ~1 and ~6.9
    progress.history["content"][0] = 1e-6  # a run from the photo: content loss ~0 at step 1
    figure = ProgressFigure((8, 3.2))
    figure.png(progress)
    low, high = figure.loss_axis.get_ylim()
    assert (round(math.log10(low)), round(math.log10(high))) == (-3, 1)  # not (-6, 1)
    figure = ProgressFigure((8, 3.2))
    figure.png(_history_progress(50, scale=0.1))  # 0.095 to 0.6: whole decades around them, as before
    assert [round(math.log10(v)) for v in figure.loss_axis.get_ylim()] == [-2, 0]


def test_progress_figure_shows_a_large_picture_shrunk_to_the_axes():
    from nst_helpers import ProgressFigure

    figure = ProgressFigure((8, 3.2), dpi=80)
    figure.png(_history_progress(10, height=768, width=1024))
    shown = figure.image_axis.images[0]
    box = figure.image_axis.get_window_extent()
    assert shown.get_array().shape[1] <= box.width + 1 and list(shown.get_extent()) == [-0.5, 1023.5, 767.5, -0.5]


def test_plain_text_outside_notebooks(capsys):
    assert not in_notebook()  # pytest runs no Jupyter kernel
    preview = LivePreview(figure=False, bar=False)
    preview(_progress(3))
    assert "step     3/10" in capsys.readouterr().out


def test_widget_preview_sets_the_widgets_in_place():
    image, bar, text = _widgets()
    preview = WidgetPreview(image, bar, text, title="run #1", min_interval=0)
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


def test_time_in_the_callback_is_reported_apart_from_the_optimisation(monkeypatch, vgg19_random):
    from helpers import stripes_image
    from nst_helpers import stylize

    real, offset, calls = time.perf_counter, [0.0], []
    monkeypatch.setattr("nst_helpers.transfer.time.perf_counter", lambda: real() + offset[0])

    def slow_preview(progress):  # each call "takes" 1000 s on the clock stylize reads
        calls.append(progress.step)
        offset[0] += 1000.0

    result = stylize(
        smooth_image(), stripes_image(), model=vgg19_random, steps=6, preview_every=2, callback=slow_preview
    )
    assert len(calls) == 4  # step 0, 2, 4 and the final call
    assert result.preview_seconds == pytest.approx(4000.0, abs=100) and result.seconds < 1000
    assert "(+4000." in result.summary() and "drawing previews" in result.summary()
