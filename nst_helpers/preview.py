"""Live preview and progress for :func:`nst_helpers.stylize`: one renderer, two places to show it.

:func:`draw_progress` draws what a run looks like so far (the current image
and the loss curves per term) into two matplotlib axes. Two callbacks use it:

* :class:`LivePreview`: in Jupyter or Colab one PNG updated in place
  through an IPython display handle, so figures never pile up, with a
  ``tqdm.auto`` progress bar showing the current loss. Outside a notebook a
  terminal progress bar (or plain lines with ``bar=False``).
* :class:`WidgetPreview`: the same picture as PNG bytes in an image widget,
  for the sliders panel of :mod:`nst_helpers.widgets`. It only sets
  ``.value`` on the widgets it is given, so this module needs no ipywidgets.
  :func:`say_plan` likewise tells the panel, before a run, its scales and memory.

Frames are cheap and few: :class:`ProgressFigure` builds the figure once and
then only changes its data, and both callbacks redraw at most once per
``min_interval`` seconds (default 1 s), however often ``stylize`` calls
them. ``stylize`` reports the time spent in callbacks separately from the
optimisation (``TransferResult.preview_seconds``).
"""

from __future__ import annotations

import html
import io
import math
import sys
import time
from typing import Any

import numpy as np
import torch

from .errors import NSTError
from .images import to_pil
from .plots import LOSS_DECADES, plot_losses
from .pyramid import describe_run
from .transfer import Progress

