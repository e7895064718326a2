"""Replays of a run: one frame as a picture (:class:`ReplayRenderer`) and the whole run as a GIF or MP4.

A run made with ``TransferConfig(record_every=k)`` carries ``result.frames``
(see :mod:`nst_helpers.frames`). :func:`save_animation` turns them into an
animated GIF (always: Pillow writes it) or an MP4 (through matplotlib's
ffmpeg writer, when ffmpeg is installed). With ``with_losses=True`` every
frame shows the loss curves of the whole run under the picture, with a marker
at the frame's step; the notebooks' slider (:mod:`nst_helpers.replay_widget`)
draws the very same picture.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import ImageSaveError, SettingsError
from .plots import plot_losses
from .transfer import TransferResult

__all__ = ["ReplayRenderer", "save_animation", "check_animation_path", "ANIMATION_SUFFIXES"]

ANIMATION_SUFFIXES = (".gif", ".mp4")
_DPI = 100
_MIN_WIDTH = 420  # px: below this the loss curve's labels do not fit (frames are upscaled to it)
_TITLE_HEIGHT, _LOSS_HEIGHT = 26, 190  # px above and below the picture


class ReplayRenderer:
    """Draws frame ``index`` of ``result.frames``, with or without the loss curves; one figure reused.

    Every frame is drawn at the size of the last one (a pyramid's coarse
    frames are enlarged), so all pictures of one replay have the same size:
    the frame's own size without the curves; with them, at least
    ``_MIN_WIDTH`` px wide, with the curves below.
    """

    def __init__(self, result: TransferResult, with_losses: bool = True) -> None:
        if not result.frames:
            raise SettingsError(
                "This result has no frames to replay: run stylize with record_every=k (e.g. "
                "nst.stylize(content, style, record_every=5)) or, on the command line, --animation OUT.gif."
            )
        self.frames, self.history, self.with_losses = result.frames, result.history, with_losses
        self.height, self.width = self.frames[-1].image.shape[-2:]
        self._figure = self._build() if with_losses else None

    def __len__(self) -> int:
        return len(self.frames)

    def picture(self, index: int) -> np.ndarray:
        """Frame ``index`` alone: ``[H, W, 3]`` uint8 at the last frame's size."""
        image = self.frames[index].image
        if tuple(image.shape[-2:]) != (self.height, self.width):
            image = torch.nn.functional.interpolate(
                image[None].float(), size=(self.height, self.width), mode="bilinear"
            )
            image = image[0].round().clamp(0, 255).to(torch.uint8)
        return image.permute(1, 2, 0).numpy()

    def title(self, index: int) -> str:
        frame, last = self.frames[index], self.frames[-1]
        level = f" · level {frame.scale}" if any(f.scale for f in self.frames) else ""
        return f"step {frame.step}/{last.step}{level} · loss {frame.losses['total']:.4g}"

    def rgb(self, index: int) -> np.ndarray:
        """What frame ``index`` looks like in a replay: ``[H, W, 3]`` uint8 (with the curves if asked)."""
        if self._figure is None:
            return self.picture(index)
        frame = self.frames[index]
        self._image.set_data(self.picture(index))
        self._title.set_text(self.title(index))
        self._marker_line.set_xdata([frame.step, frame.step])
        total = frame.losses["total"]
        self._marker_dot.set_data([frame.step], [total if total > 0 else np.nan])
        canvas = self._figure.canvas
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def png(self, index: int) -> bytes:
        """:meth:`rgb` as PNG file bytes (for an image widget)."""
        buffer = io.BytesIO()
        Image.fromarray(self.rgb(index)).save(buffer, format="PNG")
        return buffer.getvalue()

    def _build(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width = max(self.width, _MIN_WIDTH)
        picture_height = round(width * self.height / self.width)
        total = _TITLE_HEIGHT + picture_height + _LOSS_HEIGHT
        figure = Figure(figsize=(width / _DPI, total / _DPI), dpi=_DPI)
        FigureCanvasAgg(figure)
        image_axis = figure.add_axes((0, _LOSS_HEIGHT / total, 1, picture_height / total))
        image_axis.axis("off")
        self._image = image_axis.imshow(self.picture(0), interpolation="lanczos")
        self._title = figure.text(0.5, 1 - 0.5 * _TITLE_HEIGHT / total, "", ha="center", va="center", fontsize=9)
        # The curves: 52 px for the y labels at the left, 40 px for the x label below, 12 px of air above.
        loss_axis = figure.add_axes((52 / width, 40 / total, 1 - 62 / width, (_LOSS_HEIGHT - 52) / total))
        plot_losses(self.history, ax=loss_axis, title=None)
        loss_axis.xaxis.label.set_fontsize(8)
        loss_axis.yaxis.label.set_fontsize(8)
        loss_axis.tick_params(labelsize=7)
        if loss_axis.get_legend() is not None:
            loss_axis.legend(fontsize=6, loc="center right", ncol=4)
        self._marker_line = loss_axis.axvline(self.frames[0].step, color="black", linewidth=1)
        (self._marker_dot,) = loss_axis.plot([], [], "o", color="black", markersize=4)
        return figure


def save_animation(result: TransferResult, path, fps: float = 10, with_losses: bool = True) -> Path:
    """Write ``result.frames`` as an animated GIF or an MP4 (by the suffix of ``path``); returns the path.

    Args:
        result: a :class:`~nst_helpers.TransferResult` of a run with
            ``record_every=k`` (its ``frames``).
        path: ``….gif`` (Pillow; always works) or ``….mp4`` (H.264 through
            matplotlib's ffmpeg writer; needs ffmpeg). Missing folders are created.
        fps: frames per second (a GIF stores hundredths of a second per frame; an MP4 whole frames per second).
        with_losses: draw the loss curves under the picture, with a marker at each frame's step.

    The last frame is held for a second, so a looping GIF pauses on the result.
    Pillow merges consecutive frames that are pixel for pixel the same into one
    frame shown as long (a run that no longer changes).
    """
    path = check_animation_path(path)
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 0 < fps <= 100:
        raise SettingsError(f"fps must be a number between 0 and 100, got {fps!r}.")
    renderer = ReplayRenderer(result, with_losses)  # raises when there are no frames
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".gif":
            pictures = [Image.fromarray(renderer.rgb(i)) for i in range(len(renderer))]
            durations = [round(1000 / fps)] * len(pictures)
            durations[-1] = max(durations[-1], 1000)
            pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0)
        else:
            _write_mp4(renderer, path, fps)
    except OSError as error:
        raise ImageSaveError(f"Could not write the animation to {path}: {error.strerror or error}.") from error
    return path


