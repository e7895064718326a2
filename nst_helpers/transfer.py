r"""The optimisation loop of Gatys et al.: :func:`stylize`.

Starting from an initial image :math:`\vec x` (the content photo, white
noise or the style image) we minimise Eq. (7) of the paper,

.. math:: L_{total} = \alpha L_{content} + \beta L_{style} + \gamma L_{TV},

by gradient descent on the pixels, with the VGG weights frozen. Style Gram
matrices and content targets are computed once, without gradients.

Design decisions (see also :mod:`nst_helpers.losses`):

* **Steps are VGG evaluations.** One L-BFGS closure call = one step = one
  Adam step, so ``steps=300`` costs the same for both optimisers.
* **Pixels stay in range without breaking L-BFGS.** The image is optimised
  unconstrained and clamped to [0, 1] *between* optimiser calls (every
  ``preview_every`` evaluations for L-BFGS, every step for Adam). Clamping
  inside the closure, as several tutorials do, moves the point L-BFGS is
  evaluating behind its back, so its line search and curvature pairs see a
  different image from the one they stepped to. After a clamp the stored
  last step is corrected by the clamp's displacement, so L-BFGS's next
  curvature pair stays exact (without that: loss spikes of up to 10⁵ right
  after clamps at 256 px).
* **Losses are relative (scale-free)** so a style weight means the same for
  torchvision's VGG19 and the Caffe-convention VGG16 at any image size.
* **Nothing is lost.** Ctrl-C / Jupyter's Stop, a non-finite loss or a CUDA
  out-of-memory error mid-run return a result holding the best image so far
  and the loss history, with ``status`` saying what happened.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import torch

from . import fastconv
from .data import is_sample_name, sample_image
from .errors import SettingsError
from .images import ImageSource, available_memory, load_image, resize_image, save_image, show_images
from .losses import gram_matrix, relative_squared_error, tv_loss
from .vgg import VGGFeatures, load_vgg

__all__ = [
    "TransferConfig",
    "TransferResult",
    "Objective",
    "SpeedOptions",
    "native_bf16",
    "Progress",
    "stylize",
    "pick_device",
    "estimate_memory",
    "DEFAULT_STYLE_LAYERS",
]

#: The paper's style layers with equal weights w_l = 1/5 (relu after conv1_1 ... conv5_1).
DEFAULT_STYLE_LAYERS = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@dataclass
class TransferConfig:
    """Settings of one style-transfer run. Every field has a working default.

    The defaults give a good picture at 512 px in ~300 L-BFGS steps: content
    at relu4_2 (the paper's conv4_2, after its ReLU), the paper's five style
    layers with equal weights, and a style/content ratio chosen on the
    relative losses of :mod:`nst_helpers.losses` by eye on the sample pairs
    (see the README).
    """

    size: int = 512  #: longest side of the content image, in pixels
    style_size: Optional[int] = None  #: longest side of the style image (None: same as ``size``)
    steps: int = 300  #: VGG evaluations (one L-BFGS closure call = one Adam step = one step)
    optimizer: str = "lbfgs"  #: "lbfgs" (the paper's choice) or "adam"
    lr: Optional[float] = None  #: learning rate; None → 1.0 for L-BFGS, 0.02 for Adam
    content_layers: tuple = ("relu4_2",)  #: layers whose features are matched to the content image
    style_layers: dict = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))  #: layer → w_l
    content_weight: float = 1.0  #: α, weight of the relative content loss
    style_weight: float = 10.0  #: β, weight of the relative style loss Σ w_l E_l
    tv_weight: float = 0.0  #: γ, weight of the total-variation smoothness loss (0: off)
    init: str = "content"  #: starting image: "content", "noise" (the paper) or "style"
    seed: int = 0  #: seeds the noise initialisation (and anything random)
    device: Optional[str] = None  #: None: CUDA → MPS → CPU, whichever is available
    preview_every: int = 20  #: call the callback (and clamp, for L-BFGS) every this many steps
    pooling: str = "max"  #: "max" (as trained) or "avg" (the paper's suggestion)
    precision: str = "auto"  #: VGG pass in fp32, bf16 or fp16; "auto": bf16 where the chip has native bf16, else fp32
    channels_last: Optional[bool] = None  #: NHWC convolutions; None: on for CUDA and for bf16, else off
    compile: bool = False  #: wrap the VGG pass in torch.compile (slower on CPU; untested on GPU here)
    winograd: Optional[bool] = None  #: CPU: Winograd convolutions (NNPACK); None: on for CPU fp32 if available
    check_memory: bool = True  #: refuse sizes whose estimated memory exceeds what is free

    def validate(self) -> "TransferConfig":
        """Raise :class:`SettingsError` with a clear message for any invalid field."""
        def positive_int(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a whole number ≥ 1, got {value!r}.")

        positive_int("size")
        positive_int("steps")
        positive_int("preview_every")
        if self.style_size is not None:
            positive_int("style_size")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise SettingsError(f"{name} must be a finite number ≥ 0, got {value!r}.")
        if self.content_weight == 0 and self.style_weight == 0:
            raise SettingsError("content_weight and style_weight are both 0: there is nothing to optimise.")
        if self.lr is not None and (isinstance(self.lr, bool) or not isinstance(self.lr, (int, float))
                                    or not math.isfinite(self.lr) or self.lr <= 0):
            raise SettingsError(f"lr must be a positive number, got {self.lr!r}.")
        for name, allowed in (("optimizer", OPTIMIZERS), ("init", INITS), ("precision", PRECISIONS),
                              ("pooling", ("max", "avg"))):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if isinstance(self.content_layers, str):
            self.content_layers = (self.content_layers,)
        if not self.content_layers and self.content_weight > 0:
            raise SettingsError("content_layers is empty but content_weight > 0; name at least one layer.")
        if not isinstance(self.style_layers, dict):
            self.style_layers = {name: 1.0 / len(self.style_layers) for name in self.style_layers}
        if not self.style_layers and self.style_weight > 0:
            raise SettingsError("style_layers is empty but style_weight > 0; name at least one layer.")
        for name, weight in self.style_layers.items():
            if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise SettingsError(f"Style layer weight for {name} must be a finite number ≥ 0, got {weight!r}.")
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "lbfgs" else 0.02)


@dataclass
class Progress:
    """What a callback sees every ``preview_every`` steps."""

    step: int  #: VGG evaluations done so far
    steps: int  #: evaluations planned
    losses: dict  #: the latest weighted terms: content, style, tv, total
    history: dict  #: term → list of values, one per step
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
    history: dict  #: "content", "style", "tv", "total" → one weighted value per step
    steps: int  #: VGG evaluations done
    seconds: float  #: wall time of the optimisation loop
    config: TransferConfig  #: the settings used
    device: str
    status: str = "completed"  #: completed | interrupted | stopped | non_finite | out_of_memory
    message: str = ""

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
            images, titles = [style] + images, ["style"] + titles
        if content is not None:
            images, titles = [content] + images, ["content"] + titles
        return show_images(images, titles)

    def summary(self) -> str:
        last = {key: values[-1] for key, values in self.history.items() if values}
        terms = ", ".join(f"{key} {value:.4g}" for key, value in last.items())
        return (f"{self.status}: {self.steps} steps in {self.seconds:.1f} s on {self.device}; "
                f"final losses: {terms}; best total {self.best_loss:.4g} at step {self.best_step}")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA → MPS → CPU, whichever is available first."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise SettingsError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:0' or 'mps'.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(
            "CUDA was requested but no CUDA GPU is available. In Colab: Runtime → Change runtime type → "
            "GPU. Otherwise use the CPU: device='cpu' (--device cpu on the command line), and a smaller size."
        )
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise SettingsError(f"{chosen} does not exist; this machine has {torch.cuda.device_count()} GPU(s).")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingsError("MPS (Apple GPU) was requested but is not available; use device='cpu' (--device cpu).")
    return chosen


# The memory model, checked by ``python -m nst_helpers.bench --memory-model`` (benchmarks/README.md).
# Measured, device-independently (bytes of the tensors a step creates): one VGG19 step peaks at
# 1.05x the activation bytes counted by _activation_elements in fp32, and at 1.48x the bf16 bytes
# in bf16 (the Grams and losses stay fp32) = 0.74x the fp32 bytes. Half precision is therefore
# counted at 3 bytes per element, not 2, and _MEMORY_FACTOR adds ~45% for what a CPU measurement
# cannot see: the CUDA allocator's rounding and fragmentation and cuDNN's workspaces.
_MEMORY_FACTOR = 1.5
# Image-sized fp32 buffers of a whole run, measured at 64-256 px: ~160 for L-BFGS (its 2 x 50
# history vectors, line-search copies, best/last/start image, gradient), ~20 for Adam.
_IMAGE_COPIES = 160


def _activation_elements(model: VGGFeatures, height: int, width: int, layers) -> int:
    """Elements of every module output up to the deepest of ``layers`` (batch 1)."""
    from torch import nn

    last = max(model.index[name] for name in layers)
    channels, h, w, activations = 3, height, width, 0
    for module in list(model.layers)[: last + 1]:
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            h, w = h // 2, w // 2
        activations += channels * h * w
    return activations


def _fixed_bytes(model: VGGFeatures, height: int, width: int, layers=None, precision: str = "fp32") -> int:
    """Bytes besides one step's activations: weights (+ their half-precision copies), the optimiser's
    image-sized buffers, and 64 MiB of slack."""
    stored = sum(p.numel() * p.element_size() for p in model.parameters())  # all of them sit on the device
    half = precision in ("bf16", "fp16")
    copies = 2 * sum(p.numel() for p in model.parameters()) if half else 0  # VGGFeatures.for_compute's copy
    return stored + copies + _IMAGE_COPIES * 3 * height * width * 4 + 64 * 2**20


def estimate_memory(model: VGGFeatures, height: int, width: int, layers, precision: str = "fp32") -> int:
    """Estimated peak bytes of a run at ``height x width``: one VGG forward + backward to the input,
    the optimiser's buffers and the weights.

    Sums the activations of every module up to the deepest needed layer
    (what autograd stores), times a measured overhead factor, plus the
    weights and image-sized buffers. Used to refuse sizes that would run out
    of memory halfway. ``precision="auto"`` counts as fp32.
    """
    element = 3 if precision in ("bf16", "fp16") else 4  # half precision: Grams and losses stay fp32
    activations = _activation_elements(model, height, width, layers)
    return int(_MEMORY_FACTOR * activations * element + _fixed_bytes(model, height, width, layers, precision))


def _free_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        return available_memory()
    return None


def _size_that_fits(model, height, width, layers, precision, free, below=None) -> int | None:
    """Largest ``size`` (longest side, a multiple of 16, below ``below``) whose estimate fits in ``free`` bytes.

    None when not even the smallest usable image fits (the weights alone are too big).
    """
    longest = max(height, width)
    minimum = model.min_input_size(layers)
    scale = math.sqrt(free / max(estimate_memory(model, height, width, layers, precision), 1))
    size = min(int(longest * scale), below or longest) // 16 * 16
    while size >= 16:  # step down from the guess: the weights are a fixed cost, so memory is not ∝ pixels
        h, w = max(1, round(height * size / longest)), max(1, round(width * size / longest))
        if min(h, w) >= minimum and estimate_memory(model, h, w, layers, precision) <= free:
            return size
        size -= 16
    return None


def _size_advice(fits: int | None, device) -> str:
    if fits is None:
        return (f"Not even a small image fits in the free memory on {device}: free some (close other notebooks "
                "or programs) or use another device")
    return f"Use size={fits} or smaller (a tensor input is used at its own size: resize it first)"


def _check_memory(model, height, width, layers, precision, device) -> None:
    free = _free_memory(device)
    if free is None:
        return
    needed = estimate_memory(model, height, width, layers, precision)
    if needed > 0.9 * free:
        fits = _size_that_fits(model, height, width, layers, precision, 0.9 * free)
        raise SettingsError(
            f"A {height}x{width} image needs about {needed / 2**30:.2f} GiB on {device}, but only "
            f"{free / 2**30:.2f} GiB is free. {_size_advice(fits, device)}, or pass check_memory=False to try "
            "anyway."
        )


def _as_image(source, max_size: int) -> torch.Tensor:
    if isinstance(source, str) and is_sample_name(source):
        source = sample_image(source)
    if isinstance(source, torch.Tensor):
        # Already-loaded tensors are used at their size; load_image checks shape, dtype (uint8 → /255)
        # and values, and makes them contiguous float32 on the CPU (L-BFGS needs a contiguous image).
        return load_image(source, max_size=None)
    return load_image(source, max_size=max_size)


def _out_of_memory_types() -> tuple:
    types = [getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)]
    return tuple(t for t in types if t is not None)


def _is_out_of_memory(error: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU and MPS allocators raise a plain RuntimeError."""
    if isinstance(error, _out_of_memory_types()):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        marker in text for marker in ("out of memory", "can't allocate memory", "not enough memory"))


