"""The settings of a style-transfer run: :class:`TransferConfig`, with typed, commented defaults.

Every field has a working default; :meth:`TransferConfig.validate` checks
them all before anything is loaded, so a typo fails in a second with a
one-line message rather than halfway through a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .errors import SettingsError
from .image_files import ImageSource
from .optimizers import OPTIMIZERS, Optimizer
from .speed import PRECISIONS, Precision

__all__ = ["TransferConfig", "DEFAULT_STYLE_LAYERS", "INITS", "PRESERVE_COLORS", "blend_weights"]

#: The paper's style layers with equal weights w_l = 1/5 (relu after conv1_1 ... conv5_1).
DEFAULT_STYLE_LAYERS = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}
INITS = ("content", "noise", "style")
PRESERVE_COLORS = ("luminance", "histogram")  #: the two methods of Gatys et al. (2016), see :mod:`nst_helpers.colors`


@dataclass
class TransferConfig:
    """Settings of one style-transfer run. Every field has a working default.

    The defaults give a good picture at 512 px in ~300 L-BFGS steps: content
    at relu4_2 (the paper's conv4_2, after its ReLU), the paper's five style
    layers with equal weights, and a style/content ratio chosen on the
    relative losses of :mod:`nst_helpers.losses` by eye on the sample pairs.
    """

    size: int = 512  #: longest side of the content image, in pixels
    style_size: int | None = None  #: longest side of the style image (None: same as ``size``)
    #: style image size relative to the content's (neural-style's -style_scale): < 1 smaller brush strokes,
    #: > 1 larger ones; None: ``style_size``. Not together with ``style_size``.
    style_scale: float | None = None
    steps: int = 300  #: VGG evaluations (one L-BFGS closure call = one Adam step = one step)
    optimizer: Optimizer = "lbfgs"  #: "lbfgs" (the paper's choice) or "adam"
    lr: float | None = None  #: learning rate; None → 1.0 for L-BFGS, 0.02 for Adam
    content_layers: tuple[str, ...] = ("relu4_2",)  #: layers whose features are matched to the content image
    style_layers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))  #: layer → w_l
    content_weight: float = 1.0  #: α, weight of the relative content loss
    style_weight: float = 10.0  #: β, weight of the relative style loss Σ w_l E_l
    tv_weight: float = 0.0  #: γ, weight of the total-variation smoothness loss (0: off)
    init: Literal["content", "noise", "style"] = "content"  #: starting image ("noise" is the paper's)
    seed: int = 0  #: seeds the noise initialisation (and anything random)
    device: str | None = None  #: None: CUDA → MPS → CPU, whichever is available
    preview_every: int = 20  #: call the callback (and clamp, for L-BFGS) every this many steps
    pooling: Literal["max", "avg"] = "max"  #: "max" (as trained) or "avg" (the paper's suggestion)
    precision: Precision = "auto"  #: VGG pass in fp32, bf16 or fp16; "auto": see :mod:`nst_helpers.speed`
    channels_last: bool | None = None  #: NHWC convolutions; None: on for CUDA and for bf16, else off
    compile: bool = False  #: wrap the VGG pass in torch.compile (slower on CPU; untested on GPU here)
    winograd: bool | None = None  #: CPU: Winograd convolutions (NNPACK); None: on for CPU fp32 if available
    check_memory: bool = True  #: refuse sizes whose estimated memory exceeds what is free
    #: keep the content's colours: None, "luminance" (stylise Y only) or "histogram" (recolour the style first)
    preserve_colors: Literal["luminance", "histogram"] | None = None
    style_blend: tuple[float, ...] | None = None  #: one weight per style image (scaled to sum 1); None: equal
    #: one mask per style image (path, PIL image or tensor; white = this style); None: every style everywhere
    style_masks: Sequence[ImageSource] | None = None
    record_every: int = 0  #: keep a frame every this many steps for a replay (``result.frames``); 0: none
    #: coarse to fine (:mod:`nst_helpers.pyramid`): "auto" (halve down to ~128-256 px), "none" (one size) or
    #: the coarser sizes in px, e.g. (128, 256); ``steps`` counts the evaluations of all sizes together
    scales: Literal["auto", "none"] | tuple[int, ...] = "none"
    scale_steps: tuple[int, ...] | None = None  #: steps per size, coarsest first (then ``steps`` is their sum)

    def validate(self) -> TransferConfig:
        """A checked copy with the layer fields in their canonical form (tuple, dict); raises
        :class:`SettingsError` with a clear message for any invalid field. ``self`` is not changed."""
        for name in ("size", "steps", "preview_every") + (("style_size",) if self.style_size is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a whole number ≥ 1, got {value!r}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_weight(name, getattr(self, name))
        if isinstance(self.record_every, bool) or not isinstance(self.record_every, int) or self.record_every < 0:
            raise SettingsError(f"record_every must be a whole number ≥ 0 (0: no frames), got {self.record_every!r}.")
        if self.content_weight == 0 and self.style_weight == 0:
            raise SettingsError("content_weight and style_weight are both 0: there is nothing to optimise.")
        if self.lr is not None and (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not math.isfinite(self.lr)
            or self.lr <= 0
        ):
            raise SettingsError(f"lr must be a positive number, got {self.lr!r}.")
        for name, allowed in (
            ("optimizer", OPTIMIZERS),
            ("init", INITS),
            ("precision", PRECISIONS),
            ("pooling", ("max", "avg")),
        ):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        content_layers = (self.content_layers,) if isinstance(self.content_layers, str) else tuple(self.content_layers)
        if not content_layers and self.content_weight > 0:
            raise SettingsError("content_layers is empty but content_weight > 0; name at least one layer.")
        style_layers = self.style_layers
        if not isinstance(style_layers, dict):  # a list of names: equal weights
            style_layers = {name: 1.0 / len(style_layers) for name in style_layers}
        if not style_layers and self.style_weight > 0:
            raise SettingsError("style_layers is empty but style_weight > 0; name at least one layer.")
        for name, weight in style_layers.items():
            _check_weight(f"Style layer weight for {name}", weight)
        if self.preserve_colors not in (None, *PRESERVE_COLORS):
            raise SettingsError(
                f"preserve_colors must be None, 'luminance' or 'histogram', got {self.preserve_colors!r}."
            )
        if self.style_scale is not None:
            _check_weight("style_scale", self.style_scale)
            if self.style_scale == 0 or self.style_size is not None:
                raise SettingsError("style_scale must be > 0 and not given together with style_size; pick one.")
        scales, scale_steps = _check_scales(self.scales, self.scale_steps)
        style_blend = None if self.style_blend is None else blend_weights(self.style_blend)
        style_masks = self.style_masks
        if style_masks is not None and (isinstance(style_masks, (str, bytes)) or not isinstance(style_masks, Sequence)):
            style_masks = (style_masks,)  # one mask (a path, PIL image or tensor) for one style
        return replace(
            self,
            content_layers=content_layers,
            style_layers=dict(style_layers),
            style_blend=style_blend,
            style_masks=None if style_masks is None else tuple(style_masks),
            scales=scales,
            scale_steps=scale_steps,
            steps=self.steps if scale_steps is None else sum(scale_steps),
        )

    def check_style_count(self, count: int) -> None:
        """Raise :class:`SettingsError` unless ``style_blend`` and ``style_masks`` give one entry per style image."""
        for name in ("style_blend", "style_masks"):
            value = getattr(self, name)
            if value is not None and len(value) != count:
                styles = "is 1 style image" if count == 1 else f"are {count} style images"
                raise SettingsError(
                    f"{name} has {len(value)} entries but there {styles}; give one per style image, in the same order."
                )

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default."""
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "lbfgs" else 0.02)


