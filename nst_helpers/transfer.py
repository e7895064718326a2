r"""Style transfer runs: their settings, their result, and :func:`stylize`, which orchestrates one.

Starting from an initial image :math:`\vec x` (the content photo, white
noise or the style image) :func:`stylize` minimises Eq. (7) of the paper,
:math:`L_{total} = \alpha L_{content} + \beta L_{style} + \gamma L_{TV}`,
by gradient descent on the pixels with the VGG weights frozen. The pieces
live in their own modules: the loss (:mod:`~nst_helpers.objective`), the
optimisers and the clamp (:mod:`~nst_helpers.optimizers`), the per-step
record (:mod:`~nst_helpers.recorder`), precision and layout
(:mod:`~nst_helpers.speed`) and the memory check (:mod:`~nst_helpers.memory`).

**Nothing is lost.** Ctrl-C / Jupyter's Stop, a non-finite loss or an
out-of-memory error mid-run return a result holding the best image so far
and the loss history, with ``status`` saying what happened.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from .config import TransferConfig
from .control import check_min_size, colour_callback, load_inputs, restore_result_colours, start_image
from .devices import is_out_of_memory, pick_device, release_memory
from .frames import Frame, FrameBuffer
from .images import ImageSource, save_image, show_images
from .loss_scale import backward_for
from .memory import MemoryModel
from .objective import Objective
from .optimizers import BudgetSpent, make_optimizer, run_chunk
from .pyramid import level_images, plan_scales, upsample
from .pyramid_run import ScaleRun, run_levels
from .recorder import Recorder
from .speed import resolve_speed
from .vgg import VGGFeatures
from .weights import load_vgg

__all__ = ["TransferResult", "Progress", "stylize", "Status"]

Status = Literal["completed", "interrupted", "stopped", "non_finite", "out_of_memory"]


@dataclass
class Progress:
    """What a callback sees every ``preview_every`` steps."""

    step: int  #: VGG evaluations done so far
    steps: int  #: evaluations planned
    losses: dict[str, float]  #: the latest weighted terms: content, style, tv, total
    history: dict[str, list[float]]  #: term → list of values, one per step
    image: torch.Tensor  #: current image, CPU, [1, 3, H, W], clamped to [0, 1]
    elapsed: float  #: seconds since the loop started
    done: bool = False  #: True for the final call
    scale: int = 0  #: pyramid level of this step, 0 = coarsest (see pyramid.py)
    scales: int = 1  #: pyramid levels of the run (1: a single-scale run)
    note: str = ""  #: first call only: the scales, their steps and the memory estimate (pyramid.memory_plan)


@dataclass
class TransferResult:
    """Everything a run produced. ``image`` is what you usually want."""

    image: torch.Tensor  #: the last evaluated image (its loss is history's last entry), CPU, [1, 3, H, W] in [0, 1]
    best_image: torch.Tensor  #: the evaluated image with the lowest total loss
    best_loss: float
    best_step: int
    history: dict[str, list[float]]  #: "content", "style", "tv", "total" → one weighted value per step
    steps: int  #: VGG evaluations done
    seconds: float  #: wall time of the optimisation loop, without the time spent in the callback
    config: TransferConfig  #: the settings used
    device: str
    status: Status = "completed"  #: completed | interrupted | stopped | non_finite | out_of_memory
    message: str = ""
    frames: list[Frame] = field(default_factory=list)  #: snapshots for a replay (``record_every``; see frames.py)
    step_scales: list[int] = field(default_factory=list)  #: pyramid level of each step (aligned with ``history``)
    pyramid: list[ScaleRun] = field(default_factory=list)  #: each level's shape, steps, time, loss and last image
    preview_seconds: float = 0.0  #: wall time spent in the callback (drawing previews), not in ``seconds``

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def save(self, path, best: bool = False):
        """Save ``image`` (or ``best_image``) to ``path``; returns the path written."""
        return save_image(self.best_image if best else self.image, path)

    def show(self, content: torch.Tensor | None = None, style: torch.Tensor | None = None):
        """Show the result (next to the content and style images if given)."""
        images, titles = [self.image], [f"result ({self.steps} steps, {self.seconds:.0f} s)"]
        if style is not None:
            images, titles = [style, *images], ["style", *titles]
        if content is not None:
            images, titles = [content, *images], ["content", *titles]
        return show_images(images, titles)

    def summary(self) -> str:
        last = {key: values[-1] for key, values in self.history.items() if values}
        terms = ", ".join(f"{key} {value:.4g}" for key, value in last.items())
        return (
            f"{self.status}: {self.steps} steps in {self.seconds:.1f} s on {self.device}"
            f"{f' (+{self.preview_seconds:.1f} s drawing previews)' if self.preview_seconds >= 0.05 else ''}; "
            f"final losses: {terms}; best total {self.best_loss:.4g} at step {self.best_step}"
        )


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    config: TransferConfig | None = None,
    *,
    model: VGGFeatures | None = None,
    callback: Callable[[Progress], object] | None = None,
    **overrides,
) -> TransferResult:
    """Stylise ``content`` with ``style`` (Gatys et al., Eq. 7) and return a :class:`TransferResult`.

    Args:
        content, style: sample names (``"tubingen"``), paths, URLs, bytes,
            PIL images or image tensors ``[1, 3, H, W]`` in [0, 1] (tensors
            are used at their size; everything else is resized to
            ``config.size`` / ``config.style_size``). ``style`` may be a list
            of images: their Gram matrices are blended (``config.style_blend``)
            or each painted where its mask says (``config.style_masks``).
        config: a :class:`TransferConfig`; ``overrides`` replace its fields
            (``stylize(c, s, steps=50, style_weight=1e4)``).
        model: a :class:`~nst_helpers.vgg.VGGFeatures`; default
            :func:`~nst_helpers.weights.load_vgg` (environment overrides
            apply). It is left on its device (a copy runs elsewhere).
        callback: called with a :class:`Progress` every
            ``config.preview_every`` steps and once at the end; return
            ``True`` to stop early.

    Interrupting (Ctrl-C, Jupyter's Stop) returns the partial result. With ``config.scales`` (``"auto"`` or
    sizes) the run goes coarse to fine (:mod:`~nst_helpers.pyramid`): the targets are recomputed at every
    size, each size starts from the last one's result upsampled, and ``result.pyramid`` tells each apart.
    """
    config = replace(config or TransferConfig(), **overrides).validate()
    device = pick_device(config.device)
    # Bad images (and masks) fail before any weights are loaded; style_scale, preserve_colors: control.py.
    photo, content_image, style_images, masks = load_inputs(content, style, config)
    model = _on_device(model if model is not None else load_vgg(pooling=config.pooling, device=device), device)
    content_layers = model.check_layers(config.content_layers)
    model.check_layers(config.style_layers)
    # A term with weight 0 needs no features (e.g. style reconstruction needs no relu4_2).
    content_layers = content_layers if config.content_weight > 0 else []
    style_layers = dict(config.style_layers) if config.style_weight > 0 else {}
    layers = list(dict.fromkeys(content_layers + list(style_layers)))
    minimum = model.min_input_size(layers)
    styles_by_label = {("style" if i == 0 else f"style #{i + 1}"): image for i, image in enumerate(style_images)}
    check_min_size(minimum, content=content_image, **styles_by_label)
    height, width = content_image.shape[-2:]
    # Coarse to fine (pyramid.py): no level may shrink an image below what the deepest layer needs.
    shortest = min(min(image.shape[-2:]) for image in [content_image, *style_images]) / max(height, width)
    plan = plan_scales(height, width, config.steps, config.scales, config.scale_steps, math.ceil(minimum / shortest))
    speed = resolve_speed(device, config.precision, config.channels_last, config.winograd, config.compile)
    memory = MemoryModel(model, layers, speed.precision)
    if config.check_memory:  # the final level is the largest: the run's peak
        memory.check(height, width, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def build(scale, previous: torch.Tensor | None) -> tuple[Objective, torch.Tensor]:
        """A level's objective (targets at its size) and start (``init``, or the last level's image upsampled)."""
        level_content, level_styles, level_masks = level_images(scale, content_image, style_images, masks)
        level_content, level_styles = level_content.to(device), [image.to(device) for image in level_styles]
        objective = Objective(
            model,
            level_content,
            level_styles,
            style_blend=config.style_blend,
            style_masks=level_masks,
            content_layers=content_layers,
            style_layers=style_layers,
            content_weight=config.content_weight,
            style_weight=config.style_weight,
            tv_weight=config.tv_weight,
            speed=speed,
        )
        if previous is None:
            return objective, start_image(config, level_content, level_styles[0])
        return objective, upsample(previous, scale).to(device)

    in_colour = colour_callback(callback, photo, config)
    result = run_levels(plan, config, memory, device, build, _optimise, in_colour)
    return restore_result_colours(result, photo, config)  # luminance mode: the content's chroma back


class _NonFinite(Exception):
    pass


class _Timed:
    """A callback that adds up the seconds spent in it (previews), so they are not counted as optimisation."""

    def __init__(self, callback: Callable[[Progress], object]):
        self.callback, self.seconds = callback, 0.0

    def __call__(self, progress: Progress) -> object:
        began = time.perf_counter()
        try:
            return self.callback(progress)
        finally:
            self.seconds += time.perf_counter() - began


def _optimise(
    objective: Objective,
    start: torch.Tensor,
    config: TransferConfig,
    memory: MemoryModel,
    callback: Callable[[Progress], object] | None,
) -> TransferResult:
    """The loop: chunks of ``preview_every`` evaluations, the callback between chunks (its time kept apart)."""
    timed = _Timed(callback) if callback is not None else None
    x = start.requires_grad_(True)
    optimizer = make_optimizer(config.optimizer, x, config.learning_rate, config.preview_every)
    recorder = Recorder(start, FrameBuffer(config.record_every) if config.record_every else None)
    backward = backward_for(x, objective.speed.loss_scaling)  # fp16: dynamic loss scaling (loss_scale.py)
    budget = config.steps

    def evaluate() -> torch.Tensor:
        if recorder.steps >= budget:
            raise BudgetSpent
        while True:  # again only after an fp16 overflow: the same point at half the loss scale
            optimizer.zero_grad(set_to_none=True)
            terms = objective(x)
            total = terms.sum()
            if backward(total, x):
                break
        recorder.record(terms, x)
        return total

    def progress(image: torch.Tensor, done: bool = False) -> Progress:
        return Progress(
            recorder.steps, budget, recorder.latest(), recorder.history(), image, time.perf_counter() - started, done
        )

    status: Status = "completed"
    overflow, started = False, time.perf_counter()
    if timed is not None:  # step 0: the starting image (lets a progress bar start its clock now)
        timed(progress(start.detach().clamp(0, 1).cpu()))
    try:
        while recorder.steps < budget:
            run_chunk(optimizer, evaluate, x, min(config.preview_every, budget - recorder.steps))
            if not recorder.last_total_is_finite():
                raise _NonFinite
            if timed is not None and recorder.steps < budget:
                if timed(progress(recorder.last_image.clamp(0, 1).cpu())) is True:
                    status = "stopped"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    except _NonFinite:
        status = "non_finite"
    except RuntimeError as error:
        # Adam's step size lr / (1 - beta1) beyond float32 (lr ~1e38) raises "... without overflow".
        overflow = "without overflow" in str(error)
        if not overflow and not is_out_of_memory(error):
            raise
        status = "non_finite" if overflow else "out_of_memory"
    seconds = time.perf_counter() - started - (timed.seconds if timed is not None else 0.0)
    if status == "out_of_memory":  # outside the except block, so the failed step's tensors can be freed
        optimizer.state.clear()
        release_memory(start.device)
    message = _explain(status, recorder, config, memory, start, overflow)
    if status not in ("completed", "stopped"):
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    result = _result(recorder, config, seconds, status, message, str(start.device))
    if timed is not None:
        try:
            timed(Progress(result.steps, budget, recorder.latest(), result.history, result.image, seconds, True))
        except KeyboardInterrupt:
            pass
        result.preview_seconds = timed.seconds
    return result


def _explain(
    status: Status, recorder: Recorder, config: TransferConfig, memory: MemoryModel, start: torch.Tensor, overflow: bool
) -> str:
    """The result's message: what happened and what to do about it ("" for a completed run)."""
    steps = recorder.steps
    if status == "stopped":
        return f"Stopped by the callback after {steps} steps."
    if status == "interrupted":
        return f"Interrupted after {steps} of {config.steps} steps; returning the best image so far."
    if status == "non_finite" and overflow:
        return (
            f"The optimiser's update overflowed float32 at step {steps} (lr={config.learning_rate:g}); "
            "stopped and kept the best image before that. Lower the learning rate."
        )
    if status == "non_finite":
        return (
            f"The loss became NaN or infinite at step {recorder.first_non_finite_step() or steps}; stopped "
            "and kept the best image before that. Lower the learning rate or the weights."
        )
    if status == "out_of_memory":
        height, width = start.shape[-2:]
        return memory.out_of_memory_message(height, width, start.device, steps)
    return ""


def _result(
    recorder: Recorder, config: TransferConfig, seconds: float, status: Status, message: str, device: str
) -> TransferResult:
    # After a NaN/inf loss the last evaluated image is not trustworthy: hand back the best one before it.
    last = recorder.last_image
    final = last if status != "non_finite" and bool(torch.isfinite(last).all()) else recorder.best_image
    return TransferResult(
        image=final.detach().clamp(0, 1).cpu(),
        best_image=recorder.best_image.clamp(0, 1).cpu(),
        best_loss=float(recorder.best_loss),
        best_step=int(recorder.best_step),
        history=recorder.history(),
        steps=recorder.steps,
        seconds=seconds,
        config=config,
        device=device,
        status=status,
        message=message,
        frames=recorder.replay(),
    )


def _on_device(model: VGGFeatures, device: torch.device) -> VGGFeatures:
    """``model`` if it already lives on ``device``, else a copy there (the caller's model is not moved)."""
    current = next(model.parameters()).device
    if current.type == device.type and (device.index is None or current.index == device.index):
        return model
    return copy.deepcopy(model).to(device)