__all__ = ["LivePreview", "WidgetPreview", "ProgressFigure", "draw_progress", "in_notebook", "png_bytes", "say_plan"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, Colab, nbval)."""
    if "google.colab" in sys.modules:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def png_bytes(image: torch.Tensor, max_side: int | None = None) -> bytes:
    """An image tensor (``[1, 3, H, W]`` or ``[3, H, W]`` in [0, 1]) as PNG file bytes.

    With ``max_side`` the picture is first shrunk (aspect ratio kept) so that
    its longest side is at most ``max_side`` pixels; it is never enlarged.
    """
    picture = to_pil(image)
    if max_side is not None:
        picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def draw_progress(image_axis, loss_axis, progress: Progress, title: str = "") -> None:
    """Draw ``progress``: its image into ``image_axis``, its loss curves into ``loss_axis``.

    Both axes are cleared first, so the same axes can be redrawn at every
    step. The image title reads ``"<title>: step 40/300"``; the curves are
    :func:`~nst_helpers.plot_losses` of ``progress.history`` (log scale).
    """
    image_axis.clear()
    image_axis.imshow(_as_array(progress.image))
    image_axis.axis("off")
    image_axis.set_title(_frame_title(progress, title))
    loss_axis.clear()
    plot_losses(progress.history, ax=loss_axis)


def _as_array(image: torch.Tensor):
    return image[0].permute(1, 2, 0).clamp(0, 1).numpy()


def _frame_title(progress: Progress, title: str) -> str:
    return f"{title + ': ' if title else ''}step {progress.step}/{progress.steps}{_scale_words(progress)}"


def _scale_words(progress: Progress) -> str:
    """`` · scale 2/3 (256x341 px)`` for a coarse-to-fine run (pyramid.py), else nothing."""
    height, width = progress.image.shape[-2:]
    return f" · scale {progress.scale + 1}/{progress.scales} ({height}x{width} px)" if progress.scales > 1 else ""


class ProgressFigure:
    """The figure of a run's frames: drawn once by :func:`draw_progress`, then only its data changes.

    Redrawing a figure from scratch (new axes, artists, tick labels, a layout
    pass) costs a few hundred milliseconds. Here the axes, ticks and legend
    are drawn once and kept as a bitmap (matplotlib's "blitting"); a frame
    restores that bitmap and draws only what changes: the image, the curves
    and the title. The loss axis spans the whole run (``progress.steps``) and
    whole decades (at most :data:`~nst_helpers.plots.LOSS_DECADES` below the largest loss, as in
    :func:`~nst_helpers.plots.plot_losses`; what lies
    lower, like the ~0 content loss of step 1, runs off the bottom), so it is
    drawn afresh only when a loss crosses a decade,
    a new curve appears or the image changes size. The picture is shrunk to
    the size it is shown at before matplotlib sees it. The figure is a plain
    ``matplotlib.figure.Figure`` (not pyplot): nothing is left open and the
    inline backend never shows it a second time. ``benchmarks/preview_cost.py``
    measures a frame.
    """

    def __init__(self, figsize: tuple[float, float], dpi: int = 80, title: str = ""):
        self.figsize, self.dpi, self.title = figsize, dpi, title
        self.figure: Any = None
        self.redraws = 0  #: full redraws (the rest of the frames were blitted)
        self._layout: tuple | None = None
        self._background: Any = None

    def png(self, progress: Progress) -> bytes:
        """The frame for ``progress`` as PNG bytes."""
        from PIL import Image

        layout = self._layout_of(progress)
        if layout != self._layout:
            self._redraw(progress, layout)
        else:
            self._update(progress)
        canvas = self.figure.canvas
        canvas.restore_region(self._background)
        for artist in self._changing():
            self.figure.draw_artist(artist)
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    @staticmethod
    def _layout_of(progress: Progress) -> tuple:
        """What the still parts of the figure depend on: image size, curves shown, steps, loss decades."""
        positive = {name: [float(v) for v in values if float(v) > 0] for name, values in progress.history.items()}
        positive = {name: values for name, values in positive.items() if values}
        values = [v for curve in positive.values() for v in curve]
        decades = None
        if values:  # at most LOSS_DECADES below the top: a near-zero first content loss would squash the curves
            top = math.ceil(math.log10(max(values)))
            decades = (max(math.floor(math.log10(min(values))), top - LOSS_DECADES), top)
        return tuple(progress.image.shape), tuple(sorted(positive)), progress.steps, decades

    def _redraw(self, progress: Progress, layout: tuple) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if self.figure is None:
            self.figure = Figure(figsize=self.figsize, dpi=self.dpi)
            FigureCanvasAgg(self.figure)
            self.image_axis, self.loss_axis = self.figure.subplots(1, 2)
        draw_progress(self.image_axis, self.loss_axis, progress, self.title)
        self.loss_axis.set_xlim(1, max(progress.steps, 2))
        decades = layout[-1]
        if decades is not None:
            self.loss_axis.set_ylim(10.0 ** decades[0], 10.0 ** max(decades[1], decades[0] + 1))
        self.figure.tight_layout()
        self._shown_size = self._shown_pixels()
        self._update(progress)
        for artist in self._changing():
            artist.set_animated(True)  # left out of canvas.draw(): drawn on top of the kept bitmap
        self.figure.canvas.draw()
        self._background = self.figure.canvas.copy_from_bbox(self.figure.bbox)
        self._layout = layout
        self.redraws += 1

    def _shown_pixels(self) -> tuple[int, int]:
        box = self.image_axis.get_window_extent()
        return max(1, int(box.width)), max(1, int(box.height))

    def _update(self, progress: Progress) -> None:
        artist = self.image_axis.images[0]
        height, width = progress.image.shape[-2:]
        picture = _as_array(progress.image)
        shown_width, shown_height = self._shown_size
        if width > shown_width or height > shown_height:  # shrink once here, not in matplotlib's resampler
            from PIL import Image

            small = Image.fromarray((picture * 255).round().astype(np.uint8))
            small.thumbnail((shown_width, shown_height), Image.Resampling.BILINEAR)
            picture = np.asarray(small)
            artist.set_extent((-0.5, width - 0.5, height - 0.5, -0.5))  # same place on the axes
        artist.set_data(picture)
        for line in self.loss_axis.lines:
            values = [float(v) if float(v) > 0 else float("nan") for v in progress.history[str(line.get_label())]]
            line.set_data(range(1, len(values) + 1), values)
        self.image_axis.title.set_text(_frame_title(progress, self.title))

    def _changing(self) -> list:
        return [self.image_axis.images[0], self.image_axis.title, *self.loss_axis.lines]


class _RateLimit:
    """Draw at most once per ``min_interval`` seconds, but always the first and the final frame."""

    def __init__(self, min_interval: float):
        self.min_interval, self._last = min_interval, -math.inf

    def allows(self, progress: Progress) -> bool:
        now = time.monotonic()
        if progress.done or now - self._last >= self.min_interval:
            self._last = now
            return True
        return False


class LivePreview:
    """Callback for :func:`~nst_helpers.stylize`: live figure in notebooks, progress bar everywhere.

    Args:
        figure: draw the image and loss curves (notebooks only); ``None``
            decides by :func:`in_notebook`.
        bar: show a tqdm progress bar with the current loss.
        title: shown above the image.
        min_interval: redraw the figure at most once per this many seconds
            (the first and the final frame are always drawn; the bar is
            updated at every call).

    Use it as ``stylize(content, style, callback=LivePreview())``. The
    frame is a PNG shown through one IPython display handle, updated in
    place. ``.frames`` counts the redraws.
    """

    def __init__(self, figure: bool | None = None, bar: bool = True, title: str = "", min_interval: float = 1.0):
        self.use_figure = in_notebook() if figure is None else figure
        self.use_bar, self.title = bar, title
        self.frames = 0
        self._bar: Any = None  # tqdm bar
        self._handle: Any = None  # IPython display handle
        self._canvas = ProgressFigure((10, 4), title=title)
        self._rate = _RateLimit(min_interval)
        self._last_step = 0

    def __call__(self, progress: Progress) -> None:
        self._update_bar(progress)
        if self.use_figure:
            if self._rate.allows(progress):
                self._draw(progress)
        elif not self.use_bar:
            total = progress.losses.get("total", float("nan"))
            print(f"step {progress.step:>5}/{progress.steps}  loss {total:.4g}  ({progress.elapsed:.1f} s)", flush=True)
        if progress.done:
            self.close()

    def _update_bar(self, progress: Progress) -> None:
        if not self.use_bar:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=progress.steps, desc=self.title or "stylising", unit="step", file=sys.stderr, leave=True
            )
        if progress.losses:
            self._bar.set_postfix_str(f"loss={progress.losses['total']:.4g}{_scale_words(progress)}", refresh=False)
        self._bar.update(progress.step - self._last_step)
        self._last_step = progress.step

    def _draw(self, progress: Progress) -> None:
        from IPython.display import Image, display

        frame = Image(data=self._canvas.png(progress), format="png")
        if self._handle is None:
            self._handle = display(frame, display_id=True)
        else:
            self._handle.update(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the bar (the last frame stays shown through the display handle)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class WidgetPreview:
    """:func:`~nst_helpers.stylize` callback drawing into widgets, updated in place.

    Args:
        image: an ``ipywidgets.Image`` (``format="png"``); every drawn frame
            puts the :func:`draw_progress` picture into its ``.value``.
        bar: an ``ipywidgets.IntProgress``; its ``.max`` and ``.value``
            follow the steps.
        text: an ``ipywidgets.HTML``; gets step, loss and time.
        title: shown above the image.
        min_interval: redraw the picture at most once per this many seconds
            (bar and text follow every call; first and final frames always).

    Widget values reach the browser as soon as they change, even while the
    run blocks the kernel. ``.frames`` counts the redraws.
    """

    def __init__(self, image, bar, text, title: str = "", min_interval: float = 1.0):
        self.image, self.bar, self.text, self.title = image, bar, text, title
        self.frames = 0  #: how many times the figure was redrawn
        self._canvas = ProgressFigure((8, 3.2), title=title)
        self._rate = _RateLimit(min_interval)

    def __call__(self, progress: Progress) -> None:
        self.bar.max = max(progress.steps, 1)
        self.bar.value = min(progress.step, progress.steps)
        total = progress.losses.get("total")
        parts = [f"step {progress.step}/{progress.steps}{_scale_words(progress)}"]
        if total is not None:
            parts.append(f"loss {total:.4g}")
        parts.append(f"{progress.elapsed:.1f} s")
        if progress.done:
            parts.append("done")
        self.text.value = html.escape(" · ".join(parts))
        if self._rate.allows(progress):
            self.image.value = self._canvas.png(progress)
            self.frames += 1


def say_plan(panel: Any) -> None:
    """Show a sliders panel's run plan in its status line, and again whenever its size or steps change.

    The plan is :func:`~nst_helpers.pyramid.describe_run` of ``panel.config()``: the scales, their steps
    and the estimated peak memory, and whether the final size fits (said before anything runs).
    """

    def say(_change: Any = None) -> None:
        try:
            config = panel.config().validate()
            height, width = panel.image_pickers["content"].image(config.size).shape[-2:]
            text, colour = (
                f"{config.size} px: {describe_run(config, height, width, panel.device, panel.model)}",
                "inherit",
            )
        except NSTError as error:  # e.g. every style layer switched off
            text, colour = str(error), "#b00"
        panel.status.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    for slider in (panel.size_slider, panel.steps_slider):
        slider.observe(say, "value")
    say()
