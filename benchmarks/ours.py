"""Our step: one evaluation of :func:`nst_helpers.stylize`'s loop, built from the package's own pieces.

A step is what one L-BFGS closure call (or one Adam step) costs:
:class:`~nst_helpers.Objective` (VGG forward to the deepest layer, relative
losses against targets computed once), the backward pass to the pixels and,
as in ``stylize``, the :class:`~nst_helpers.Recorder`'s per-step loss row and
best image kept on the device; no optimiser update. Each variant is a
:class:`~nst_helpers.SpeedOptions`.
"""

from __future__ import annotations

import torch

from nst_helpers import Objective, Recorder, SpeedOptions, TransferConfig, VGGFeatures, resolve_speed, stylize
from workload import CONTENT_LAYERS, STYLE_LAYERS

#: Our variants and their speed options, one option each on top of plain fp32 NCHW eager
#: (``no-bookkeeping`` is plain fp32 without the Recorder); ``defaults`` is resolved per device.
OURS = {
    "ours-fp32": SpeedOptions(),
    "channels-last": SpeedOptions(channels_last=True),
    "winograd": SpeedOptions(winograd=True),
    "bf16": SpeedOptions(precision="bf16"),
    "bf16-nhwc": SpeedOptions(precision="bf16", channels_last=True),
    "fp16": SpeedOptions(precision="fp16"),
    "compile": SpeedOptions(compile=True),
    "no-bookkeeping": SpeedOptions(),
    "defaults": None,
}
#: TransferConfig overrides that switch every speed option off: plain fp32, NCHW, eager, oneDNN convolutions.
PLAIN = {"precision": "fp32", "channels_last": False, "compile": False, "winograd": False}


def default_speed(device: torch.device) -> SpeedOptions:
    """What :func:`~nst_helpers.stylize` makes of :class:`~nst_helpers.TransferConfig`'s defaults on ``device``."""
    config = TransferConfig()
    return resolve_speed(device, config.precision, config.channels_last, config.winograd, config.compile)


def variant_speed(name: str, device: torch.device) -> SpeedOptions:
    """The speed options of our variant ``name`` on ``device``."""
    speed = OURS[name]
    return default_speed(device) if speed is None else speed


class OursStep:
    """One step of ``stylize``'s loop with the speed options ``speed``, without the optimiser update.

    ``bookkeeping=False`` leaves out the Recorder (to price it).
    """

    def __init__(
        self,
        model: VGGFeatures,
        content: torch.Tensor,
        style: torch.Tensor,
        speed: SpeedOptions,
        *,
        bookkeeping: bool = True,
        content_layers=CONTENT_LAYERS,
        style_layers=None,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
    ) -> None:
        self.speed = speed
        self.objective = Objective(
            model,
            content,
            style,
            content_layers=content_layers,
            style_layers=dict(STYLE_LAYERS if style_layers is None else style_layers),
            content_weight=content_weight,
            style_weight=style_weight,
            speed=speed,
        )
        self.model = self.objective.model  # a bf16 / NHWC copy where ``speed`` asks for one
        self.image = content.clone().requires_grad_(True)
        self.recorder = Recorder(content) if bookkeeping else None

    def __call__(self) -> torch.Tensor:
        self.image.grad = None  # what the optimiser's zero_grad(set_to_none=True) does
        terms = self.objective(self.image)
        total = terms.sum()
        total.backward()
        if self.recorder is not None:
            self.recorder.record(terms, self.image)
        return total


class StylizeRun:
    """``stylize()`` itself with its defaults; one sample = ``steps`` Adam steps, in seconds per step."""

    def __init__(
        self, model: VGGFeatures, content: torch.Tensor, style: torch.Tensor, device: torch.device, steps: int
    ) -> None:
        self.model = model  # stylize leaves it unchanged (speed options work on a copy)
        self.content, self.style, self.device, self.steps = content.cpu(), style.cpu(), device, steps

    def sample(self) -> float:
        result = stylize(
            self.content,
            self.style,
            model=self.model,
            device=str(self.device),
            steps=self.steps,
            optimizer="adam",
            preview_every=self.steps,
            check_memory=False,
        )
        return result.seconds / max(result.steps, 1)
