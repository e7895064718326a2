r"""How fast is one step of the style-transfer loop? ``python -m nst_helpers.bench``.

One **step** is what one L-BFGS closure call (or one Adam step) costs: a VGG
forward pass of the image being optimised, the content and style losses, and
the backward pass to the input pixels. For every image size and device this
module times, **interleaved** (variant A, B, C, A, B, C, ...; a busy machine
slows all of them alike), after warm-up:

``tutorial``
    The loop as most tutorials write it: torchvision's full
    ``vgg19().features`` (in-place ReLUs, all 37 modules up to ``pool5``),
    features gathered by a loop over every module, Gram matrices by ``mm``,
    MSE losses, fp32. The weights keep ``requires_grad=True`` (torchvision's
    default), so every backward pass also computes weight gradients nobody
    uses.
``tutorial-frozen``
    The same with ``requires_grad_(False)`` on the weights, as the official
    PyTorch tutorial does. **Every speed-up is a ratio to this one**, the
    stricter of the two baselines.
``ours-fp32``
    This package's loop (:func:`nst_helpers.stylize`'s step): VGG run only to
    the deepest layer needed (``relu5_1``), style Grams and content targets
    computed once, relative losses, per-step loss history and best image kept
    on the device; fp32, NCHW, eager.
``channels-last``, ``bf16``, ``fp16``, ``compile``, ``no-bookkeeping``
    One option each on top of ``ours-fp32`` (``no-bookkeeping`` drops the
    per-step ``last_image`` copy and best-image ``torch.where``, to price them).
``bf16-nhwc``
    ``bf16`` and ``channels-last`` together (oneDNN's and cuDNN's fast bf16
    convolutions want NHWC).
``defaults``
    :class:`~nst_helpers.transfer.TransferConfig`'s defaults as
    :func:`~nst_helpers.stylize` resolves them on that device.
``stylize``
    :func:`~nst_helpers.stylize` itself with its defaults (Adam, one VGG
    evaluation per step; ``result.seconds / result.steps``): checks that the
    micro-benchmark describes the real loop.

All variants use the same random VGG19 weights (``load_vgg(weights="random")``,
copied into torchvision's ``vgg19(weights=None)`` for the baselines; nothing is
downloaded), the same images and the same device. Reported per variant: median
seconds per step, steps per second, the ratio to ``tutorial-frozen``, the
analytic convolution FLOPs of the layers that variant actually runs
(:func:`conv_flops`) and the TFLOP/s they imply (with the fraction of the GPU's
datasheet peak, :data:`PEAK_TFLOPS`), peak memory (CUDA: ``max_memory_allocated``;
CPU: the process's peak RSS) and, device-independently, the peak bytes of the
tensors a step creates (:class:`TensorMemory`) and what autograd saves for
backward.

``--memory-model`` checks :func:`~nst_helpers.transfer.estimate_memory`
against those measurements; ``--compare PNG`` stylises the same pair twice
(e.g. fast defaults vs plain fp32) and reports the pixel difference.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import warnings
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .fastconv import available as winograd_available
from .transfer import (DEFAULT_STYLE_LAYERS, Objective, SpeedOptions, TransferConfig, estimate_memory, native_bf16,
                       stylize)
from .vgg import VGGFeatures, layer_names, load_vgg

__all__ = [
    "PEAK_TFLOPS",
    "conv_flops",
    "step_flops",
    "TensorMemory",
    "TutorialStep",
    "OursStep",
    "run_benchmark",
    "memory_model",
    "compare_stylizations",
    "format_table",
    "main",
]

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = dict(DEFAULT_STYLE_LAYERS)
BASELINE = "tutorial-frozen"
#: TransferConfig overrides that switch every speed option off (plain fp32, NCHW, eager, oneDNN convolutions).
PLAIN = {"precision": "fp32", "channels_last": False, "compile": False, "winograd": False}
VARIANTS = ("tutorial", "tutorial-frozen", "ours-fp32", "channels-last", "winograd", "bf16", "bf16-nhwc", "fp16",
            "compile", "no-bookkeeping", "defaults", "stylize")

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
    (r"H100.*PCIe", "H100 PCIe"), (r"H100", "H100 SXM"), (r"H200", "H200"), (r"A100", "A100"),
    (r"L40S", "L40S"), (r"\bL4\b", "L4"), (r"\bA10\b", "A10"), (r"\bT4\b", "T4"), (r"V100", "V100"),
)


# --------------------------------------------------------------------------- FLOPs


def conv_flops(modules: Iterable[nn.Module], height: int, width: int, *, forward: bool = True,
               input_grad: bool = True, weight_grad: bool = False) -> int:
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


def gram_flops(model: VGGFeatures, height: int, width: int, layers: Sequence[str]) -> int:
    """FLOPs of the Gram matrices at ``layers`` (``2 C^2 H W`` each) forward, times 3 with backward."""
    total, c, h, w = 0, 3, height, width
    for name, module in zip(model.names, model.layers):
        if isinstance(module, nn.Conv2d):
            c = module.out_channels
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name in layers:
            total += 3 * 2 * c * c * h * w
    return total


def gpu_peak_tflops(device: torch.device, precision: str) -> Optional[float]:
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


# --------------------------------------------------------------------------- memory


class TensorMemory(TorchDispatchMode):
    """Bytes of the tensors created inside the ``with`` block: live now and at the peak.

    Device-independent (it counts tensor storages as operators return them,
    CPU or GPU alike), so a memory model checked against it on a CPU holds on
    a GPU. Views and in-place results share their input's storage and are not
    counted again; tensors that existed before the block (weights, targets)
    are not counted at all. Library workspaces (cuDNN, oneDNN scratch) are
    invisible to it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key not in inputs and key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    weakref.finalize(storage, self._free, key)
        return out

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)


