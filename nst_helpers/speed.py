"""The speed policy: how the VGG pass runs on a device (precision, memory layout, Winograd, compile).

Chosen by the measurements in ``benchmarks/`` (README, Performance): bf16
wherever the hardware computes it natively (GPUs of compute capability 8.0+,
CPUs with AMX / AVX-512 BF16: 2.1x alone; elsewhere bf16 is emulated and
~100x slower), NHWC with bf16 (oneDNN's fast AMX kernels are NHWC: 2.8-5x the
tutorial baseline together) and on CUDA, and Winograd convolutions in fp32 on
CPUs where NNPACK runs (1.6x at 512 px on 2 Zen 3 cores, which have no native
bf16). The Gram matrices and the losses are float32 whatever is chosen here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from . import fastconv
from .devices import native_bf16

__all__ = ["Precision", "PRECISIONS", "DTYPES", "SpeedOptions", "resolve_speed"]

#: What a VGG pass can compute in; ``"auto"`` is resolved by :func:`resolve_speed`.
Precision = Literal["fp32", "bf16", "fp16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class SpeedOptions:
    """How the VGG pass runs, once resolved for one device."""

    channels_last: bool = False  #: NHWC convolutions
    precision: str = "fp32"  #: "fp32", "bf16" or "fp16" (the VGG pass; Grams and losses stay fp32)
    winograd: bool = False  #: Winograd CPU convolutions through NNPACK (:mod:`nst_helpers.fastconv`)
    compile: bool = False  #: torch.compile the VGG pass

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the VGG layers compute in."""
        return DTYPES[self.precision]


def resolve_speed(
    device: torch.device,
    precision: Precision = "auto",
    channels_last: bool | None = None,
    winograd: bool | None = None,
    compile: bool = False,
) -> SpeedOptions:
    """What the speed settings (as in :class:`~nst_helpers.transfer.TransferConfig`) mean on ``device``.

    ``precision="auto"``: bf16 where ``device`` has native bf16, else fp32.
    ``channels_last=None``: on for CUDA and for bf16. ``winograd=None``: on
    for fp32 on a CPU where NNPACK is available. ``compile`` excludes
    Winograd (torch.compile cannot trace NNPACK's calls).
    """
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    if channels_last is None:
        channels_last = device.type == "cuda" or precision == "bf16"
    if winograd is None:
        winograd = device.type == "cpu" and precision == "fp32" and fastconv.available()
    return SpeedOptions(bool(channels_last), precision, bool(winograd) and not compile, bool(compile))
