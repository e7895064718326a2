r"""Faster CPU convolutions for the VGG pass: Winograd's algorithm, through NNPACK.

On a CPU one step of the loop is almost all 3x3 convolutions: forward, and
backward to their input (the weights are frozen). PyTorch runs them through
oneDNN, which computes them directly and already reaches most of the CPU's
peak FLOP rate, so no layout or compiler trick makes them much faster.
Winograd's minimal filtering algorithm F(6x6, 3x3) does: it computes each
6x6 output tile from an 8x8 input tile with 64 multiplications instead of
36 x 9 = 324, and PyTorch ships it in NNPACK. NNPACK has AVX2 kernels only,
so where it pays depends on the instruction set oneDNN gets to use:

* **AVX2** (e.g. AMD Zen 3), one thread: NNPACK is 1.2-3.6x (mostly 2-3x)
  faster than oneDNN on every VGG map of 32x32 pixels and more (the conv4
  block at 256 px included), forward and input gradient alike, and no
  faster on 16x16 and smaller (``benchmarks/layers.py``;
  benchmarks/README.md, "Per-layer profile"). A step: about 2x the
  tutorial baseline. With two threads oneDNN gains ~2x from the second
  core and NNPACK only 1.0-1.5x on small maps: on 32x32 maps it is then
  0.8-1.06x oneDNN, so only maps of 64x64 and more go to NNPACK.
* **AVX-512** (measured on a Xeon): oneDNN was about as fast (a whole step
  with Winograd: 0.86-1.14x), so only maps of 64x64 and more go to NNPACK;
  such CPUs mostly have native bf16, whose pass is much faster anyway.
* Everywhere the 3-channel ``conv1_1`` and its input gradient stay with oneDNN.

:data:`THRESHOLDS` holds the rule per instruction set, as PyTorch names it
(``torch.backends.cpu.get_cpu_capability()``: "AVX2", "AVX512", ...), and
for AVX2 per thread count (:func:`thresholds`), and
:func:`~nst_helpers.stylize` turns Winograd on by default only for fp32 runs.

The gradient of a 3x3, stride-1, padding-1 convolution with respect to its
input is itself such a convolution, with the kernel's input and output
channels swapped and the kernel flipped:
``dL/dx = conv2d(dL/dy, W.transpose(0, 1).flip(2, 3), padding=1)``, so the
backward pass goes through Winograd too. Winograd's transforms cost a little
precision (relative error ~1e-5 per layer instead of ~1e-6); stylisations
stay visually identical (``python benchmarks/bench.py --compare``).

Use :func:`winograd_convolutions` as a context manager around the VGG
forward pass. Inside it, every ``F.conv2d`` that qualifies (CPU, float32,
batch 1, 3x3, stride 1, padding 1, dilation 1, one group, weights that do
not require gradients, no autocast) and that the rule sends there uses
NNPACK, forward and input gradient decided separately; everything else runs
as usual. Without NNPACK (:func:`available` is False) it changes nothing.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

__all__ = [
    "available",
    "winograd_convolutions",
    "WinogradConv2d",
    "Thresholds",
    "THRESHOLDS",
    "thresholds",
    "uses_nnpack",
]


class Thresholds(NamedTuple):
    """Which convolutions go to NNPACK: maps of at least ``forward_pixels`` (the forward pass) or
    ``backward_pixels`` (the input gradient) pixels, with at least ``min_channels`` input and output
    channels; oneDNN runs the rest."""

    forward_pixels: int
    backward_pixels: int
    min_channels: int = 16  # conv1_1 (3 input channels) and its 3-channel input gradient: oneDNN


#: The rule per instruction set (``torch.backends.cpu.get_cpu_capability()``) and, for AVX2, per thread
#: count, measured per layer and direction with ``benchmarks/layers.py`` (see benchmarks/README.md,
#: "Per-layer profile").
THRESHOLDS: dict[str, Thresholds] = {
    # 2 cores of an AVX-512 Xeon: NNPACK (AVX2 kernels only) wins on the large maps only.
    "AVX512": Thresholds(64 * 64, 64 * 64),
    # AVX2, one thread: NNPACK wins from 32x32 on (1.2-3.6x per layer; 16x16: 0.6-1.2x; 24x24: a whole
    # step at 384 px was 3-12 % faster with conv5_1 left to oneDNN), in both directions.
    "AVX2-1THREAD": Thresholds(32 * 32, 32 * 32),
    # AVX2, two threads or more: oneDNN uses the second core better than NNPACK does on small maps
    # (quiet machine, whole steps: 64x64 as fast or faster than 32x32 in 4 of 4 A/B runs at 256/512 px).
    "AVX2": Thresholds(64 * 64, 64 * 64),
}
#: Any other capability (NNPACK needs AVX2 on x86 anyway): the cautious AVX-512 rule.
DEFAULT_THRESHOLDS = THRESHOLDS["AVX512"]

_state: dict[str, bool | None] = {"ok": None}
_flipped = WeakIdKeyDictionary()  # weight → (version, transposed and flipped copy) for the backward pass


def available() -> bool:
    """Whether NNPACK works here (it initialises itself on the first call; needs AVX2 on x86)."""
    if _state["ok"] is None:
        try:
            _state["ok"] = bool(torch._nnpack_available())
        except (AttributeError, RuntimeError):
            _state["ok"] = False
    return bool(_state["ok"])


def thresholds(capability: str | None = None, threads: int | None = None) -> Thresholds:
    """The rule for ``capability`` (default: this CPU's, as PyTorch reports it: "AVX2", "AVX512", ...)
    with ``threads`` threads (default: ``torch.get_num_threads()``)."""
    if capability is None:
        capability = torch.backends.cpu.get_cpu_capability()
    if threads is None:
        threads = torch.get_num_threads()
    capability = capability.upper()
    if threads == 1 and f"{capability}-1THREAD" in THRESHOLDS:
        return THRESHOLDS[f"{capability}-1THREAD"]
    return THRESHOLDS.get(capability, DEFAULT_THRESHOLDS)


def uses_nnpack(
    in_channels: int, out_channels: int, height: int, width: int, backward: bool = False, rule: Thresholds | None = None
) -> bool:
    """Whether ``rule`` (default: this CPU's) sends a 3x3 convolution of this shape to NNPACK.

    ``backward``: the input gradient of a layer, itself a convolution from ``in_channels`` (the layer's
    outputs) to ``out_channels`` (its inputs).
    """
    rule = thresholds() if rule is None else rule
    pixels = rule.backward_pixels if backward else rule.forward_pixels
    return height * width >= pixels and min(in_channels, out_channels) >= rule.min_channels


def _nnpack(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor | None:
    try:
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, [1, 1])
    except RuntimeError:  # an NNPACK that cannot run here after all: fall back for good
        _state["ok"] = False
        return None


def _transposed_flipped(weight: torch.Tensor) -> torch.Tensor:
    entry = _flipped.get(weight)
    if entry is None or entry[0] != weight._version:
        entry = (weight._version, weight.detach().transpose(0, 1).flip(2, 3).contiguous())
        _flipped[weight] = entry
    return entry[1]


class WinogradConv2d(torch.autograd.Function):
    """``conv2d(x, weight, bias, padding=1)`` for a 3x3 kernel; gradient to ``x`` only.

    ``forward_nnpack`` and ``backward_nnpack`` say which of the two convolutions NNPACK computes (oneDNN
    the other ones); the caller decides, with :func:`uses_nnpack`.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, forward_nnpack: bool = True, backward_nnpack: bool = True):
        ctx.weight = weight  # frozen: kept by reference, not saved as an activation
        ctx.backward_nnpack = backward_nnpack
        out = _nnpack(x, weight, bias) if forward_nnpack else None
        return F.conv2d(x, weight, bias, padding=1) if out is None else out

    @staticmethod
    def backward(ctx, grad):
        weight = ctx.weight
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        grad_input = _nnpack(grad, _transposed_flipped(weight), None) if ctx.backward_nnpack else None
        if grad_input is None:
            shape = (grad.shape[0], weight.shape[1], *grad.shape[-2:])
            grad_input = conv2d_input(shape, weight, grad, padding=1)
        return grad_input, None, None, None, None


def _argument(args, kwargs, index, name, default):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _pair(value) -> tuple:
    return (value, value) if isinstance(value, int) else tuple(value)


def _qualifies(args, kwargs) -> bool:
    x, weight = args[0], args[1]
    bias = _argument(args, kwargs, 2, "bias", None)
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[0] == 1
        and weight.dtype == torch.float32
        and weight.shape[-2:] == (3, 3)
        and not weight.requires_grad
        and (bias is None or not bias.requires_grad)
        and _pair(_argument(args, kwargs, 3, "stride", 1)) == (1, 1)
        and _pair(_argument(args, kwargs, 4, "padding", 0)) == (1, 1)
        and _pair(_argument(args, kwargs, 5, "dilation", 1)) == (1, 1)
        and _argument(args, kwargs, 6, "groups", 1) == 1
        and not torch.is_autocast_enabled("cpu")
    )


class _WinogradMode(TorchFunctionMode):
    def __init__(self, rule: Thresholds) -> None:
        super().__init__()
        self.rule = rule

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d and _state["ok"] and _qualifies(args, kwargs):
            x, weight = args[0], args[1]
            c_out, c_in = weight.shape[:2]
            height, width = x.shape[-2:]
            forward = uses_nnpack(c_in, c_out, height, width, rule=self.rule)
            backward = uses_nnpack(c_out, c_in, height, width, backward=True, rule=self.rule)
            if forward or backward:
                return WinogradConv2d.apply(x, weight, _argument(args, kwargs, 2, "bias", None), forward, backward)
        return func(*args, **kwargs)


@contextlib.contextmanager
def winograd_convolutions(enabled: bool = True, rule: Thresholds | None = None):
    """Inside this block, qualifying CPU convolutions use NNPACK's Winograd algorithm (see the module docstring).

    ``rule``: which maps go to NNPACK (default: :func:`thresholds` of this CPU).
    """
    if not (enabled and available()):
        yield
        return
    with _WinogradMode(thresholds() if rule is None else rule):
        yield
