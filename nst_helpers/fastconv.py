r"""Faster CPU convolutions for the VGG pass: Winograd's algorithm, through NNPACK.

On a CPU one step of the loop is almost all 3x3 convolutions: forward, and
backward to their input (the weights are frozen). PyTorch runs them through
oneDNN, which computes them directly and already reaches most of the CPU's
peak FLOP rate, so no layout or compiler trick makes them much faster.
Winograd's minimal filtering algorithm F(6x6, 3x3) does: it computes each
6x6 output tile from an 8x8 input tile with 64 multiplications instead of
36 x 9 = 324, and PyTorch ships it in NNPACK. Measured on 2 Zen 3 cores
(see ``benchmarks/``) it runs the VGG convolutions on maps of 32x32 and more
1.6-3x faster than oneDNN; on smaller maps, and for the 3-channel gradient
of ``conv1_1``, oneDNN stays faster and is kept. NNPACK has AVX2 kernels
only: on an AVX-512 Xeon oneDNN was as fast (0.86-1.14x for a whole step),
and such CPUs with bf16 use the much faster bf16 pass instead, so
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
not require gradients, no autocast) uses NNPACK; everything else runs as
usual. Without NNPACK (:func:`available` is False) it changes nothing.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["available", "winograd_convolutions", "WinogradConv2d"]

#: NNPACK is used for maps with at least this many pixels (smaller ones: oneDNN is faster).
MIN_PIXELS = 64 * 64
#: ... and at least this many input and output channels (conv1_1 and its 3-channel input gradient: oneDNN).
MIN_CHANNELS = 16

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


def _use_nnpack(in_channels: int, out_channels: int, height: int, width: int) -> bool:
    return (
        _state["ok"] is True
        and height * width >= MIN_PIXELS
        and in_channels >= MIN_CHANNELS
        and out_channels >= MIN_CHANNELS
    )


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
    """``conv2d(x, weight, bias, padding=1)`` for a 3x3 kernel; gradient to ``x`` only."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.weight = weight  # frozen: kept by reference, not saved as an activation
        out = _nnpack(x, weight, bias) if _use_nnpack(weight.shape[1], weight.shape[0], *x.shape[-2:]) else None
        return F.conv2d(x, weight, bias, padding=1) if out is None else out

    @staticmethod
    def backward(ctx, grad):
        weight = ctx.weight
        if not ctx.needs_input_grad[0]:
            return None, None, None
        grad_input = None
        if _use_nnpack(weight.shape[0], weight.shape[1], *grad.shape[-2:]):
            grad_input = _nnpack(grad, _transposed_flipped(weight), None)
        if grad_input is None:
            shape = (grad.shape[0], weight.shape[1], *grad.shape[-2:])
            grad_input = conv2d_input(shape, weight, grad, padding=1)
        return grad_input, None, None


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
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d and _state["ok"] and _qualifies(args, kwargs):
            return WinogradConv2d.apply(args[0], args[1], _argument(args, kwargs, 2, "bias", None))
        return func(*args, **kwargs)


@contextlib.contextmanager
def winograd_convolutions(enabled: bool = True):
    """Inside this block, qualifying CPU convolutions use NNPACK's Winograd algorithm (see the module docstring)."""
    if not (enabled and available()):
        yield
        return
    with _WinogradMode():
        yield
