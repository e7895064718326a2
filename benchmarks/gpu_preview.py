"""What one preview frame costs: ``LivePreview`` and ``WidgetPreview`` drawing a 384 x 512 picture.

The frames are drawn as in a notebook: outside a kernel IPython's ``display()`` only prints a repr,
so an ``InteractiveShell`` with the PNG figure formatter (as the inline backend sets it) is started
for the measurement, and every ``display()``/``update()`` of a figure encodes its PNG as Jupyter
would. Only the package's public API is used; the ``Progress`` drawn comes from a real (tiny) run
of ``stylize``, with a 300-step loss history, so this follows the previews as they change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import statistics
import time
import types
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from gpu_runs import Deadline, failure
from nst_helpers import LivePreview, WidgetPreview, stylize
from workload import smooth_noise

HISTORY_STEPS = 300
PREVIEWS = ("LivePreview", "WidgetPreview")


@contextlib.contextmanager
def notebook_display() -> Iterator[None]:
    """Make ``IPython.display.display`` format figures as PNG, as in Jupyter; the text it prints is dropped."""
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.core.pylabtools import select_figure_formats
        from traitlets.config import Config
    except ImportError:  # no IPython: LivePreview's figure needs it anyway
        yield
        return
    started = not InteractiveShell.initialized()
    if started:
        config = Config()
        config.HistoryManager.enabled = False  # no history database written
        select_figure_formats(InteractiveShell.instance(config=config), {"png"}, bbox_inches="tight")
    try:
        with io.StringIO() as sink, contextlib.redirect_stdout(sink):
            yield
    finally:
        if started:
            InteractiveShell.clear_instance()


def _widget_parts() -> tuple:
    try:
        import ipywidgets as widgets
    except ImportError:  # WidgetPreview only sets .value (and .max) on what it is given
        return tuple(types.SimpleNamespace(value=None, max=0) for _ in range(3))
    return widgets.Image(format="png"), widgets.IntProgress(), widgets.HTML()


def _unlimited(preview: type) -> dict:
    """``min_interval=0`` where the preview has that rate limit: every call draws, so it can be timed."""
    return {"min_interval": 0.0} if "min_interval" in inspect.signature(preview).parameters else {}


def _progress(model, device: torch.device, side: int):
    """A ``Progress`` of a ``3/4 side x side`` picture with ``HISTORY_STEPS`` steps of loss history."""
    captured: list = []
    tiny = smooth_noise(32, 1), smooth_noise(32, 2)
    stylize(*tiny, model=model, device=str(device), steps=2, callback=captured.append)
    image = F.interpolate(smooth_noise(side, 3), size=(side * 3 // 4, side), mode="bilinear", align_corners=False)
    history = {key: [1.0 + 10.0 / (i + 1) for i in range(HISTORY_STEPS)] for key in captured[-1].history}
    return dataclasses.replace(captured[-1], image=image, history=history, steps=HISTORY_STEPS, done=False)


def _draw_frames(make: Callable, base, calls: int, gap_s: float) -> tuple[list[float], list[float]]:
    """Seconds of the calls that drew a frame (``.frames`` grew) and of those a rate limit skipped."""
    preview, drawn, skipped = make(), [], []
    for i in range(calls):
        before = getattr(preview, "frames", None)
        start = time.perf_counter()
        preview(dataclasses.replace(base, step=20 * (i + 1)))
        seconds = time.perf_counter() - start
        (drawn if before is None or preview.frames > before else skipped).append(seconds)
        time.sleep(gap_s)
    if hasattr(preview, "close"):
        preview.close()
    return drawn, skipped


def preview_cost(model, device: torch.device, cfg: dict, deadline: Deadline) -> list[dict]:
    """Milliseconds per drawn frame (median after the first, which builds the figure), per preview.

    A preview's rate limit (``min_interval``) is switched off so that every call draws; if calls are still
    skipped (a limit this check does not know), they are spaced 1.1 s apart instead.
    """
    side = cfg["preview_size"]
    rows: list[dict] = [{"preview": name, "height": side * 3 // 4, "width": side} for name in PREVIEWS]
    if not deadline.fits(16.0):
        return [{**row, "status": deadline.skip(16.0)} for row in rows]
    try:
        base = _progress(model, device, side)
    except Exception as error:
        return [{**row, "status": failure(error)} for row in rows]
    makers = {
        "LivePreview": lambda: LivePreview(figure=True, bar=False, **_unlimited(LivePreview)),
        "WidgetPreview": lambda: WidgetPreview(*_widget_parts(), **_unlimited(WidgetPreview)),
    }
    for row in rows:
        row["history_steps"] = HISTORY_STEPS
        make = makers[row["preview"]]
        if not deadline.fits(8.0):
            row["status"] = deadline.skip(8.0)
            continue
        try:
            with notebook_display():
                drawn, skipped = _draw_frames(make, base, cfg["preview_calls"], 0.0)
                if len(drawn) < 2 or len(skipped) > len(drawn):  # rate-limited by wall time
                    drawn, skipped = _draw_frames(make, base, 3, 1.1)
        except Exception as error:
            row["status"] = failure(error)
            continue
        row.update(status="ok", frames=len(drawn), first_ms=1e3 * drawn[0], skipped_calls=len(skipped))
        row["frame_ms"] = 1e3 * statistics.median(drawn[1:] or drawn)
    return rows
