"""Coarse-to-fine runs, run: the levels of a pyramid one after the other, seen as one run.

:func:`~nst_helpers.stylize` plans the levels (:mod:`nst_helpers.pyramid`)
and hands :func:`run_levels` two functions: one that makes a level's
objective (the targets of Eq. 7 at that size) and start image, and the loop
that optimises one level. Between the levels the result is upsampled;
:class:`LevelCallback` shows each level's progress as part of the whole run
(steps, history and time run on; ``Progress.scale`` says the level), and
:func:`merge_levels` joins the levels' results into one ``TransferResult``
(``step_scales``: the level of each step; ``pyramid``: each level's
:class:`ScaleRun`).

**Nothing is lost** at any level: a run cut short (interrupt, stop, a
non-finite loss, out of memory) ends with the best image of the level it
reached, and its message says at which level and whether the image was
upsampled.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from .devices import is_out_of_memory, release_memory
from .errors import SettingsError
from .frames import FrameBuffer
from .memory import MemoryModel
from .pyramid import Scale, memory_plan

__all__ = ["ScaleRun", "run_levels", "LevelCallback", "merge_levels"]


@dataclass
class ScaleRun:
    """What one level of a run did (``TransferResult.pyramid``)."""

    level: int  #: 0 = coarsest
    height: int
    width: int
    steps: int  #: evaluations done at this level
    first_step: int  #: the run's step (1-based) of this level's first evaluation
    seconds: float  #: wall time of this level's loop
    loss: float  #: total loss of this level's last evaluation (comparable only within a level)
    image: torch.Tensor  #: this level's last image, CPU, [1, 3, height, width]


def run_levels(
    plan: Sequence[Scale],
    config: Any,
    memory: MemoryModel,
    device: torch.device,
    build: Callable[[Scale, torch.Tensor | None], tuple[Any, torch.Tensor]],
    optimise: Callable[..., Any],
    callback: Callable[[Any], object] | None,
) -> Any:
    """Run the levels of ``plan`` one after the other and return the whole run's result.

    ``build(scale, previous)`` makes a level's objective and start image
    (``previous``: the last level's image; None at the first level);
    ``optimise(objective, start, config, memory, callback)`` runs a level's
    loop (``transfer._optimise``). A level cut short ends the run. Out of
    memory or an interrupt while a later level is built ends the run with
    the levels done so far; at the first level both are raised (out of
    memory as a :class:`SettingsError` naming a size that fits).
    """
    levels = None if callback is None else LevelCallback(callback, plan, memory_plan(memory, plan, device))
    runs: list[Any] = []
    started = time.perf_counter()
    for scale in plan:
        failure = ""
        try:
            objective, start = build(scale, runs[-1].image if runs else None)
        except KeyboardInterrupt:
            if not runs:
                raise
            failure = "interrupted"
        except RuntimeError as error:
            if not is_out_of_memory(error):
                raise
            failure = "out_of_memory"
        if failure:  # outside the except block, so the failed level's tensors can be freed
            release_memory(device)
            done = sum(run.steps for run in runs)
            message = (
                f"Interrupted after {done} of {config.steps} steps; returning the best image so far."
                if failure == "interrupted"
                else memory.out_of_memory_message(scale.height, scale.width, device, done)
            )
            if not runs:
                raise SettingsError(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            runs[-1] = replace(runs[-1], status=failure, message=message)
            break
        runs.append(optimise(objective, start, replace(config, steps=scale.steps), memory, levels))
        del objective, start  # this level's targets and optimiser state go before the next level's arrive
        if not runs[-1].completed:
            break
        if levels is not None:
            levels.next_level(runs[-1])
    seconds = runs[0].seconds if len(plan) == 1 else time.perf_counter() - started
    result = merge_levels(runs, plan, config, seconds)
    if len(plan) > 1 and levels is not None and levels.last is not None:  # the levels' final calls were held back
        latest = {key: values[-1] for key, values in result.history.items() if values}
        final = replace(levels.last, step=result.steps, losses=latest, history=result.history, image=result.image)
        try:
            levels.callback(replace(final, elapsed=result.seconds, done=True, scale=len(runs) - 1))
        except KeyboardInterrupt:
            pass
    return result


class LevelCallback:
    """A run's callback, fed by one level after another: each level's :class:`~nst_helpers.Progress` is passed on
    with the whole run's step count, history and time, and the level (``scale``, ``scales``); the first call
    carries ``note`` (the plan and its memory estimate).

    With several levels their final calls (``done=True``) are held back: the run makes one at the very end.
    """

    def __init__(self, callback: Callable[[Any], object], plan: Sequence[Scale], note: str = "") -> None:
        self.callback, self.plan, self.note = callback, list(plan), note
        self.level, self.offset, self.origin = 0, 0, 0.0
        self.history: dict[str, list[float]] = {}
        self.last: Any = None  #: the latest progress passed on

    def __call__(self, progress: Any) -> object:
        if len(self.plan) == 1:  # a single-scale run: only the note is added
            note, self.note = self.note, ""
            return self.callback(replace(progress, note=note) if note else progress)
        if progress.done:
            return None
        if not self.origin:
            self.origin = time.perf_counter() - progress.elapsed
        note, self.note = self.note, ""
        self.last = replace(
            progress,
            note=note,
            step=self.offset + progress.step,
            steps=sum(scale.steps for scale in self.plan),
            history={key: self.history.get(key, []) + values for key, values in progress.history.items()},
            elapsed=time.perf_counter() - self.origin,
            scale=self.level,
            scales=len(self.plan),
        )
        return self.callback(self.last)

    def next_level(self, result: Any) -> None:
        """Move on after ``result``, the level just run."""
        self.level, self.offset = self.level + 1, self.offset + result.steps
        self.history = {key: self.history.get(key, []) + values for key, values in result.history.items()}


def merge_levels(results: Sequence[Any], plan: Sequence[Scale], config: Any, seconds: float) -> Any:
    """The levels' results (``TransferResult``, coarsest first) as one result of the whole run.

    History, steps and frames run on across the levels, ``step_scales`` says
    each step's level and ``pyramid`` keeps each level's last image. The
    images, the best loss and the status are the last level's (losses at
    different sizes are not comparable). A run cut short at a coarser level
    says so in its message, and whether its image was upsampled.
    """
    history: dict[str, list[float]] = {}
    step_scales: list[int] = []
    runs, offset = [], 0
    frames = FrameBuffer(config.record_every) if config.record_every and len(results) > 1 else None
    for scale, result in zip(plan, results):
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
        step_scales += [scale.level] * result.steps
        loss = result.history["total"][-1] if result.steps else math.nan
        shape = (scale.height, scale.width)
        runs.append(ScaleRun(scale.level, *shape, result.steps, offset + 1, result.seconds, loss, result.image))
        if frames is not None:
            for frame in result.frames:
                row = torch.tensor([frame.losses[key] for key in ("content", "style", "tv", "total")])
                frames.add(offset + frame.step, frame.as_float(), row, scale.level)
        offset += result.steps
    last, level, final = results[-1], plan[len(results) - 1], plan[-1]
    message = last.message
    if len(plan) > 1 and not last.completed:  # the level's message counts its own steps: say which level
        message = (
            f"The run ended at scale {level.level + 1} of {len(plan)} ({level.height}x{level.width} px): {message}"
        )
    if len(results) < len(plan):  # cut short before the final level: the image is smaller than asked for
        message += (
            f" The image is that scale's start: scale {level.level}'s result, upsampled."
            if last.steps == 0 and len(results) > 1
            else f" The image is that scale's result, not upsampled to the final {final.height}x{final.width} px."
        )
    previews = sum(result.preview_seconds for result in results)  # time spent in the callback
    return replace(
        last,
        history=history,
        steps=offset,
        seconds=seconds if len(plan) == 1 else seconds - previews,
        preview_seconds=previews,
        config=config,
        message=message,
        best_step=offset - last.steps + last.best_step if last.steps else last.best_step,
        frames=frames.frames() if frames is not None else last.frames,
        step_scales=step_scales,
        pyramid=runs,
    )
