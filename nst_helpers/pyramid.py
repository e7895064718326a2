"""Coarse-to-fine runs (a pyramid): the sizes a run visits, its steps at each, and its images at each size.

A big picture is painted small first: optimise at the coarsest size,
upsample the result (antialiased bicubic) as the start of the next size,
recompute the targets there (content features :math:`P^l` and style Grams
:math:`A^l` of Eq. 5, from the content and style images resized by the
same factor, so brush strokes keep their size relative to the picture) and
continue. The layout, which needs many steps, settles in cheap small steps;
the expensive full-size steps only refine the detail (neural-style's
multires scripts, pystiche's image pyramids, crowsonkb's
style-transfer-pytorch).

* :func:`plan_scales`: the levels (:class:`Scale`: size and steps),
  coarsest first. ``scales="auto"`` halves the final size while the result
  stays ≥ :data:`MIN_SIDE` px, so a 512 px run visits 128, 256 and 512 px
  and anything under 256 px runs at one size; ``"none"`` is a single-scale
  run; a sequence of sizes gives the coarser levels by hand. ``steps``
  counts every VGG evaluation of the whole run; :func:`split_steps` gives
  most of them to the cheap levels.
* :func:`level_images`: the content, style(s) and masks at a level;
  :func:`upsample`: one level's result as the next level's start.
* :func:`memory_plan`: the estimated peak memory of every level
  (:class:`~nst_helpers.memory.MemoryModel`), whether the final one fits and
  what to change if not; :func:`describe_run`: the same for a config, before
  any weights are loaded (the sliders panel shows it).
* running the levels one after the other, as one run, is
  :mod:`nst_helpers.pyramid_run`'s job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .config import TransferConfig
from .devices import format_bytes, free_memory
from .errors import SettingsError
from .images import resize_image
from .memory import MemoryModel
from .speed import resolve_speed
from .vgg import VGGFeatures, build_features

__all__ = [
    "MIN_SIDE",
    "FINAL_SHARE",
    "Scale",
    "parse_scales",
    "scale_sizes",
    "split_steps",
    "plan_scales",
    "level_images",
    "upsample",
    "memory_plan",
    "describe_run",
]

MIN_SIDE = 128  #: ``scales="auto"``: halve the final size while the level's longest side stays ≥ this
FINAL_SHARE = 0.2  #: ``scales="auto"``: the share of the steps spent at the final (most expensive) size


@dataclass(frozen=True)
class Scale:
    """One level of a pyramid: the image's shape there and the VGG evaluations it gets."""

    level: int  #: 0 = coarsest
    height: int
    width: int
    steps: int

    @property
    def size(self) -> int:
        """Longest side in pixels."""
        return max(self.height, self.width)


def parse_scales(text: str) -> Literal["auto", "none"] | tuple[int, ...]:
    """The command line's ``--scales``: ``"auto"``, ``"none"`` or sizes ``"128,256"`` → ``(128, 256)``."""
    word = text.strip().lower()
    if word == "auto":
        return "auto"
    if word == "none":
        return "none"
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SettingsError(
            f"--scales takes auto, none or sizes in px joined by commas (e.g. 128,256); got {text!r}."
        ) from None
    return sizes


