"""What one live-preview frame costs: milliseconds per frame for LivePreview and WidgetPreview.

A frame is what a notebook pays each time the preview redraws during a run:
drawing the current image and the loss curves and turning them into PNG bytes.
For ``LivePreview`` the PNG is made the way Jupyter's inline backend makes it
for a matplotlib figure (``print_figure(..., bbox_inches="tight")``) or, for an
``IPython.display.Image``, its bytes as they are. No kernel is needed: a fake
``display`` renders what it is given, as the notebook front end would ask.

    python benchmarks/preview_cost.py                 # 512 px, 300 steps of history
    python benchmarks/preview_cost.py --size 1024 --frames 10 --json outputs/preview.json

The optimisation's own time is not involved; ``stylize`` reports the time its
callbacks took as ``TransferResult.preview_seconds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import nst_helpers as nst  # noqa: E402
from nst_helpers.transfer import Progress  # noqa: E402


def _render(obj) -> bytes:
    """The PNG a Jupyter front end gets for ``obj`` (inline backend for figures)."""
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        return print_figure(obj, "png", bbox_inches="tight")
    return obj._repr_png_()


class _Handle:
    def update(self, obj) -> None:
        _render(obj)


def _fake_display(obj, display_id=False):
    _render(obj)
    return _Handle()


def progress_at(step: int, steps: int, height: int, width: int) -> Progress:
    """A run's state at ``step``: a random picture and decaying loss curves (what a frame draws)."""
    history = {
        "content": [1.0 - 0.5 * i / steps for i in range(step)],
        "style": [10.0 / (1 + i) for i in range(step)],
        "tv": [0.0] * step,
        "total": [1.0 - 0.5 * i / steps + 10.0 / (1 + i) for i in range(step)],
    }
    latest = {key: values[-1] for key, values in history.items()}
    return Progress(step, steps, latest, history, torch.rand(1, 3, height, width), 1.0, False)


def frame_ms(kind: str, size: int, steps: int, frames: int) -> list[float]:
    """Milliseconds per frame for ``frames`` frames of a run of ``steps`` steps at ``size`` px (long side)."""
    import IPython.display

    height, width = size * 3 // 4, size
    original = IPython.display.display
    IPython.display.display = _fake_display  # what LivePreview calls, looked up at call time
    try:
        if kind == "live":
            preview = nst.LivePreview(figure=True, bar=False, min_interval=0)
        else:
            from types import SimpleNamespace

            widgets = SimpleNamespace(value=b""), SimpleNamespace(max=0, value=0), SimpleNamespace(value="")
            preview = nst.WidgetPreview(*widgets, min_interval=0)
        times = []
        for index in range(frames):
            progress = progress_at(max(1, (index + 1) * steps // frames), steps, height, width)
            start = time.perf_counter()
            preview(progress)
            times.append(1000 * (time.perf_counter() - start))
        if kind == "live":
            preview.close()
        return times
    finally:
        IPython.display.display = original


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="long side of the picture (default 512)")
    parser.add_argument("--steps", type=int, default=300, help="steps of loss history at the last frame")
    parser.add_argument("--frames", type=int, default=15, help="frames drawn per preview kind")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    rows = {}
    for kind in ("live", "widget"):
        times = frame_ms(kind, args.size, args.steps, args.frames)
        rows[kind] = {"first_ms": times[0], "median_ms": statistics.median(times[1:] or times)}
    print(f"preview cost per frame, {args.size} px, {args.steps} steps of history, {args.frames} frames")
    print(f"{'preview':<14}{'first frame':>14}{'later frames (median)':>24}")
    for kind, row in rows.items():
        print(f"{kind:<14}{row['first_ms']:>11.0f} ms{row['median_ms']:>21.0f} ms")
    result = {"size": args.size, "steps": args.steps, "frames": args.frames, "ms_per_frame": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
