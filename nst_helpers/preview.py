"""Live preview and progress for :func:`nst_helpers.stylize`.

:class:`LivePreview` is a callback. In Jupyter or Colab it shows one
matplotlib figure (current image + loss curves) and updates it in place
through an IPython display handle, so figures never pile up, with a
``tqdm.auto`` progress bar beside it showing the current loss. Outside a
notebook it prints a terminal progress bar (or plain lines with
``bar=False``).
"""

from __future__ import annotations

import sys

from .plots import plot_losses
from .transfer import Progress

__all__ = ["LivePreview", "in_notebook"]


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
        self._bar = None
        self._handle = None
        self._figure = None
        self._last_step = 0

    def __call__(self, progress: Progress) -> None:
        self._update_bar(progress)
        if self.use_figure:
            self._draw(progress)
        elif not self.use_bar:
            total = progress.losses.get("total", float("nan"))
            print(f"step {progress.step:>5}/{progress.steps}  loss {total:.4g}  ({progress.elapsed:.1f} s)",
                  flush=True)
        if progress.done:
            self.close()

    def _update_bar(self, progress: Progress) -> None:
        if not self.use_bar:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=progress.steps, desc=self.title or "stylising", unit="step", file=sys.stderr,
                             leave=True)
        if progress.losses:
            self._bar.set_postfix(loss=f"{progress.losses['total']:.4g}", refresh=False)
        self._bar.update(progress.step - self._last_step)
        self._last_step = progress.step

    def _draw(self, progress: Progress) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        if self._figure is None:
            self._figure, (self._image_axis, self._loss_axis) = plt.subplots(1, 2, figsize=(10, 4))
        self._image_axis.clear()
        self._image_axis.imshow(progress.image[0].permute(1, 2, 0).numpy())
        self._image_axis.axis("off")
        self._image_axis.set_title(f"{self.title + ': ' if self.title else ''}step {progress.step}/{progress.steps}")
        self._loss_axis.clear()
        plot_losses(progress.history, ax=self._loss_axis)
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