def blend_weights(blend: Sequence[float] | None, count: int | None = None) -> tuple[float, ...]:
    """The blend weights scaled to sum 1 (``None``: ``count`` equal weights); :class:`SettingsError` if invalid.

    Each must be a finite number ≥ 0 and not all 0; with ``count``, there must be ``count`` of them.
    """
    if blend is None:
        if not count:
            raise SettingsError("There must be at least one style image.")
        return (1.0 / count,) * count
    if isinstance(blend, (str, bytes)) or not isinstance(blend, Sequence):
        raise SettingsError(
            f"style_blend must be a sequence of numbers, one per style image, e.g. (0.7, 0.3); got {blend!r}."
        )
    for index, weight in enumerate(blend):
        _check_weight(f"style_blend[{index}]", weight)
    total = sum(float(weight) for weight in blend)
    if total == 0:
        raise SettingsError("style_blend weights are all 0; give at least one style a weight > 0.")
    if count is not None and len(blend) != count:
        raise SettingsError(f"style_blend has {len(blend)} weights for {count} style images; give one per style image.")
    return tuple(float(weight) / total for weight in blend)


def _check_weight(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise SettingsError(f"{name} must be a finite number ≥ 0, got {value!r}.")


def _check_scales(scales: object, scale_steps: object) -> tuple:
    """``scales`` and ``scale_steps`` in canonical form ("auto" / "none" / tuple of ints; None / tuple of ints)."""
    if isinstance(scales, str):
        if scales not in ("auto", "none"):
            raise SettingsError(f"scales must be 'auto', 'none' or a list of sizes in px, got {scales!r}.")
    elif not isinstance(scales, Sequence) or not scales or not all(_whole(size) for size in scales):
        raise SettingsError(f"scales must be 'auto', 'none' or a list of sizes in px (whole numbers), got {scales!r}.")
    else:
        scales = tuple(int(size) for size in scales)
    if scale_steps is None:
        return scales, None
    if isinstance(scale_steps, str) or not isinstance(scale_steps, Sequence) or not scale_steps:
        raise SettingsError(f"scale_steps must be a list of step counts, one per size, got {scale_steps!r}.")
    if not all(_whole(count) for count in scale_steps):
        raise SettingsError(f"scale_steps must be whole numbers ≥ 1, got {scale_steps!r}.")
    return scales, tuple(int(count) for count in scale_steps)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
