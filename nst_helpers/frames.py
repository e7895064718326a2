"""Frames of a run for replays: :class:`FrameBuffer` keeps a bounded, evenly thinned set of snapshots.

``TransferConfig(record_every=k)`` makes :func:`~nst_helpers.stylize` keep the
image of step 1 and of every k-th step (``result.frames``), each with its step,
its pyramid level (``scale``) and its loss terms. The buffer never grows
without bound, however long the run:

* **at most** ``max_frames`` **frames**: when the buffer is full, every other
  frame is dropped and the interval doubles (k → 2k → 4k …), so the frames
  kept are always evenly spaced over the whole run (the thinning of a
  "time-lapse" that must fit on one card);
* **at most** ``max_side`` **pixels** on the longest side: frames are shrunk
  (antialiased) and stored as 8-bit RGB, ``3 · max_side²`` bytes each at most
  (100 frames at 512 px: at most 75 MiB).

Frames stay on the run's device until the run ends (no host sync in the loop;
a frame costs one small resize every k steps) and reach the CPU in one
transfer, in :meth:`FrameBuffer.frames`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import SettingsError

__all__ = ["Frame", "FrameBuffer", "MAX_FRAMES", "MAX_FRAME_SIDE"]

MAX_FRAMES = 100  #: default cap on the frames of one run
MAX_FRAME_SIDE = 512  #: default cap on a frame's longest side, in pixels


@dataclass
class Frame:
    """One snapshot of a run: the image evaluated at ``step`` and its weighted loss terms."""

    step: int  #: the VGG evaluation (1-based) whose image this is
    image: torch.Tensor  #: [3, h, w] uint8 RGB on the CPU (shrunk to ≤ max_side)
    losses: dict[str, float]  #: "content", "style", "tv", "total" of that evaluation
    scale: int = 0  #: pyramid level, 0 = coarsest (every frame of a single-scale run is at level 0)

    def as_float(self) -> torch.Tensor:
        """The image as the package's convention: float ``[1, 3, h, w]`` in [0, 1]."""
        return self.image.float().div(255).unsqueeze(0)


class FrameBuffer:
    """Snapshots every ``every`` steps (and step 1), at most ``max_frames`` of at most ``max_side`` px.

    ``wants(step)`` is plain integer arithmetic, so the loop can ask at every
    step without touching the device; ``add`` is called only when it says yes.
    """

    def __init__(self, every: int, max_frames: int = MAX_FRAMES, max_side: int = MAX_FRAME_SIDE) -> None:
        if every < 1 or max_frames < 2 or max_side < 1:
            raise SettingsError(f"need every ≥ 1, max_frames ≥ 2, max_side ≥ 1; got {every}, {max_frames}, {max_side}")
        self.every, self.max_frames, self.max_side = every, max_frames, max_side
        self._steps: list[int] = []
        self._images: list[torch.Tensor] = []  # [3, h, w] uint8, on the run's device
        self._losses: list[torch.Tensor] = []  # the recorder's loss rows, on the run's device
        self._scales: list[int] = []

    def __len__(self) -> int:
        return len(self._steps)

    def wants(self, step: int) -> bool:
        """Whether the image of ``step`` (1-based) should be kept (when full: on the doubled interval)."""
        every = self.every * 2 if len(self._steps) >= self.max_frames else self.every
        return (step == 1 or step % every == 0) and (not self._steps or step > self._steps[-1])

    def add(self, step: int, image: torch.Tensor, losses: torch.Tensor, scale: int = 0) -> None:
        """Keep ``image`` ([1, 3, H, W], any range; clamped) of ``step`` with its loss row; thin when full."""
        if self._steps and step <= self._steps[-1]:
            return  # already kept (the final image is offered again at the end of a run)
        if len(self._steps) >= self.max_frames:
            self._thin()
        self._steps.append(step)
        self._images.append(self._shrink(image.detach()))
        self._losses.append(losses.detach().float().reshape(-1))
        self._scales.append(scale)

    def _thin(self) -> None:
        """Drop every other frame (those off the doubled interval); step 1 always stays."""
        self.every *= 2
        keep = [i for i, step in enumerate(self._steps) if step == 1 or step % self.every == 0]
        if len(keep) == len(self._steps):  # only if frames lie off the grid: still make room, keep step 1
            keep = [i for i in keep if i != 1]
        self._steps = [self._steps[i] for i in keep]
        self._images = [self._images[i] for i in keep]
        self._losses = [self._losses[i] for i in keep]
        self._scales = [self._scales[i] for i in keep]

    def _shrink(self, image: torch.Tensor) -> torch.Tensor:
        picture = torch.nan_to_num(image.float(), nan=0.0)[:1]
        height, width = picture.shape[-2:]
        factor = self.max_side / max(height, width)
        if factor < 1:
            size = (max(1, round(height * factor)), max(1, round(width * factor)))
            picture = torch.nn.functional.interpolate(picture, size=size, mode="bilinear", antialias=True)
        return picture[0].clamp(0, 1).mul(255).round().to(torch.uint8)

    def frames(self) -> list[Frame]:
        """The kept frames, oldest first, moved to the CPU (one transfer for the losses)."""
        if not self._steps:
            return []
        rows = torch.stack(self._losses).cpu().tolist()
        terms = ("content", "style", "tv", "total")  # the columns of a Recorder's loss rows
        return [
            Frame(step, image.cpu(), dict(zip(terms, row)), scale)
            for step, image, row, scale in zip(self._steps, self._images, rows, self._scales)
        ]