class _NonFinite(Exception):
    pass


class _BudgetSpent(Exception):
    pass


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA compute capability 8.0+ (Ampere and newer), or a
    CPU with AMX or AVX-512 BF16 (Intel Sapphire Rapids and newer, AMD Zen 4 and newer)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type == "cpu":
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


@dataclass(frozen=True)
class SpeedOptions:
    """How the VGG pass runs: what :class:`TransferConfig`'s speed fields resolve to on one device."""

    channels_last: bool = False  #: NHWC convolutions
    precision: str = "fp32"  #: "fp32", "bf16" or "fp16" (the VGG pass; Grams and losses stay fp32)
    winograd: bool = False  #: Winograd CPU convolutions through NNPACK (:mod:`nst_helpers.fastconv`)
    compile: bool = False  #: torch.compile the VGG pass


def _fast_path(config: TransferConfig, device: torch.device) -> SpeedOptions:
    """What ``config``'s speed fields mean on ``device`` (resolves None and "auto").

    Chosen by the measurements in ``benchmarks/`` (README, Performance): bf16 wherever the hardware
    computes it natively (GPUs of compute capability 8.0+, CPUs with AMX / AVX-512 BF16: 2.1x alone;
    elsewhere bf16 is emulated and ~100x slower), NHWC with bf16 (oneDNN's fast AMX kernels are NHWC:
    2.8-5x the tutorial baseline together) and on CUDA, and Winograd convolutions in fp32 on CPUs where
    NNPACK runs (1.6x at 512 px on 2 Zen 3 cores, which have no native bf16).
    """
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = device.type == "cuda" or precision == "bf16"
    winograd = config.winograd
    if winograd is None:
        winograd = device.type == "cpu" and precision == "fp32" and fastconv.available()
    compile_ = bool(config.compile)
    return SpeedOptions(bool(channels_last), precision, bool(winograd) and not compile_, compile_)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Objective:
    r"""The loss of Eq. (7) for one content/style pair: targets computed once, then one call per step.

    ``objective(x)`` runs VGG once on the image ``x`` ([1, 3, H, W] in [0, 1])
    and returns the weighted terms ``[α·content, β·style, γ·TV]`` (float32,
    shape [3]); their sum is the loss. The content features :math:`P` and
    style Grams :math:`A` (and their squared norms, for the relative losses)
    are computed once, here, under ``torch.no_grad()``. ``speed`` says how the
    VGG pass runs (half precision, NHWC, Winograd, torch.compile); the Grams
    and losses are float32 whatever it says.
    """

    def __init__(self, model: VGGFeatures, content_image: torch.Tensor, style_image: torch.Tensor, *,
                 content_layers, style_layers: dict, content_weight: float = 1.0, style_weight: float = 10.0,
                 tv_weight: float = 0.0, speed: SpeedOptions = SpeedOptions()) -> None:
        self.model = model.for_compute(_DTYPES[speed.precision], speed.channels_last)
        self.speed = speed
        self.content_layers, self.style_layers = list(content_layers), dict(style_layers)
        self.layers = list(dict.fromkeys(self.content_layers + list(self.style_layers)))
        self.weights = (content_weight, style_weight, tv_weight)
        self._forward = torch.compile(self.features) if speed.compile else self.features
        with torch.no_grad():
            content = self.features(content_image, self.content_layers) if self.content_layers else {}
            self.content_targets = {name: value.float() for name, value in content.items()}
            self.content_norms = {name: value.square().sum(dim=(1, 2, 3))
                                  for name, value in self.content_targets.items()}
            style = self.features(style_image, list(self.style_layers)) if self.style_layers else {}
            self.style_grams = {name: gram_matrix(value) for name, value in style.items()}
            self.style_norms = {name: value.square().sum(dim=(1, 2)) for name, value in self.style_grams.items()}

    def features(self, image: torch.Tensor, layers) -> dict:
        """VGG features of ``image`` at ``layers``, computed the way ``speed`` says."""
        if self.speed.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with fastconv.winograd_convolutions() if self.speed.winograd else contextlib.nullcontext():
            return self.model(image, layers)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        features = self._forward(image, self.layers)
        zero = image.new_zeros((), dtype=torch.float32)
        content_term = zero
        for name in self.content_layers:
            content_term = content_term + relative_squared_error(
                features[name], self.content_targets[name], self.content_norms[name]) / len(self.content_layers)
        style_term = zero
        for name, weight in self.style_layers.items():
            style_term = style_term + weight * relative_squared_error(
                gram_matrix(features[name]), self.style_grams[name], self.style_norms[name])
        content_weight, style_weight, tv_weight = self.weights
        smooth_term = tv_loss(image) if tv_weight > 0 else zero
        return torch.stack([content_weight * content_term, style_weight * style_term, tv_weight * smooth_term])


