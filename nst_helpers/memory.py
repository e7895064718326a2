"""The memory model: how many bytes a run needs at a size, and which size fits in what is free.

One :class:`MemoryModel` per (network, layers, precision) answers every
memory question the package asks: ``stylize`` refuses sizes that would run
out of memory halfway and suggests one that fits, an out-of-memory error
mid-run gets the same advice, and the benchmark compares the estimate with
measured peaks (``python benchmarks/bench.py --memory-model``).

Measured, device-independently (bytes of the tensors a step creates): one
VGG19 step peaks at 1.05x the activation bytes counted by
:meth:`MemoryModel.activation_elements` in fp32, and at 1.48x the bf16
bytes in bf16 (the Grams and losses stay fp32) = 0.74x the fp32 bytes.
Half precision is therefore counted at 3 bytes per element, not 2, and
:attr:`MemoryModel.FACTOR` adds ~45% for what a CPU measurement cannot see:
the CUDA allocator's rounding and fragmentation and cuDNN's workspaces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from .devices import format_bytes, free_memory
from .errors import SettingsError
from .speed import fast_half
from .vgg import VGGFeatures

__all__ = ["MemoryModel", "estimate_memory"]


class MemoryModel:
    """Peak memory of a run of ``model`` up to the deepest of ``layers``, in ``precision``.

    ``precision="auto"`` counts as fp32 (the safe side); pass the resolved
    precision (:func:`nst_helpers.speed.resolve_speed`) to count bf16 runs
    as such.
    """

    FACTOR = 1.5  #: measured peak / activation bytes, with room for the CUDA allocator
    #: Image-sized fp32 buffers of a whole run, measured at 64-256 px: ~160 for L-BFGS (its 2 x 50
    #: history vectors, line-search copies, best/last/start image, gradient), ~20 for Adam.
    IMAGE_COPIES = 160
    SLACK = 64 * 2**20  #: bytes for everything else (Grams, targets, small buffers)

    def __init__(self, model: VGGFeatures, layers: Iterable[str], precision: str = "fp32") -> None:
        self.model = model
        self.layers = model.check_layers(layers)
        self.precision = precision
        self.half = precision in ("bf16", "fp16")

    def activation_elements(self, height: int, width: int) -> int:
        """Elements of every module output up to the deepest layer (batch 1): what autograd stores."""
        if not self.layers:
            return 0
        last = max(self.model.index[name] for name in self.layers)
        channels, h, w, activations = 3, height, width, 0
        for module in list(self.model.layers)[: last + 1]:
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
                h, w = h // 2, w // 2
            activations += channels * h * w
        return activations

    def fixed_bytes(self, height: int, width: int) -> int:
        """Bytes besides one step's activations: the weights (and their half-precision copy made by
        ``VGGFeatures.for_compute``), the optimiser's image-sized buffers, and some slack."""
        parameters = list(self.model.parameters())
        stored = sum(p.numel() * p.element_size() for p in parameters)
        copies = 2 * sum(p.numel() for p in parameters) if self.half else 0
        return stored + copies + self.IMAGE_COPIES * 3 * height * width * 4 + self.SLACK

    def estimate(self, height: int, width: int) -> int:
        """Estimated peak bytes of a run at ``height x width``: one VGG forward + backward to the input,
        the optimiser's buffers and the weights."""
        element = 3 if self.half else 4  # half precision: the Grams and losses stay fp32
        return int(self.FACTOR * self.activation_elements(height, width) * element + self.fixed_bytes(height, width))

    def largest_size(self, height: int, width: int, budget: float, below: int | None = None) -> int | None:
        """Largest ``size`` (longest side, a multiple of 16, at most ``below``) of an image shaped like
        ``height x width`` whose estimate fits in ``budget`` bytes; None when not even the smallest
        usable image fits (the weights alone are too big)."""
        longest = max(height, width)
        minimum = self.model.min_input_size(self.layers)
        scale = math.sqrt(budget / max(self.estimate(height, width), 1))
        size = min(int(longest * scale), below or longest) // 16 * 16
        while size >= 16:  # step down from the guess: the weights are a fixed cost, so memory is not ∝ pixels
            h, w = max(1, round(height * size / longest)), max(1, round(width * size / longest))
            if min(h, w) >= minimum and self.estimate(h, w) <= budget:
                return size
            size -= 16
        return None

    def check(self, height: int, width: int, device: torch.device) -> None:
        """Raise :class:`SettingsError` with a size that fits when ``height x width`` needs more than
        90 % of the memory free on ``device`` (does nothing where the device does not say)."""
        free = free_memory(device)
        if free is None:
            return
        needed = self.estimate(height, width)
        if needed > 0.9 * free:
            fits = self.largest_size(height, width, 0.9 * free)
            if fits is None:
                advice = (
                    f"Not even a small image fits in the free memory on {device}: free some (close other "
                    "notebooks or programs) or use another device"
                )
            else:
                advice = f"Use size={fits} or smaller (a tensor input is used at its own size: resize it first)"
            raise SettingsError(
                f"A {height}x{width} image needs about {format_bytes(needed)} on {device}, but only "
                f"{format_bytes(free)} is free. {advice}, or pass check_memory=False to try anyway."
            )

    def out_of_memory_message(self, height: int, width: int, device: torch.device, step: int) -> str:
        """What to say after running out of memory at ``height x width`` (memory already released): a
        size that fits what is free now, and for an fp32 run the half precision ``device`` computes
        natively (fp16 on a T4 or V100, bf16 from compute capability 8.0 and on CPUs with AMX;
        never a precision the device only emulates)."""
        free = free_memory(device) or 0
        below = max(16, max(height, width) * 3 // 4)  # it did not fit: always suggest smaller than now
        fits = self.largest_size(height, width, 0.8 * free, below) if free else None
        fits = fits or max(16, below // 16 * 16)
        done = f" after {step} steps (the best image so far is kept)" if step else ""
        half = fast_half(device)
        other = f", or precision='{half}' (about 3/4 of the memory)" if half and not self.half else ""
        return (
            f"Ran out of memory on {device} at {height}x{width} px{done}. Memory was released; "
            f"try size={fits} or smaller{other}. The coarse-to-fine pyramid (scales='auto') reaches a "
            "large size sooner, but its last scale needs as much memory as a single-scale run."
        )


def estimate_memory(model: VGGFeatures, height: int, width: int, layers: Iterable[str], precision: str = "fp32") -> int:
    """Estimated peak bytes of a run at ``height x width`` (see :class:`MemoryModel`)."""
    return MemoryModel(model, layers, precision).estimate(height, width)