@contextlib.contextmanager
def saved_for_backward(exclude: Iterable[torch.Tensor] = ()):
    """Count the distinct bytes autograd saves for backward inside the block (excluding ``exclude``).

    Yields a dict whose ``"bytes"`` entry is filled in as tensors are saved.
    """
    skip = {t.untyped_storage()._cdata for t in exclude}
    seen: set[int] = set()
    record = {"bytes": 0}

    def pack(tensor):
        key = tensor.untyped_storage()._cdata
        if key not in skip and key not in seen:
            seen.add(key)
            record["bytes"] += tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield record


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        with contextlib.suppress(OSError):
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM, the peak resident set size (Linux)


def _peak_memory(device: torch.device) -> tuple[Optional[int], str]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    if device.type == "cpu":
        with contextlib.suppress(OSError):
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024, "cpu_peak_rss"
    return None, "unavailable"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# --------------------------------------------------------------------------- the two loops


def torchvision_vgg19_features() -> nn.Sequential:
    """``torchvision.models.vgg19(weights=None).features``, without building the 500 MB classifier first.

    ``make_layers(cfgs["E"])`` is what ``vgg19()`` calls for its ``features``; the same modules.
    """
    try:
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["E"], batch_norm=False)
    except (ImportError, KeyError, TypeError):
        import torchvision

        return torchvision.models.vgg19(weights=None).features


