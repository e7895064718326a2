"""How much work a step is: analytic convolution FLOPs, and the datasheet peaks of common GPUs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nst_helpers import VGGFeatures

#: Dense (no sparsity) datasheet peaks in TFLOP/s, by GPU and math. "tf32" is what fp32
#: convolutions use on Ampere and newer (``torch.backends.cudnn.allow_tf32`` is on by default).
PEAK_TFLOPS = {
    "T4": {"fp16": 65.0, "fp32": 8.1},
    "V100": {"fp16": 125.0, "fp32": 15.7},
    "A10": {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2},
    "L4": {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0},
    "H100 SXM": {"bf16": 989.0, "fp16": 989.0, "tf32": 495.0, "fp32": 67.0},
    "H200": {"bf16": 989.0, "fp16": 989.0, "tf32": 495.0, "fp32": 67.0},
}
# torch.cuda.get_device_name() → table key; first match wins (PCIe before SXM, L40S before L4).
_GPU_PATTERNS = (
    (r"H100.*PCIe", "H100 PCIe"),
    (r"H100", "H100 SXM"),
    (r"H200", "H200"),
    (r"A100", "A100"),
    (r"L40S", "L40S"),
    (r"\bL4\b", "L4"),
    (r"\bA10\b", "A10"),
    (r"\bT4\b", "T4"),
    (r"V100", "V100"),
)


def conv_flops(
    modules: Iterable[nn.Module],
    height: int,
    width: int,
    *,
    forward: bool = True,
    input_grad: bool = True,
    weight_grad: bool = False,
) -> int:
    """Analytic FLOPs of the convolutions in ``modules`` for one ``height x width`` image.

    A convolution costs ``2 * C_in * C_out * k_h * k_w * H_out * W_out`` FLOPs
    forward (one multiply-add = 2 FLOPs); the gradient with respect to its
    input costs the same again, and so does the gradient with respect to its
    weights. Pooling layers halve the spatial size; ReLUs, pooling, biases and
    the losses are not counted (they are memory-bound and small).
    """
    h, w, total = height, width, 0
    passes = int(forward) + int(input_grad) + int(weight_grad)
    for module in modules:
        if isinstance(module, nn.Conv2d):
            (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            total += passes * 2 * module.in_channels * module.out_channels * kh * kw * h * w // module.groups
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            h, w = (h - k) // s + 1, (w - k) // s + 1
    return total


def step_flops(model: VGGFeatures, height: int, width: int, layers: Sequence[str]) -> int:
    """FLOPs of one step of our loop: forward to the deepest of ``layers`` + gradient to the input.

    VGG19 to ``relu5_1``: about 24, 95 and 379 GFLOP at 128, 256 and 512 px.
    """
    last = max(model.index[name] for name in layers)
    return conv_flops(list(model.layers)[: last + 1], height, width)


def gpu_peak_tflops(device: torch.device, precision: str) -> float | None:
    """Datasheet peak for this GPU and math (fp32 → TF32 where cuDNN uses it), or None if unknown."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for pattern, key in _GPU_PATTERNS:
        if re.search(pattern, name):
            table = PEAK_TFLOPS[key]
            if precision == "fp32" and "tf32" in table and torch.backends.cudnn.allow_tf32:
                return table["tf32"]
            return table.get(precision)
    return None