def scale_sizes(final: int, scales: str | Sequence[int]) -> list[int]:
    """Longest sides of the levels, coarsest first, ending with ``final``.

    ``"auto"``: ``final`` halved while the half is ≥ :data:`MIN_SIDE`
    (512 → 128, 256, 512; 384 → 192, 384; 255 → 255). ``"none"``: ``[final]``.
    Sizes: the coarser levels (sorted; one equal to ``final`` is dropped,
    since the final size is always the last level).
    """
    if isinstance(scales, str):
        if scales not in ("auto", "none"):
            raise SettingsError(f"scales must be 'auto', 'none' or a list of sizes in px, got {scales!r}.")
        sizes = [final]
        while scales == "auto" and sizes[0] // 2 >= MIN_SIDE:
            sizes.insert(0, sizes[0] // 2)
        return sizes
    too_big = [size for size in scales if size > final]
    if too_big:
        raise SettingsError(
            f"scales {too_big} are larger than the final size {final} px; scales lists the coarser sizes "
            "(the final size is always the last level)."
        )
    return sorted(set(scales) - {final}) + [final]


def split_steps(steps: int, levels: int) -> tuple[int, ...]:
    """``steps`` evaluations over ``levels`` sizes, coarsest first: the final size gets
    :data:`FINAL_SHARE` of them (at least one), the coarser sizes share the rest equally."""
    if levels == 1:
        return (steps,)
    final = max(1, round(steps * FINAL_SHARE))
    coarse = steps - final
    return tuple(coarse // (levels - 1) + (1 if i < coarse % (levels - 1) else 0) for i in range(levels - 1)) + (final,)


def plan_scales(
    height: int,
    width: int,
    steps: int,
    scales: str | Sequence[int],
    scale_steps: Sequence[int] | None = None,
    min_size: int = 1,
) -> list[Scale]:
    """The levels of a run whose final image is ``height x width``, coarsest first.

    ``min_size`` is the smallest longest side a level may have (so that every
    image still reaches the deepest layer there): ``"auto"`` leaves out
    levels below it, given sizes below it are an error. ``scale_steps``
    gives the steps of each level by hand (then ``steps`` is their sum);
    otherwise :func:`split_steps` splits ``steps``, and ``"auto"`` drops
    coarse levels when there are fewer steps than levels.
    """
    final = max(height, width)
    sizes = scale_sizes(final, scales)
    small = [size for size in sizes[:-1] if size < min_size]
    if small and scales != "auto":
        raise SettingsError(
            f"scales {small} are too small: the images would not reach the deepest layer; use {min_size} px or more."
        )
    sizes = [size for size in sizes[:-1] if size >= min_size] + [final]
    if scale_steps is not None:
        if len(scale_steps) != len(sizes):
            raise SettingsError(
                f"scale_steps has {len(scale_steps)} entries but the run has {len(sizes)} levels "
                f"({', '.join(map(str, sizes))} px); give one per level, coarsest first."
            )
        counts = tuple(scale_steps)
    else:
        if scales == "auto":
            sizes = sizes[-steps:]  # fewer steps than levels: the finest levels only
        if len(sizes) > steps:
            raise SettingsError(f"{len(sizes)} scales need at least {len(sizes)} steps, got steps={steps}.")
        counts = split_steps(steps, len(sizes))
    return [
        Scale(level, max(1, round(height * size / final)), max(1, round(width * size / final)), count)
        for level, (size, count) in enumerate(zip(sizes, counts))
    ]


def level_images(
    scale: Scale, content: torch.Tensor, styles: Sequence[torch.Tensor], masks: Sequence[torch.Tensor] | None
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor] | None]:
    """The content image, the style image(s) and the masks at ``scale``'s level (antialiased).

    The content is resized to the level's shape; each style image by the
    same factor (its size relative to the content, i.e. ``style_scale``,
    stays); the masks to the level's shape.
    """
    factor = scale.size / max(content.shape[-2:])
    if factor == 1:
        return content, list(styles), None if masks is None else list(masks)
    shape = (scale.height, scale.width)
    resized = [resize_image(s, max_size=max(1, round(max(s.shape[-2:]) * factor))) for s in styles]
    resized_masks = None if masks is None else [_resize_mask(mask, shape) for mask in masks]
    return resize_image(content, size=shape), resized, resized_masks


def _resize_mask(mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return torch.nn.functional.interpolate(mask.float(), size=shape, mode="area")  # the share of each pixel


def upsample(image: torch.Tensor, scale: Scale) -> torch.Tensor:
    """A level's result resized to ``scale``'s shape (antialiased bicubic, clamped to [0, 1]): the next start."""
    return resize_image(image.detach(), size=(scale.height, scale.width)).clone()


def memory_plan(memory: MemoryModel, plan: Sequence[Scale], device: torch.device) -> str:
    """The levels with their steps and estimated peak memory, and whether the final level fits on ``device``.

    Levels run one after the other (a level's tensors are freed before the
    next one's arrive), so the run's peak is the final level's. Where it
    does not fit in what ``device`` has free, says which size does and what
    else to change. E.g. ``"3 scales: 128x171 px (120 steps, 0.3 GiB) →
    256x341 px (120, 0.5 GiB) → 512x683 px (60, 1.4 GiB); peak memory (fp32,
    estimated) 1.4 GiB: fits in the 20.1 GiB free on cpu."``
    """
    needs = [memory.estimate(scale.height, scale.width) for scale in plan]
    levels = " → ".join(
        f"{s.height}x{s.width} px ({s.steps}{' steps' if i == 0 else ''}, {format_bytes(n)})"
        for i, (s, n) in enumerate(zip(plan, needs))
    )
    text = f"{len(plan)} scale{'s' if len(plan) > 1 else ''}: {levels}; peak memory ({memory.precision}, estimated) "
    text += format_bytes(needs[-1])
    free = free_memory(device)
    if free is None:
        return f"{text} ({device} does not say how much is free)."
    if needs[-1] <= 0.9 * free:
        return f"{text}: fits in the {format_bytes(free)} free on {device}."
    final = plan[-1]
    fits = memory.largest_size(final.height, final.width, 0.9 * free)
    what = f"size={fits} or smaller" if fits else "another device (not even a small image fits here)"
    half = ", or precision='bf16' if the chip computes it natively" if memory.precision == "fp32" else ""
    return f"{text}: does NOT fit in the {format_bytes(free)} free on {device}. Use {what}{half}."


def describe_run(config: TransferConfig, height: int, width: int, device: torch.device, model=None) -> str:
    """:func:`memory_plan` of a run of ``config`` whose content is ``height x width``, before anything runs.

    ``model``: the :class:`~nst_helpers.vgg.VGGFeatures` the run will use; None counts with VGG19's shapes
    (an untrained copy, made once: no weights are loaded; VGG16 needs less).
    """
    model = model if model is not None else _vgg19_shapes()
    content = list(config.content_layers) if config.content_weight > 0 else []
    layers = list(dict.fromkeys(content + (list(config.style_layers) if config.style_weight > 0 else [])))
    precision = resolve_speed(device, config.precision, config.channels_last, config.winograd, False).precision
    smallest = math.ceil(model.min_input_size(layers) * max(height, width) / min(height, width))
    plan = plan_scales(height, width, config.steps, config.scales, config.scale_steps, smallest)
    return memory_plan(MemoryModel(model, layers, precision), plan, device)


@functools.cache
def _vgg19_shapes() -> VGGFeatures:
    return VGGFeatures(build_features("vgg19"))  # (PyTorch's "meta" device would take seconds to set up)
