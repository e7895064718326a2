"""Live preview and progress for :func:`nst_helpers.stylize`: one renderer, two places to show it.

:func:`draw_progress` draws what a run looks like so far (the current image
and the loss curves per term) into two matplotlib axes. Two callbacks use it:

* :class:`LivePreview`: in Jupyter or Colab one pyplot figure updated in
  place through an IPython display handle, so figures never pile up, with a
  ``tqdm.auto`` progress bar showing the current loss. Outside a notebook a
  terminal progress bar (or plain lines with ``bar=False``).
* :class:`WidgetPreview`: the same picture as PNG bytes in an image widget,
  for the sliders panel of :mod:`nst_helpers.widgets`. It only sets
  ``.value`` on the widgets it is given, so this module needs no ipywidgets.
"""

from __future__ import annotations

import html
import io
import sys
from typing import Any

import torch

from .images import to_pil
from .plots import plot_losses
from .transfer import Progress

__all__ = ["LivePreview", "WidgetPreview", "draw_progress", "in_notebook", "png_bytes"]


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
    image_axis.imshow(progress.image[0].permute(1, 2, 0).clamp(0, 1).numpy())
    image_axis.axis("off")
    image_axis.set_title(f"{title + ': ' if title else ''}step {progress.step}/{progress.steps}")
    loss_axis.clear()
    plot_losses(progress.history, ax=loss_axis)


class LivePreview:
    """Callback for :func:`~nst_helpers.stylize`: live figure in notebooks, progress bar everywhere.

    Args:
        figure: draw the image and loss curves (notebooks only); ``None``
            decides by :func:`in_notebook`.
        bar: show a tqdm progress bar with the current loss.
        title: shown above the image.

    Use it as ``stylize(content, style, callback=LivePreview())``. It keeps
    ``.frames`` (how many times the figure was redrawn) for tests.
    """

    def __init__(self, figure: bool | None = None, bar: bool = True, title: str = ""):
        self.use_figure = in_notebook() if figure is None else figure
        self.use_bar, self.title = bar, title
        self.frames = 0
        self._bar: Any = None  # tqdm bar
        self._handle: Any = None  # IPython display handle
        self._figure: Any = None  # matplotlib figure with _image_axis and _loss_axis
        self._last_step = 0

    def __call__(self, progress: Progress) -> None:
        self._update_bar(progress)
        if self.use_figure:
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
            self._bar.set_postfix(loss=f"{progress.losses['total']:.4g}", refresh=False)
        self._bar.update(progress.step - self._last_step)
        self._last_step = progress.step

    def _draw(self, progress: Progress) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        if self._figure is None:
            self._figure, (self._image_axis, self._loss_axis) = plt.subplots(1, 2, figsize=(10, 4))
        draw_progress(self._image_axis, self._loss_axis, progress, self.title)
        self._figure.tight_layout()
        if self._handle is None:
            self._handle = display(self._figure, display_id=True)
        else:
            self._handle.update(self._figure)
        self.frames += 1

    def close(self) -> None:
        """Finish the bar and close the figure (it stays shown through the display handle)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)  # otherwise the inline backend shows it a second time
            self._figure = None


class WidgetPreview:
    """:func:`~nst_helpers.stylize` callback drawing into widgets, updated in place.

    Args:
        image: an ``ipywidgets.Image`` (``format="png"``); every call puts
            the :func:`draw_progress` picture into its ``.value``.
        bar: an ``ipywidgets.IntProgress``; its ``.max`` and ``.value``
            follow the steps.
        text: an ``ipywidgets.HTML``; gets step, loss and time.
        title: shown above the image.

    Widget values reach the browser as soon as they change, even while the
    run blocks the kernel. The figure is a plain ``matplotlib.figure.Figure``
    (not pyplot), so nothing is left open and the inline backend never shows
    it a second time. ``.frames`` counts the redraws.
    """

    def __init__(self, image, bar, text, title: str = ""):
        self.image, self.bar, self.text, self.title = image, bar, text, title
        self.frames = 0  #: how many times the figure was redrawn

    def __call__(self, progress: Progress) -> None:
        self.bar.max = max(progress.steps, 1)
        self.bar.value = min(progress.step, progress.steps)
        total = progress.losses.get("total")
        parts = [f"step {progress.step}/{progress.steps}"]
        if total is not None:
            parts.append(f"loss {total:.4g}")
        parts.append(f"{progress.elapsed:.1f} s")
        if progress.done:
            parts.append("done")
        self.text.value = html.escape(" · ".join(parts))
        self.image.value = self._render(progress)
        self.frames += 1

    def _render(self, progress: Progress) -> bytes:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 3.2), dpi=80, layout="constrained")
        image_axis, loss_axis = figure.subplots(1, 2)
        draw_progress(image_axis, loss_axis, progress, self.title)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
