r"""Dynamic loss scaling for an fp16 VGG pass: gradients that fp16 can hold, and no evaluation lost to overflow.

**Why.** With the relative losses of :mod:`nst_helpers.losses` the loss is
:math:`O(1)` and spread over :math:`H W` pixels, so the image gradient is
:math:`\sim 1/(H W)`. In fp16 (smallest normal number :math:`2^{-14} \approx
6\cdot 10^{-5}`, smallest subnormal :math:`2^{-24}`) those gradients and the
activation gradients behind them are flushed to zero or keep only a few
bits: with the Caffe VGG16 at 256 px every non-zero activation gradient is
below the smallest normal number, and 100 L-BFGS steps end at a total loss
of 1.59 instead of fp32's 0.89 (issue 9).

**How** (Micikevicius et al., *Mixed Precision Training*, 2018):
backpropagate :math:`S \cdot L` instead of :math:`L`, with :math:`S` a power
of two, so every gradient on the way back is :math:`S` times larger and
lands in fp16's range; then divide the image gradient (float32) by
:math:`S`, which is exact. The forward pass and the loss values do not
change. Too large an :math:`S` overflows to inf somewhere in the backward
pass, and the image gradient is then not finite. :class:`LossScaler`:

* starts at :math:`S \approx H W`, a power of two (65536 at 256 x 256,
  :func:`initial_scale`): the gradients shrink as :math:`1/(H W)`, so the
  scaled ones keep the same size whatever the image size. Measured with the
  Caffe VGG16 and the default layers from the photo at 64-512 px: the
  largest activation gradient is 0.8-2.4 / (H W), so the largest scaled one
  is ~1-3 (fp16 overflows at 65504) and the median non-zero one 100-200
  times fp16's smallest normal number;
* after an overflow halves :math:`S` and the caller evaluates the same
  point again: the optimiser never sees a lost gradient, and the step
  count does not change;
* doubles :math:`S` after ``growth_interval`` clean evaluations (gradients
  shrink as the optimisation converges), up to :math:`2^{24}`.

**Host syncs.** Whether to evaluate again must be known on the host before
the optimiser uses the gradient, so each fp16 evaluation reads one value
(``bool`` of a check reduced on the device: gradient finite, loss finite).
A device-only design (``torch.where`` keeping the previous gradient after
an overflow, the scale and counters as device tensors) was considered and
not chosen: it avoids the read but loses the evaluation, and L-BFGS would
then repeat its last step with a stale gradient (``y = 0``, pair
rejected). One read per evaluation lets the GPU idle only while the CPU
queues the next kernels (microseconds, against a VGG step of ~10 ms on a
T4 at 512 px, estimated from FLOPs), where ``torch.optim.LBFGS`` waited
~100 times per evaluation. Measured with ``torch.profiler`` on a CPU:
exactly one more ``aten::_local_scalar_dense`` per evaluation than fp32.
The scale itself is a Python number, so changing it costs nothing. fp32
and bf16 runs have no scaler and no read (:func:`plain_backward`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["LossScaler", "initial_scale", "backward_for"]


def initial_scale(height: int, width: int) -> float:
    r"""The power of two nearest :math:`H W`, between 1 and :math:`2^{24}`: 65536 at 256 x 256."""
    return float(2 ** min(24, max(0, round(math.log2(max(height * width, 1))))))


class LossScaler:
    """Dynamic loss scaling for one run (see the module docstring).

    ``backward(loss, image)`` backpropagates ``loss * scale``, leaves
    ``image.grad`` unscaled (float32) and returns True, or, after an
    overflow, halves the scale and returns False: evaluate again. Counters:
    ``overflows`` (evaluations redone), ``growths`` (doublings).
    """

    def __init__(
        self,
        scale: float = 65536.0,
        growth_interval: int = 50,
        min_scale: float = 2.0**-16,
        max_scale: float = 2.0**24,
    ) -> None:
        if not (min_scale <= scale <= max_scale) or growth_interval < 1:
            raise ValueError(f"scale {scale} must lie in [{min_scale}, {max_scale}] and growth_interval be ≥ 1.")
        self.scale = float(scale)
        self.growth_interval = growth_interval
        self.min_scale, self.max_scale = min_scale, max_scale
        self.clean = 0  #: clean evaluations since the scale last changed
        self.overflows = 0
        self.growths = 0

    @classmethod
    def for_image(cls, image: torch.Tensor, **settings) -> LossScaler:
        """A scaler starting at :func:`initial_scale` for ``image`` ([..., H, W])."""
        return cls(initial_scale(image.shape[-2], image.shape[-1]), **settings)

    def backward(self, loss: torch.Tensor, image: torch.Tensor) -> bool:
        """Backpropagate ``loss * scale`` into ``image.grad`` (which must be None or zero), unscale it, and
        say whether it can be used. False: the gradient overflowed at a finite loss, the scale is halved,
        evaluate the same point again. A non-finite loss is not the scale's fault: True, left to the caller.
        """
        (loss * self.scale).backward()
        grad = image.grad
        if grad is None:
            raise ValueError("LossScaler.backward: the image received no gradient (does it require grad?).")
        grad.mul_(1.0 / self.scale)  # a power of two: exact in float32
        # One host read: both checks are reduced on the device first.
        overflow = bool(torch.isfinite(loss.detach()).all() & ~torch.isfinite(grad).all())
        if overflow:
            if self.scale / 2 < self.min_scale:
                return True  # nothing left to try: the optimiser gets the non-finite gradient, the loop stops
            self.scale /= 2
            self.clean = 0
            self.overflows += 1
            return False
        self.clean += 1
        if self.clean >= self.growth_interval and self.scale * 2 <= self.max_scale:
            self.scale *= 2
            self.clean = 0
            self.growths += 1
        return True

    def __repr__(self) -> str:
        return f"LossScaler(scale={self.scale:g}, overflows={self.overflows}, growths={self.growths})"


def plain_backward(loss: torch.Tensor, image: torch.Tensor) -> bool:
    """``loss.backward()``; always True (usable): the backward pass of fp32 and bf16 runs."""
    loss.backward()
    return True


def backward_for(image: torch.Tensor, scaling: bool) -> Callable[[torch.Tensor, torch.Tensor], bool]:
    """The backward pass of a run optimising ``image``: a new :class:`LossScaler`'s ``backward`` with
    ``scaling`` (fp16), else :func:`plain_backward` (no scaler, no host read). Each returns whether the
    gradient can be used; False means evaluate the same point again."""
    return LossScaler.for_image(image).backward if scaling else plain_backward
