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
from .control import as_image, colour_callback, colour_inputs, load_masks, load_styles, restore_result_colours
from .devices import is_out_of_memory, pick_device, release_memory
from .errors import SettingsError
from .frames import Frame, FrameBuffer
from .images import ImageSource, resize_image, save_image, show_images
from .memory import MemoryModel
from .objective import Objective
from .optimizers import BudgetSpent, make_optimizer, run_chunk
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


@dataclass
class TransferResult:
    """Everything a run produced. ``image`` is what you usually want."""

    image: torch.Tensor  #: the last evaluated image (its loss is history's last entry), CPU, [1, 3, H, W] in [0, 1]
    best_image: torch.Tensor  #: the evaluated image with the lowest total loss
    best_loss: float
    best_step: int
    history: dict[str, list[float]]  #: "content", "style", "tv", "total" → one weighted value per step
    steps: int  #: VGG evaluations done
    seconds: float  #: wall time of the optimisation loop
    config: TransferConfig  #: the settings used
    device: str
    status: Status = "completed"  #: completed | interrupted | stopped | non_finite | out_of_memory
    message: str = ""
    frames: list[Frame] = field(default_factory=list)  #: snapshots for a replay (``record_every``; see frames.py)

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
            f"{self.status}: {self.steps} steps in {self.seconds:.1f} s on {self.device}; "
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

    Interrupting (Ctrl-C, Jupyter's Stop) returns the partial result.
    """
    config = replace(config or TransferConfig(), **overrides).validate()
    device = pick_device(config.device)
    photo = as_image(content, config.size)  # bad images (and masks) fail before any weights are loaded
    style_images = load_styles(style, config)
    masks = load_masks(config, photo)
    content_image, style_images = colour_inputs(config, photo, style_images)  # preserve_colors (control.py)
    style_image = style_images[0]
    model = _on_device(model if model is not None else load_vgg(pooling=config.pooling, device=device), device)
    content_layers = model.check_layers(config.content_layers)
    model.check_layers(config.style_layers)
    # A term with weight 0 needs no features (e.g. style reconstruction needs no relu4_2).
    content_layers = content_layers if config.content_weight > 0 else []
    style_layers = dict(config.style_layers) if config.style_weight > 0 else {}
    layers = list(dict.fromkeys(content_layers + list(style_layers)))
    styles_by_label = {("style" if i == 0 else f"style #{i + 1}"): image for i, image in enumerate(style_images)}
    _check_min_size(model.min_input_size(layers), content=content_image, **styles_by_label)
    speed = resolve_speed(device, config.precision, config.channels_last, config.winograd, config.compile)
    memory = MemoryModel(model, layers, speed.precision)
    height, width = content_image.shape[-2:]
    if config.check_memory:
        memory.check(height, width, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        content_image, style_image = content_image.to(device), style_image.to(device)
        objective = Objective(
            model,
            content_image,
            [style_image] + [image.to(device) for image in style_images[1:]],
            style_blend=config.style_blend,
            style_masks=masks,
            content_layers=content_layers,
            style_layers=style_layers,
            content_weight=config.content_weight,
            style_weight=config.style_weight,
            tv_weight=config.tv_weight,
            speed=speed,
        )
        start = _start_image(config, content_image, style_image)
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
        out_of_memory = True
    else:
        out_of_memory = False
    if out_of_memory:  # outside the except block, so the failed step's tensors can be freed
        release_memory(device)
        raise SettingsError(memory.out_of_memory_message(height, width, device, 0))
    result = _optimise(objective, start, config, memory, colour_callback(callback, photo, config))
    return restore_result_colours(result, photo, config)  # luminance mode: the content's chroma back


class _NonFinite(Exception):
    pass


def _optimise(
    objective: Objective,
    start: torch.Tensor,
    config: TransferConfig,
    memory: MemoryModel,
    callback: Callable[[Progress], object] | None,
) -> TransferResult:
    """The loop: chunks of ``preview_every`` evaluations, the callback between chunks."""
    x = start.requires_grad_(True)
    optimizer = make_optimizer(config.optimizer, x, config.learning_rate, config.preview_every)
    recorder = Recorder(start, FrameBuffer(config.record_every) if config.record_every else None)
    budget = config.steps

    def evaluate() -> torch.Tensor:
        if recorder.steps >= budget:
            raise BudgetSpent
        optimizer.zero_grad(set_to_none=True)
        terms = objective(x)
        total = terms.sum()
        total.backward()
        recorder.record(terms, x)
        return total

    def progress(image: torch.Tensor, done: bool = False) -> Progress:
        return Progress(
            recorder.steps, budget, recorder.latest(), recorder.history(), image, time.perf_counter() - started, done
        )

    status: Status = "completed"
    overflow, started = False, time.perf_counter()
    if callback is not None:  # step 0: the starting image (lets a progress bar start its clock now)
        callback(progress(start.detach().clamp(0, 1).cpu()))
    try:
        while recorder.steps < budget:
            run_chunk(optimizer, evaluate, x, min(config.preview_every, budget - recorder.steps))
            if not recorder.last_total_is_finite():
                raise _NonFinite
            if callback is not None and recorder.steps < budget:
                if callback(progress(recorder.last_image.clamp(0, 1).cpu())) is True:
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
    seconds = time.perf_counter() - started
    if status == "out_of_memory":  # outside the except block, so the failed step's tensors can be freed
        optimizer.state.clear()
        release_memory(start.device)
    message = _explain(status, recorder, config, memory, start, overflow)
    if status not in ("completed", "stopped"):
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    result = _result(recorder, config, seconds, status, message, str(start.device))
    if callback is not None:
        try:
            callback(Progress(result.steps, budget, recorder.latest(), result.history, result.image, seconds, True))
        except KeyboardInterrupt:
            pass
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


def _check_min_size(minimum: int, **images: torch.Tensor) -> None:
    for label, image in images.items():
        short, long = sorted(image.shape[-2:])
        if short < minimum:
            needed = math.ceil(minimum * long / short)  # the longest side that makes the short side big enough
            fix = (
                f"use size={needed} or more"
                if needed <= 4096
                else "crop it to a less elongated shape first (e.g. with PIL's Image.crop)"
            )
            raise SettingsError(
                f"The {label} image is {image.shape[-2]}x{image.shape[-1]} px after resizing, but the deepest "
                f"layer needs at least {minimum} px on each side: {fix}."
            )


def _start_image(config: TransferConfig, content_image: torch.Tensor, style_image: torch.Tensor) -> torch.Tensor:
    if config.init == "content":
        return content_image.clone()
    if config.init == "noise":
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        return torch.rand(content_image.shape, generator=generator).to(content_image.device)
    return resize_image(style_image, size=tuple(content_image.shape[-2:])).clone()
