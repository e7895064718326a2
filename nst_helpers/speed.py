"""The speed policy: how the VGG pass runs on a device (precision, memory layout, Winograd, compile).

``precision="auto"`` by device class (the same table is in the README, "Precision per device"):

===============================  ===========================  ======  ===================================
device                           VGG pass                     layout  why
===============================  ===========================  ======  ===================================
CUDA, compute capability ≥ 8.0   bf16                         NHWC    native bf16 tensor cores (A100, L4,
                                                                      H100, RTX 30xx+); fp32's exponent
CUDA 7.x (V100, T4)              fp16 + dynamic loss scaling  NHWC    fp16 tensor cores (T4: ~65 vs ~8
                                                                      TFLOP/s fp32); bf16 is emulated
CUDA < 7.0                       fp32                         NHWC    no tensor cores
MPS (Apple GPUs)                 fp32 (fp16 on request)       NCHW    fp16 not yet validated on MPS
CPU with AMX / AVX-512 BF16      bf16                         NHWC    oneDNN's AMX kernels: 2.8-5x
other CPUs                       fp32 + Winograd (NNPACK)     NCHW    bf16 ~100x, fp16 15-40x slower
===============================  ===========================  ======  ===================================

The Gram matrices and the losses are float32 whatever is chosen here.
fp16 runs with loss scaling (:mod:`nst_helpers.loss_scale`): the relative
losses give image gradients of ~1/(H·W), below fp16's smallest normal
number, so the backward pass runs on the loss times a power of two.
bf16 needs none (it has float32's exponent range). An explicit ``"bf16"``
or ``"fp16"`` runs wherever it is asked for; where the device emulates it,
:func:`resolve_speed` warns that it will be slow.

Chosen by the measurements in ``benchmarks/`` (README, Performance): bf16
2.1x alone where native, NHWC with it, and Winograd convolutions in fp32
on CPUs where NNPACK runs (1.6x at 512 px on 2 Zen 3 cores, which have no
native bf16). The fp16 rows are estimates from datasheet throughput until
measured on such a GPU.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch

from . import fastconv
from .devices import native_bf16, native_fp16

__all__ = ["Precision", "PRECISIONS", "DTYPES", "SpeedOptions", "resolve_speed", "auto_precision", "fast_half"]

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
    loss_scaling: bool = False  #: dynamic loss scaling of the backward pass (:mod:`nst_helpers.loss_scale`; fp16)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the VGG layers compute in."""
        return DTYPES[self.precision]


def auto_precision(device: torch.device) -> str:
    """What ``precision="auto"`` means on ``device`` (the table above)."""
    if native_bf16(device):
        return "bf16"
    if device.type == "cuda" and native_fp16(device):
        return "fp16"
    return "fp32"


def fast_half(device: torch.device) -> str | None:
    """The half precision ``device`` computes natively ("bf16" before "fp16"), or None: what to suggest
    when memory runs short (half precision stores activations in 2 bytes instead of 4)."""
    if native_bf16(device):
        return "bf16"
    return "fp16" if native_fp16(device) else None


def resolve_speed(
    device: torch.device,
    precision: Precision = "auto",
    channels_last: bool | None = None,
    winograd: bool | None = None,
    compile: bool = False,
) -> SpeedOptions:
    """What the speed settings (as in :class:`~nst_helpers.transfer.TransferConfig`) mean on ``device``.

    ``precision="auto"``: see the table above (:func:`auto_precision`); an
    explicit half precision the device only emulates runs, with a warning.
    ``channels_last=None``: on for CUDA and for bf16. ``winograd=None``: on
    for fp32 on a CPU where NNPACK is available. ``compile`` excludes
    Winograd (torch.compile cannot trace NNPACK's calls). Loss scaling is on
    exactly for fp16.
    """
    chosen: str = auto_precision(device) if precision == "auto" else precision
    if (chosen == "bf16" and not native_bf16(device)) or (chosen == "fp16" and not native_fp16(device)):
        warnings.warn(
            f"precision={chosen!r} is emulated on {device.type} here: it runs, but much slower than "
            "fp32 (often 10-100x). Use precision='auto' for the fastest choice on this device.",
            UserWarning,
            stacklevel=2,
        )
    if channels_last is None:
        channels_last = device.type == "cuda" or chosen == "bf16"
    if winograd is None:
        winograd = device.type == "cpu" and chosen == "fp32" and fastconv.available()
    return SpeedOptions(bool(channels_last), chosen, bool(winograd) and not compile, bool(compile), chosen == "fp16")
