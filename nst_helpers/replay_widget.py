"""Scrub through a recorded run in Jupyter: :class:`ReplaySlider` (a frame slider, a Play button, the picture).

Like :mod:`nst_helpers.widgets`, this module imports ipywidgets, so
``import nst_helpers`` does not; use ``from nst_helpers.replay_widget import
ReplaySlider`` in a notebook. The picture is the one
:class:`~nst_helpers.animation.ReplayRenderer` draws for the GIF: frame *i*
with the loss curves of the whole run and a marker at its step. Moving the
slider only draws a picture (no optimisation runs), so it updates
continuously; pictures are cached once drawn.
"""

from __future__ import annotations

import html

try:
    import ipywidgets as widgets
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "nst_helpers.replay_widget needs ipywidgets: pip install ipywidgets (or pip install 'nst-helpers[notebooks]')."
    ) from error

from .animation import ReplayRenderer
from .transfer import TransferResult

__all__ = ["ReplaySlider"]


class ReplaySlider:
    """A slider over ``result.frames``; ``display(slider.widget)`` or end a cell with the object.

    Attributes: ``slider`` (``IntSlider``, the frame index), ``play``
    (``Play``, linked to the slider), ``image`` (``Image``, the picture of the
    current frame), ``label`` (``HTML``: frame, step, losses) and ``widget``
    (the whole box). :meth:`show` jumps to a frame from code.
    """

    def __init__(self, result: TransferResult, with_losses: bool = True, fps: float = 8) -> None:
        self.renderer = ReplayRenderer(result, with_losses)  # raises a clear error when there are no frames
        last = len(self.renderer) - 1
        self._cache: dict[int, bytes] = {}
        self.slider = widgets.IntSlider(
            value=last, min=0, max=last, description="frame", continuous_update=True, readout=True
        )
        self.play = widgets.Play(value=last, min=0, max=last, interval=max(20, round(1000 / fps)), description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.image = widgets.Image(format="png")
        self.label = widgets.HTML()
        self.slider.observe(lambda change: self._draw(change["new"]), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider, self.label]), self.image])
        self._draw(last)

    @property
    def index(self) -> int:
        """The frame shown."""
        return self.slider.value

    def show(self, index: int) -> None:
        """Show frame ``index`` (negative counts from the end, as in a list)."""
        self.slider.value = range(len(self.renderer))[index]

    def _draw(self, index: int) -> None:
        if index not in self._cache:
            self._cache[index] = self.renderer.png(index)
        self.image.value = self._cache[index]
        frame = self.renderer.frames[index]
        terms = " · ".join(f"{name} {value:.3g}" for name, value in frame.losses.items())
        self.label.value = html.escape(f"frame {index + 1}/{len(self.renderer)} · step {frame.step} · {terms}")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