class TutorialStep:
    """The baseline step, written the way most tutorials write it.

    torchvision's ``vgg19().features`` as is (in-place ReLUs, run through all
    its modules up to ``pool5``), the ImageNet normalisation in front, the
    features picked out by a loop over every module, Gram matrices by ``mm``
    divided by ``C H W``, ``F.mse_loss`` for content and style, fp32. With
    ``freeze=False`` the weights keep ``requires_grad=True`` and each backward
    also computes (and accumulates) weight gradients, as in the tutorials
    that forget to freeze them; ``freeze=True`` is the official PyTorch
    tutorial's ``requires_grad_(False)``.

    Features are taken at the ReLU indices of the same paper layers ours
    uses, so both loops match the same quantities (with in-place ReLUs the
    stored tensor is the ReLU output anyway).
    """

    def __init__(self, features: nn.Sequential, content: torch.Tensor, style: torch.Tensor, *,
                 freeze: bool, content_layers=CONTENT_LAYERS, style_layers=None,
                 content_weight: float = 1.0, style_weight: float = 1e6) -> None:
        self.features = features.eval().requires_grad_(not freeze)
        device = content.device
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        names = layer_names(self.features)
        self.content_layers = tuple(content_layers)
        self.style_layers = dict(STYLE_LAYERS if style_layers is None else style_layers)
        wanted = set(self.content_layers) | set(self.style_layers)
        self.pick = {str(i): name for i, name in enumerate(names) if name in wanted}
        self.content_weight, self.style_weight = content_weight, style_weight
        with torch.no_grad():
            targets = self.extract(content)
            self.content_targets = {k: targets[k].detach().clone() for k in self.content_layers}
            styles = self.extract(style)
            self.style_grams = {k: self.gram(styles[k]).detach().clone() for k in self.style_layers}
        self.image = content.clone().requires_grad_(True)

    @staticmethod
    def gram(features: torch.Tensor) -> torch.Tensor:
        _, c, h, w = features.shape
        flat = features.view(c, h * w)
        return torch.mm(flat, flat.t()) / (c * h * w)

    def extract(self, image: torch.Tensor) -> dict:
        x = (image - self.mean) / self.std
        out = {}
        for name, layer in self.features._modules.items():  # every module, to pool5
            x = layer(x)
            if name in self.pick:
                out[self.pick[name]] = x
        return out

    def losses(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.extract(image)
        content = sum(F.mse_loss(out[k], self.content_targets[k]) for k in self.content_layers)
        style = sum(w * F.mse_loss(self.gram(out[k]), self.style_grams[k]) for k, w in self.style_layers.items())
        return content, style

    def __call__(self) -> torch.Tensor:
        self.image.grad = None  # the optimiser zeroes the image's gradient; weight grads accumulate
        content, style = self.losses(self.image)
        total = self.content_weight * content + self.style_weight * style
        total.backward()
        return total

    def executed_flops(self, height: int, width: int) -> int:
        """Forward through all 16 convolutions; input (and weight) gradients only to the deepest layer used."""
        modules = list(self.features)
        last = max(int(i) for i in self.pick) + 1
        frozen = not next(self.features.parameters()).requires_grad
        return (conv_flops(modules, height, width, input_grad=False)
                + conv_flops(modules[:last], height, width, forward=False, input_grad=True, weight_grad=not frozen))


@dataclass(frozen=True)
class FastPath(SpeedOptions):
    """The speed options of our step (:class:`~nst_helpers.transfer.SpeedOptions`) plus ``bookkeeping``."""

    bookkeeping: bool = True  #: per-step loss row, last image and best image, as stylize keeps them


def resolve_fast_path(config: TransferConfig, device: torch.device) -> FastPath:
    """What :func:`~nst_helpers.stylize` makes of ``config``'s speed fields on ``device``."""
    from .transfer import _fast_path

    return FastPath(**dataclasses.asdict(_fast_path(config, device)))


class OursStep:
    """One step of :func:`~nst_helpers.stylize`'s loop, with its speed options.

    The same computation as ``stylize``'s closure (the same
    :class:`~nst_helpers.transfer.Objective`: forward to the deepest layer,
    relative losses against targets computed once, backward to the pixels,
    and, with ``bookkeeping``, the per-step loss row, last image and best
    image kept on the device), without the optimiser update.
    """

    def __init__(self, model: VGGFeatures, content: torch.Tensor, style: torch.Tensor, fast: FastPath, *,
                 content_layers=CONTENT_LAYERS, style_layers=None, content_weight: float = 1.0,
                 style_weight: float = 10.0) -> None:
        device = content.device
        self.fast = fast
        self.objective = Objective(model, content, style, content_layers=content_layers,
                                   style_layers=dict(STYLE_LAYERS if style_layers is None else style_layers),
                                   content_weight=content_weight, style_weight=style_weight, speed=fast)
        self.model = self.objective.model  # a bf16 / NHWC copy where ``fast`` asks for one
        self.content_targets, self.style_grams = self.objective.content_targets, self.objective.style_grams
        self.image = content.clone().requires_grad_(True)
        self.rows: list[torch.Tensor] = []
        self.best_loss = torch.tensor(float("inf"), device=device)
        self.best_step = torch.tensor(0, device=device)
        self.best_image = content.clone()
        self.last_image = content.clone()
        self.step = 0

    def __call__(self) -> torch.Tensor:
        x = self.image
        x.grad = None
        terms = self.objective(x)
        total = terms.sum()
        total.backward()
        self.step += 1
        if self.fast.bookkeeping:
            with torch.no_grad():
                value = total.detach()
                self.rows.append(torch.cat([terms.detach(), value.view(1)]))
                self.last_image.copy_(x.detach())
                better = value < self.best_loss
                self.best_loss = torch.where(better, value, self.best_loss)
                self.best_step = torch.where(better, torch.full_like(self.best_step, self.step), self.best_step)
                self.best_image.copy_(torch.where(better, x.detach(), self.best_image))
            if len(self.rows) > 1000:
                del self.rows[:500]
        return total


class _StylizeRun:
    """``stylize()`` with its defaults; one sample = ``steps`` Adam steps, seconds per step."""

    def __init__(self, model: VGGFeatures, content: torch.Tensor, style: torch.Tensor, device: torch.device,
                 steps: int) -> None:
        self.model = model  # stylize leaves it unchanged (speed options work on a copy)
        self.content, self.style, self.device, self.steps = content.cpu(), style.cpu(), device, steps

    def sample(self) -> float:
        result = stylize(self.content, self.style, model=self.model, device=str(self.device), steps=self.steps,
                         optimizer="adam", preview_every=self.steps, check_memory=False)
        return result.seconds / max(result.steps, 1)


# --------------------------------------------------------------------------- running


def smooth_noise(size: int, seed: int) -> torch.Tensor:
    """A deterministic, smooth random picture ``[1, 3, size, size]`` in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, size // 8), max(2, size // 8), generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def default_variants(device: torch.device, size: int) -> list[str]:
    """Variants measured by default: fp16 only on CUDA, winograd only on a CPU with NNPACK, bf16 on a
    CPU without native bf16 only at ≤ 128 px (it is ~10x slower there)."""
    names = list(VARIANTS)
    if device.type != "cuda":
        names.remove("fp16")
    if device.type != "cpu" or not winograd_available():
        names.remove("winograd")
    if device.type == "cpu":
        if not native_bf16(device) and size > 128:
            names.remove("bf16")
            names.remove("bf16-nhwc")
    return names


def _ours_fast_path(name: str, device: torch.device) -> Optional[FastPath]:
    if name == "ours-fp32":
        return FastPath()
    if name == "channels-last":
        return FastPath(channels_last=True)
    if name == "winograd":
        return FastPath(winograd=True)
    if name in ("bf16", "fp16"):
        return FastPath(precision=name)
    if name == "bf16-nhwc":
        return FastPath(precision="bf16", channels_last=True)
    if name == "compile":
        return FastPath(compile=True)
    if name == "no-bookkeeping":
        return FastPath(bookkeeping=False)
    if name == "defaults":
        return resolve_fast_path(TransferConfig(), device)
    return None


def _median(values: Sequence[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _load_average() -> Optional[list]:
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def benchmark_size(device: torch.device, size: int, variants: Sequence[str], *, repeats: int = 5,
                   warmup: int = 2, stylize_steps: int = 2, tensor_memory: bool = True, clock: str = "wall",
                   model: Optional[VGGFeatures] = None, quiet: bool = False) -> list[dict]:
    """Time every variant at ``size`` x ``size`` px on ``device``, interleaved; one result dict per variant.

    ``clock="cpu"`` (CPU device only) counts the process's CPU seconds instead of wall seconds: on a
    machine shared with other jobs that is less noisy, and with one thread (``--threads 1``) it is the
    work done. The ``stylize`` variant is always timed by wall clock (``result.seconds``).
    """
    if clock == "cpu" and device.type != "cpu":
        raise ValueError("clock='cpu' measures CPU seconds; use it with the CPU device only.")
    now = time.process_time if clock == "cpu" else time.perf_counter
    if model is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = load_vgg(arch="vgg19", weights="random", input_norm="torchvision", device="cpu", cache=False)
    model = model.to(device)
    content, style = smooth_noise(size, 1).to(device), smooth_noise(size, 2).to(device)
    layers = list(CONTENT_LAYERS) + list(STYLE_LAYERS)
    useful = step_flops(model, size, size, layers)

    runners: dict[str, object] = {}
    flops: dict[str, int] = {}
    precision: dict[str, str] = {}
    for name in variants:
        if name in ("tutorial", "tutorial-frozen"):
            features = torchvision_vgg19_features()
            features.load_state_dict(model.layers.state_dict())
            runners[name] = TutorialStep(features.to(device), content, style, freeze=name == "tutorial-frozen")
            flops[name], precision[name] = runners[name].executed_flops(size, size), "fp32"
        elif name == "stylize":
            runners[name] = _StylizeRun(model, content, style, device, stylize_steps)
            flops[name], precision[name] = useful, resolve_fast_path(TransferConfig(), device).precision
        else:
            fast = _ours_fast_path(name, device)
            if fast is None:
                raise ValueError(f"Unknown variant {name!r}; choose from {VARIANTS}.")
            runners[name] = OursStep(model, content, style, fast)
            flops[name], precision[name] = useful, fast.precision

    def sample(name: str) -> float:
        runner = runners[name]
        if isinstance(runner, _StylizeRun):
            return runner.sample()
        _sync(device)
        start = now()
        runner()
        _sync(device)
        return now() - start

    first: dict[str, float] = {}
    for name in variants:  # warm-up (the first call includes any compilation)
        for i in range(max(warmup, 1)):
            seconds = sample(name)
            if i == 0:
                first[name] = seconds
        _log(f"  {device.type} {size}px {name}: warm-up done (first call {first[name]:.2f} s)", quiet)
    times: dict[str, list] = {name: [] for name in variants}
    for r in range(repeats):
        shift = r % len(variants)  # rotate the order so no variant always runs right after another
        for name in list(variants[shift:]) + list(variants[:shift]):
            times[name].append(sample(name))
        _log(f"  {device.type} {size}px: round {r + 1}/{repeats} done", quiet)

    peaks: dict[str, tuple] = {}
    for name in variants:
        if isinstance(runners[name], _StylizeRun):
            peaks[name] = (None, "not measured")
            continue
        _reset_peak(device)
        runners[name]()
        peaks[name] = _peak_memory(device)

    tensors: dict[str, tuple] = {}
    if tensor_memory:
        for name in variants:
            runner = runners[name]
            if isinstance(runner, _StylizeRun) or (isinstance(runner, OursStep) and runner.fast.compile):
                continue
            module = runner.model if isinstance(runner, OursStep) else runner.features
            params = list(module.parameters()) + list(module.buffers())
            with TensorMemory() as tracker, saved_for_backward(exclude=params) as saved:
                runner()
            tensors[name] = (tracker.peak, saved["bytes"])

    base = _median(times.get(BASELINE, []))
    unfrozen = _median(times.get("tutorial", []))
    results = []
    for name in variants:
        median = _median(times[name])
        peak_tflops = gpu_peak_tflops(device, precision[name])
        tflops = flops[name] / median / 1e12
        memory, memory_kind = peaks[name]
        results.append({
            "device": str(device),
            "size": size,
            "variant": name,
            "clock": "wall" if name == "stylize" else clock,
            "precision": precision[name],
            "median_s": median,
            "min_s": min(times[name]),
            "steps_per_s": 1.0 / median,
            "speedup": base / median if base else None,
            "speedup_vs_tutorial": unfrozen / median if unfrozen else None,
            "gflop": flops[name] / 1e9,
            "useful_gflop": useful / 1e9,
            "tflops": tflops,
            "peak_tflops": peak_tflops,
            "peak_fraction": tflops / peak_tflops if peak_tflops else None,
            "peak_memory_bytes": memory,
            "memory_kind": memory_kind,
            "tensor_peak_bytes": tensors.get(name, (None, None))[0],
            "saved_for_backward_bytes": tensors.get(name, (None, None))[1],
            "first_call_s": first[name],
            "compile_s": first[name] - median if name == "compile" else None,
            "times_s": times[name],
        })
    return results


def machine_info(devices: Sequence[torch.device]) -> dict:
    """Where the numbers come from: CPU model, cores, threads, GPU, versions, load."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16_cpu": native_bf16(torch.device("cpu")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpus": [],
        "load_average": _load_average(),
    }
    for device in devices:
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            info["gpus"].append({"device": str(device), "name": props.name,
                                 "memory_bytes": props.total_memory,
                                 "capability": list(torch.cuda.get_device_capability(device)),
                                 "cudnn": torch.backends.cudnn.version()})
    return info


def run_benchmark(devices: Sequence[str] | None = None, sizes: Sequence[int] | None = None,
                  variants: Sequence[str] | None = None, *, repeats: int = 5, warmup: int = 2,
                  stylize_steps: int = 2, tensor_memory: bool = True, clock: str = "wall",
                  quiet: bool = False) -> dict:
    """Benchmark every variant at every size on every device; returns the JSON-ready report.

    ``devices`` default: CPU, plus CUDA when present. ``sizes`` default:
    128, 256, 512 (and 1024 on a GPU).
    """
    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [torch.device(d) for d in devices]
    report = {
        "schema": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m nst_helpers.bench"] + sys.argv[1:]) if __name__ == "__main__" else None,
        "machine": machine_info(devices),
        "settings": {"arch": "vgg19", "weights": "random (load_vgg seed 0; same weights in every variant)",
                     "repeats": repeats, "warmup": warmup, "stylize_steps": stylize_steps, "clock": clock,
                     "content_layers": list(CONTENT_LAYERS), "style_layers": list(STYLE_LAYERS),
                     "baseline": BASELINE},
        "results": [],
    }
    for device in devices:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        device_sizes = list(sizes) if sizes else [128, 256, 512] + ([1024] if device.type == "cuda" else [])
        for size in device_sizes:
            names = [v for v in (variants or default_variants(device, size))
                     if v != "fp16" or device.type == "cuda" or variants]
            _log(f"{device} {size}px: {', '.join(names)}", quiet)
            report["results"] += benchmark_size(device, size, names, repeats=repeats, warmup=warmup,
                                                stylize_steps=stylize_steps, tensor_memory=tensor_memory,
                                                clock=clock, quiet=quiet)
    report["machine"]["load_average_after"] = _load_average()
    return report


# --------------------------------------------------------------------------- memory model


def activation_bytes(model: VGGFeatures, height: int, width: int, layers, precision: str = "fp32") -> int:
    """Module outputs up to the deepest layer, in bytes of the VGG pass's dtype (2 for bf16/fp16, else 4)."""
    from .transfer import _activation_elements

    return _activation_elements(model, height, width, layers) * (2 if precision in ("bf16", "fp16") else 4)


def memory_model(sizes: Sequence[int] = (64, 128, 256), precisions: Sequence[str] = ("fp32", "bf16"), *,
                 run_sizes: Sequence[int] = (64, 128), run_steps: int = 70, device: str = "cpu",
                 quiet: bool = False) -> dict:
    """Measure memory device-independently and check :func:`~nst_helpers.transfer.estimate_memory`.

    ``steps``: for each size and precision, one step of our loop: the bytes
    autograd saves for backward and the peak bytes of the tensors the step
    creates (:class:`TensorMemory`), against the activation bytes the model
    counts (``peak_ratio`` is the factor a step needs per activation byte).
    ``runs``: whole ``stylize()`` runs (L-BFGS, ``run_steps`` evaluations,
    so its history fills up) at ``run_sizes``: their peak tensor bytes plus
    the weights, against ``estimate_memory`` (``estimate_over_measured`` must
    stay above 1). Then the largest square image that fits a 16 GB T4 by the
    estimate: 16 GB nominal, and what ``stylize`` accepts on a Colab T4
    (~14.6 GiB free after the CUDA context, of which it uses at most 90%).
    bf16 on a CPU without native bf16 is ~10x slower and measured at ≤ 256 px.
    """
    from . import transfer

    device = torch.device(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = load_vgg(arch="vgg19", weights="random", input_norm="torchvision", device=device, cache=False)
    layers = list(CONTENT_LAYERS) + list(STYLE_LAYERS)
    frozen = list(model.parameters()) + list(model.buffers())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    steps = []
    for precision in precisions:
        for size in sizes:
            if precision != "fp32" and device.type == "cpu" and not native_bf16(device) and size > 256:
                continue
            content, style = smooth_noise(size, 1).to(device), smooth_noise(size, 2).to(device)
            step = OursStep(model, content, style, FastPath(precision=precision))
            step()  # warm-up: autocast caches, lazy initialisation
            with TensorMemory() as tracker, saved_for_backward(exclude=frozen) as saved:
                step()
            act = activation_bytes(model, size, size, layers, precision)
            steps.append({"size": size, "precision": precision, "activation_bytes": act,
                          "saved_bytes": saved["bytes"], "peak_tensor_bytes": tracker.peak,
                          "saved_ratio": saved["bytes"] / act, "peak_ratio": tracker.peak / act})
            _log(f"  memory step {precision} {size}px: saved {saved['bytes'] / 2**20:.1f} MiB, peak "
                 f"{tracker.peak / 2**20:.1f} MiB = {tracker.peak / act:.2f} x activations", quiet)
    runs = []
    for size in run_sizes:
        content, style = smooth_noise(size, 1), smooth_noise(size, 2)
        with TensorMemory() as tracker:
            stylize(content, style, model=model, steps=run_steps, device=str(device), check_memory=False)
        measured = tracker.peak + weights
        estimate = estimate_memory(model, size, size, layers, resolve_fast_path(TransferConfig(), device).precision)
        runs.append({"size": size, "optimizer": "lbfgs", "steps": run_steps, "peak_tensor_bytes": tracker.peak,
                     "measured_with_weights_bytes": measured, "estimate_bytes": estimate,
                     "estimate_over_measured": estimate / measured})
        _log(f"  memory run {size}px: measured {measured / 2**20:.1f} MiB, estimate {estimate / 2**20:.1f} MiB", quiet)
    fits = {}
    for label, budget in (("16GB", 16e9), ("colab_T4_accepted", 0.9 * 14.6 * 2**30)):
        for precision in ("fp32", "fp16"):
            fits[f"{label}_{precision}"] = largest_square(model, layers, budget, precision)
    return {"steps": steps, "runs": runs, "factor_in_use": transfer._MEMORY_FACTOR,
            "image_copies_in_use": transfer._IMAGE_COPIES, "weights_bytes": weights, "largest_square_px": fits}


def largest_square(model: VGGFeatures, layers, budget: float, precision: str = "fp32") -> int:
    """Largest ``n`` (multiple of 16) whose ``n x n`` estimate stays within ``budget`` bytes."""
    low, high = 16, 16
    while estimate_memory(model, high, high, layers, precision) <= budget:
        low, high = high, high * 2
    while high - low > 16:
        middle = (low + high) // 2 // 16 * 16
        if estimate_memory(model, middle, middle, layers, precision) <= budget:
            low = middle
        else:
            high = middle
    return low


# --------------------------------------------------------------------------- visual check


def _parse_settings(text: str) -> dict:
    settings = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            settings[key.strip()] = lowered == "true"
        elif lowered == "none":
            settings[key.strip()] = None
        else:
            settings[key.strip()] = value.strip()
    return settings


def compare_stylizations(content: str = "tubingen", style: str = "starry_night", *, size: int = 256,
                         steps: int = 60, a: dict | None = None, b: dict | None = None,
                         output: str | os.PathLike | None = None, device: str = "cpu", quiet: bool = False) -> dict:
    """Stylise the same pair with settings ``a`` and ``b``; report the pixel difference.

    ``a`` and ``b`` are :class:`TransferConfig` overrides (default: ``a`` =
    :data:`PLAIN`, every speed option off; ``b`` = the defaults). Both start from the
    same image with the same seed, so any difference comes from the numerics.
    ``output``: a PNG with content | A | B | 10 x |A - B| side by side.
    """
    from .images import save_image

    a = dict(PLAIN) if a is None else a
    b = {} if b is None else b
    runs = []
    for settings in (a, b):
        config = replace(TransferConfig(), size=size, steps=steps, device=device, **settings)
        result = stylize(content, style, config)
        runs.append(result)
        _log(f"  compare {settings or 'defaults'}: {result.summary()}", quiet)
    first, second = runs[0].image, runs[1].image
    diff = (first - second).abs()
    mse = diff.square().mean().item()
    report = {"content": content, "style": style, "size": size, "steps": steps, "a": a, "b": b,
              "max_abs_diff": diff.max().item(), "mean_abs_diff": diff.mean().item(),
              "psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else None,  # None: identical
              "seconds_a": runs[0].seconds, "seconds_b": runs[1].seconds,
              "final_loss_a": runs[0].history["total"][-1], "final_loss_b": runs[1].history["total"][-1]}
    if output is not None:
        from .transfer import _as_image

        original = _as_image(content, size)
        panel = torch.cat([original, first, second, (10 * diff).clamp(0, 1)], dim=-1)
        report["image"] = str(save_image(panel, output))
    return report


# --------------------------------------------------------------------------- output


def _bytes(value: Optional[int]) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MiB" if value < 100 * 2**20 else f"{value / 2**20:,.0f} MiB"


def format_table(results: Sequence[dict]) -> str:
    """A Markdown table: one row per device, size and variant."""
    header = ("| device | size | variant | s/step (median) | steps/s | × tutorial-frozen | × tutorial "
              "| GFLOP | TFLOP/s | % peak | peak memory | step tensors | compile s |")
    lines = [header, "|" + "|".join(["---"] * 13) + "|"]
    for r in results:
        def ratio(key):
            return "-" if r[key] is None else f"{r[key]:.2f}×"
        peak = "-" if r["peak_fraction"] is None else f"{100 * r['peak_fraction']:.0f}%"
        compiled = "-" if r["compile_s"] is None else f"{r['compile_s']:.0f}"
        lines.append(
            f"| {r['device']} | {r['size']} | {r['variant']} | {r['median_s']:.4f} | {r['steps_per_s']:.2f} | "
            f"{ratio('speedup')} | {ratio('speedup_vs_tutorial')} | {r['gflop']:.1f} | {r['tflops']:.3f} | "
            f"{peak} | {_bytes(r['peak_memory_bytes'])} | {_bytes(r['tensor_peak_bytes'])} | {compiled} |")
    return "\n".join(lines)


def format_memory(model: dict) -> str:
    """Markdown tables of :func:`memory_model`'s measurements."""
    lines = ["| step | size | saved for backward | peak step tensors | activations counted | peak / activations "
             "| marginal (vs previous size) |", "|---|---|---|---|---|---|---|"]
    previous: dict = {}
    for r in model["steps"]:
        last, marginal = previous.get(r["precision"]), "-"
        if last is not None:
            grown = r["peak_tensor_bytes"] - last["peak_tensor_bytes"]
            marginal = f"{grown / (r['activation_bytes'] - last['activation_bytes']):.2f}"
        previous[r["precision"]] = r
        lines.append(f"| {r['precision']} | {r['size']} | {_bytes(r['saved_bytes'])} "
                     f"| {_bytes(r['peak_tensor_bytes'])} | {_bytes(r['activation_bytes'])} "
                     f"| {r['peak_ratio']:.2f} | {marginal} |")
    lines += ["", "| stylize() run | size | measured (tensors + weights) | estimate_memory | estimate / measured |",
              "|---|---|---|---|---|"]
    for r in model["runs"]:
        lines.append(f"| {r['optimizer']}, {r['steps']} steps | {r['size']} "
                     f"| {_bytes(r['measured_with_weights_bytes'])} | {_bytes(r['estimate_bytes'])} "
                     f"| {r['estimate_over_measured']:.2f} |")
    fits = ", ".join(f"{k}: {v} px" for k, v in model["largest_square_px"].items())
    lines += ["", f"_MEMORY_FACTOR = {model['factor_in_use']}, _IMAGE_COPIES = {model['image_copies_in_use']}; "
              f"largest square image by the estimate: {fits}"]
    return "\n".join(lines)


def write_json(report: dict, path: str | os.PathLike) -> Path:
    """Write ``report`` as indented JSON (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False, default=str) + "\n")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nst_helpers.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="image sizes in px (default: 128 256 512, +1024 on GPU)")
    parser.add_argument("--devices", nargs="+", help="devices (default: cpu, and cuda when available)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, help="variants (default: all that apply)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--stylize-steps", type=int, default=2, help="Adam steps per stylize() sample")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall seconds, or the process's CPU seconds (CPU device; steadier on a busy machine)")
    parser.add_argument("--no-tensor-memory", action="store_true", help="skip the tensor-memory pass")
    parser.add_argument("--memory-model", action="store_true", help="also check estimate_memory (64-256 px)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timings (e.g. with --memory-model)")
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[64, 128, 256],
                        help="sizes of the memory model's single steps (default: %(default)s)")
    parser.add_argument("--memory-run-sizes", type=int, nargs="+", default=[64, 128],
                        help="sizes of its whole stylize() runs (default: %(default)s)")
    parser.add_argument("--compare", metavar="PNG", help="only run the visual check and write this PNG")
    parser.add_argument("--compare-a", default=",".join(f"{k}={v}".lower() for k, v in PLAIN.items()),
                        help="TransferConfig overrides of run A (default: %(default)s)")
    parser.add_argument("--compare-b", default="", help="overrides of run B (default: the defaults)")
    parser.add_argument("--compare-size", type=int, default=256)
    parser.add_argument("--compare-steps", type=int, default=60)
    parser.add_argument("--compare-pair", nargs=2, default=["tubingen", "starry_night"], metavar=("CONTENT", "STYLE"))
    parser.add_argument("--json", default="benchmarks/results.json", help="where to write JSON (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: Optional[list] = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        report = {"compare": compare_stylizations(*args.compare_pair, size=args.compare_size,
                                                  steps=args.compare_steps, a=_parse_settings(args.compare_a),
                                                  b=_parse_settings(args.compare_b), output=args.compare,
                                                  device=(args.devices or ["cpu"])[0], quiet=args.quiet),
                  "machine": machine_info([])}
        print(json.dumps(report["compare"], indent=2))
    else:
        report = run_benchmark(args.devices, args.sizes, args.variants, repeats=args.repeats, warmup=args.warmup,
                               stylize_steps=args.stylize_steps, tensor_memory=not args.no_tensor_memory,
                               clock=args.clock, quiet=args.quiet) if not args.no_timing else {
            "machine": machine_info([]), "results": []}
        if args.memory_model:
            report["memory_model"] = memory_model(args.memory_sizes, run_sizes=args.memory_run_sizes,
                                                  quiet=args.quiet)
        machine = report["machine"]
        print(f"CPU: {machine['cpu']} ({machine['cpu_cores']} cores, torch threads {machine['torch_threads']}); "
              f"GPU: {', '.join(g['name'] for g in machine['gpus']) or 'none'}; torch {machine['torch']}")
        if report["results"]:
            print(format_table(report["results"]))
        if "memory_model" in report:
            print(format_memory(report["memory_model"]))
    print(f"wrote {write_json(report, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