def stylize(
    content: ImageSource,
    style: ImageSource,
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
            ``config.size`` / ``config.style_size``).
        config: a :class:`TransferConfig`; ``overrides`` replace its fields
            (``stylize(c, s, steps=50, style_weight=1e4)``).
        model: a :class:`~nst_helpers.vgg.VGGFeatures`; default
            :func:`~nst_helpers.vgg.load_vgg` (environment overrides apply).
        callback: called with a :class:`Progress` every
            ``config.preview_every`` steps and once at the end; return
            ``True`` to stop early.

    Interrupting (Ctrl-C, Jupyter's Stop) returns the partial result.
    """
    config = replace(config or TransferConfig(), **overrides).validate()
    device = pick_device(config.device)
    content_image = _as_image(content, config.size)  # bad images fail before any weights are loaded
    style_image = _as_image(style, config.style_size or config.size)
    if model is None:
        model = load_vgg(pooling=config.pooling, device=device)
    model = model.to(device)
    content_layers = model.check_layers(config.content_layers)
    style_layers = {name: float(w) for name, w in config.style_layers.items()}
    model.check_layers(style_layers)
    # A term with weight 0 needs no features (e.g. style reconstruction needs no relu4_2).
    content_layers = content_layers if config.content_weight > 0 else []
    style_layers = style_layers if config.style_weight > 0 else {}
    all_layers = list(dict.fromkeys(content_layers + list(style_layers)))

    height, width = content_image.shape[-2:]
    minimum = model.min_input_size(all_layers)
    for label, image in (("content", content_image), ("style", style_image)):
        short, long = sorted(image.shape[-2:])
        if short < minimum:
            needed = math.ceil(minimum * long / short)  # the longest side that makes the short side big enough
            fix = (f"use size={needed} or more" if needed <= 4096 else
                   "crop it to a less elongated shape first (e.g. with PIL's Image.crop)")
            raise SettingsError(
                f"The {label} image is {image.shape[-2]}x{image.shape[-1]} px after resizing, but the deepest "
                f"layer needs at least {minimum} px on each side: {fix}."
            )
    speed = _fast_path(config, device)
    if config.check_memory:
        _check_memory(model, height, width, all_layers, speed.precision, device)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        content_image, style_image = content_image.to(device), style_image.to(device)
        objective = Objective(model, content_image, style_image, content_layers=content_layers,
                              style_layers=style_layers, content_weight=config.content_weight,
                              style_weight=config.style_weight, tv_weight=config.tv_weight,
                              speed=speed)
        generator = torch.Generator(device="cpu").manual_seed(config.seed)
        if config.init == "content":
            start = content_image.clone()
        elif config.init == "noise":
            start = torch.rand(content_image.shape, generator=generator).to(device)
        else:
            start = resize_image(style_image, size=(height, width)).clone()
    except RuntimeError as error:
        if not _is_out_of_memory(error):
            raise
        _release(device)
        raise SettingsError(_oom_message(model, height, width, all_layers, speed.precision, device, 0)) from None

    x = start.requires_grad_(True)
    if config.optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS([x], lr=config.learning_rate, max_iter=config.preview_every,
                                      history_size=50, line_search_fn="strong_wolfe")
    else:
        optimizer = torch.optim.Adam([x], lr=config.learning_rate)

    rows: list[torch.Tensor] = []  # one [content, style, tv, total] row per step, on the device
    best_loss = torch.tensor(float("inf"), device=device)
    best_step = torch.tensor(0, device=device)
    best_image = start.detach().clone()
    last_image = start.detach().clone()
    step = 0
    budget = config.steps

    def evaluate() -> torch.Tensor:
        nonlocal step, best_loss, best_step
        if step >= budget:
            raise _BudgetSpent
        optimizer.zero_grad(set_to_none=True)
        terms = objective(x)
        total = terms.sum()
        total.backward()
        step += 1
        with torch.no_grad():
            value = total.detach()
            rows.append(torch.cat([terms.detach(), value.view(1)]))
            last_image.copy_(x.detach())
            better = value < best_loss  # stays on the device: no sync here
            best_loss = torch.where(better, value, best_loss)
            best_step = torch.where(better, torch.full_like(best_step, step), best_step)
            best_image.copy_(torch.where(better, x.detach(), best_image))
        if config.optimizer == "lbfgs" and not torch.isfinite(value):  # L-BFGS syncs on the loss anyway
            raise _NonFinite
        return total

    def history() -> dict:
        table = torch.stack(rows).cpu() if rows else torch.zeros(0, 4)
        return {key: table[:, i].tolist() for i, key in enumerate(("content", "style", "tv", "total"))}

    status, message = "completed", ""
    started = time.perf_counter()
    if callback is not None:  # step 0: the starting image (lets a progress bar start its clock now)
        callback(Progress(0, budget, {}, history(), start.detach().clamp(0, 1).cpu(), 0.0))
    try:
        while step < budget:
            chunk = min(config.preview_every, budget - step)
            if config.optimizer == "lbfgs":
                optimizer.param_groups[0]["max_iter"] = chunk
                optimizer.param_groups[0]["max_eval"] = chunk
                try:
                    optimizer.step(evaluate)
                except _BudgetSpent:
                    pass
            else:
                for _ in range(chunk):
                    evaluate()
                    optimizer.step()
                    with torch.no_grad():
                        x.clamp_(0.0, 1.0)
            if config.optimizer == "lbfgs":
                _clamp_keeping_lbfgs_consistent(optimizer, x)
            if rows and not torch.isfinite(rows[-1][3]):
                raise _NonFinite
            if callback is not None and step < budget:
                stop = callback(Progress(step, budget, _latest(rows), history(),
                                         last_image.clamp(0, 1).cpu(), time.perf_counter() - started))
                if stop is True:
                    status, message = "stopped", f"Stopped by the callback after {step} steps."
                    break
    except KeyboardInterrupt:
        status, message = "interrupted", f"Interrupted after {step} of {budget} steps; returning the best image so far."
    except _NonFinite:
        status = "non_finite"
        # Adam checks once per chunk: report the first bad step, not the chunk's end.
        first_bad = next((i + 1 for i, row in enumerate(rows) if not bool(torch.isfinite(row[3]))), step)
        message = (f"The loss became NaN or infinite at step {first_bad}; stopped and kept the best image before "
                   "that. Lower the learning rate or the weights.")
    except RuntimeError as error:
        if "without overflow" in str(error):  # e.g. Adam's step size lr / (1 - beta1) beyond float32 (lr ~1e38)
            status = "non_finite"
            message = (f"The optimiser's update overflowed float32 at step {step} (lr={config.learning_rate:g}); "
                       "stopped and kept the best image before that. Lower the learning rate.")
        elif _is_out_of_memory(error):
            optimizer.state.clear()
            _release(device)
            status = "out_of_memory"
            message = _oom_message(model, height, width, all_layers, speed.precision, device, step)
        else:
            raise
    seconds = time.perf_counter() - started
    if status not in ("completed", "stopped"):
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    # After a NaN/inf loss the last evaluated image is not trustworthy: hand back the best one before it.
    final = last_image if status != "non_finite" and bool(torch.isfinite(last_image).all()) else best_image
    result = TransferResult(
        image=final.detach().clamp(0, 1).cpu(),
        best_image=best_image.clamp(0, 1).cpu(),
        best_loss=float(best_loss),
        best_step=int(best_step),
        history=history(),
        steps=step,
        seconds=seconds,
        config=config,
        device=str(device),
        status=status,
        message=message,
    )
    if callback is not None:
        try:
            callback(Progress(step, budget, _latest(rows), result.history, result.image, seconds, done=True))
        except KeyboardInterrupt:
            pass
    return result


def _clamp_keeping_lbfgs_consistent(optimizer: torch.optim.LBFGS, x: torch.Tensor) -> None:
    """Clamp ``x`` to [0, 1] between L-BFGS calls, and tell L-BFGS where the point went.

    The next ``optimizer.step()`` builds its first curvature pair from the
    last step ``s = t * d`` and the change of gradient ``y`` since the point
    where that step started. A clamp moves the point after ``t * d`` was
    taken, so ``y`` would belong to a different ``s``: a wrong curvature pair,
    a wild first search direction, and (measured at 256 px) loss spikes of
    up to 10⁵ right after a clamp. Adding the clamp's displacement to the
    stored step makes the pair exact again.
    """
    with torch.no_grad():
        before = x.detach().clone()
        x.clamp_(0.0, 1.0)
        state = optimizer.state.get(x, {})
        direction, length = state.get("d"), state.get("t")
        if direction is not None and length:
            direction.add_((x.detach() - before).view(-1), alpha=1.0 / float(length))


def _latest(rows) -> dict:
    if not rows:
        return {}
    values = rows[-1].tolist()
    return dict(zip(("content", "style", "tv", "total"), values))


def _release(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _oom_message(model, height, width, layers, precision, device, step) -> str:
    free = _free_memory(device) or 0
    below = max(16, max(height, width) * 3 // 4)  # it did not fit: always suggest smaller than now
    fits = _size_that_fits(model, height, width, layers, precision, 0.8 * free, below) if free else None
    fits = fits or max(16, below // 16 * 16)
    done = f" after {step} steps (the best image so far is kept)" if step else ""
    other = ", or precision='bf16'" if precision == "fp32" else ""
    return (f"Ran out of memory on {device} at {height}x{width} px{done}. Memory was released; "
            f"try size={fits} or smaller{other}.")
