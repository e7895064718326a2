"""The per-step record of a run: each step's loss terms and the best image, kept on the device.

Reading a GPU tensor's value (``.item()``, ``float(...)``, ``if loss < best``)
makes the CPU wait for the GPU. :class:`Recorder` therefore keeps the loss
rows and the best image as device tensors and updates them with
``torch.where``; values reach the host only when someone asks
(:meth:`Recorder.history`, at preview points and at the end). The loop of
:func:`~nst_helpers.transfer.stylize` and the benchmark use the same class.
"""

from __future__ import annotations

import torch

from .frames import Frame, FrameBuffer

__all__ = ["Recorder", "TERMS"]

#: The columns of a loss row: the weighted terms of Eq. (7) and their sum.
TERMS = ("content", "style", "tv", "total")


class Recorder:
    """Loss rows, the last and the best image of a run that starts at ``start`` ([1, 3, H, W]).

    With a :class:`~nst_helpers.frames.FrameBuffer` as ``frames`` it also keeps
    snapshots for a replay (only at the steps the buffer asks for).
    """

    def __init__(self, start: torch.Tensor, frames: FrameBuffer | None = None) -> None:
        self.frames = frames
        self.rows: list[torch.Tensor] = []  # one [content, style, tv, total] row per step, on the device
        self.best_loss = torch.tensor(float("inf"), device=start.device)
        self.best_step = torch.tensor(0, device=start.device)
        self.best_image = start.detach().clone()
        self.last_image = start.detach().clone()

    @property
    def steps(self) -> int:
        """Steps recorded so far."""
        return len(self.rows)

    def record(self, terms: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Record one step: ``terms`` = [content, style, tv] of ``image``; returns their sum, detached."""
        with torch.no_grad():
            total = terms.detach().sum()
            self.rows.append(torch.cat([terms.detach(), total.view(1)]))
            self.last_image.copy_(image.detach())
            better = total < self.best_loss  # stays on the device: no sync here
            self.best_loss = torch.where(better, total, self.best_loss)
            self.best_step = torch.where(better, torch.full_like(self.best_step, self.steps), self.best_step)
            self.best_image.copy_(torch.where(better, image.detach(), self.best_image))
            if self.frames is not None and self.frames.wants(self.steps):
                self.frames.add(self.steps, image, self.rows[-1])
        return total

    def replay(self) -> list[Frame]:
        """The recorded frames, ending with the last evaluated image if its loss is finite ([] if not recording)."""
        if self.frames is None:
            return []
        if self.rows and self.last_total_is_finite():
            self.frames.add(self.steps, self.last_image, self.rows[-1])
        return self.frames.frames()

    def last_total_is_finite(self) -> bool:
        """Whether the latest total loss is finite (True before any step); reads one value."""
        return not self.rows or bool(torch.isfinite(self.rows[-1][3]))

    def first_non_finite_step(self) -> int | None:
        """The first step (1-based) whose total loss was NaN or infinite, if any."""
        if not self.rows:
            return None
        finite = torch.isfinite(torch.stack(self.rows)[:, 3]).cpu()
        bad = (~finite).nonzero()
        return int(bad[0]) + 1 if len(bad) else None

    def history(self) -> dict[str, list[float]]:
        """Term → one weighted value per step (one transfer from the device)."""
        table = torch.stack(self.rows).cpu() if self.rows else torch.zeros(0, len(TERMS))
        return {key: table[:, i].tolist() for i, key in enumerate(TERMS)}

    def latest(self) -> dict[str, float]:
        """The latest row as term → value ({} before any step)."""
        return dict(zip(TERMS, self.rows[-1].tolist())) if self.rows else {}