def check_animation_path(path) -> Path:
    """``path`` as a Path if an animation can be written there: a .gif, or a .mp4 with ffmpeg installed.

    Raises :class:`~nst_helpers.SettingsError` otherwise (the command line asks before the run starts).
    """
    from matplotlib import animation

    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise SettingsError(f"An animation is written as .gif or .mp4, not {path.suffix or 'a file without suffix'!r}.")
    if path.suffix.lower() == ".mp4" and not animation.writers.is_available("ffmpeg"):
        raise SettingsError(
            "Writing an MP4 needs ffmpeg, which was not found: install it (apt-get install ffmpeg, "
            "conda install ffmpeg or brew install ffmpeg) or save a .gif instead, which always works."
        )
    return path


def _write_mp4(renderer: ReplayRenderer, path: Path, fps: float) -> None:
    from matplotlib.animation import FFMpegWriter
    from matplotlib.figure import Figure

    writer = FFMpegWriter(fps=max(1, round(fps)), codec="libx264", extra_args=["-pix_fmt", "yuv420p"])

    first = renderer.rgb(0)
    # H.264 with yuv420p needs even sides: pad the odd one by repeating the last row or column.
    height, width = first.shape[0] + first.shape[0] % 2, first.shape[1] + first.shape[1] % 2
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    axis = figure.add_axes((0, 0, 1, 1))
    axis.axis("off")
    shown = axis.imshow(_pad(first, height, width), interpolation="nearest")
    hold = max(1, round(fps))  # the last frame for about a second, as in the GIF
    with writer.saving(figure, str(path), _DPI):
        for index in range(len(renderer)):
            shown.set_data(_pad(renderer.rgb(index), height, width))
            for _ in range(hold if index == len(renderer) - 1 else 1):
                writer.grab_frame()


def _pad(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.pad(picture, ((0, height - picture.shape[0]), (0, width - picture.shape[1]), (0, 0)), mode="edge")
