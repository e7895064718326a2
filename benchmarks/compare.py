"""Is the fast path as good? Stylise the same pair twice (e.g. plain fp32 vs the defaults) and compare."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace

import torch

from nst_helpers import TransferConfig, load_image, sample_image, save_image, stylize
from nst_helpers.data import is_sample_name
from ours import PLAIN


def parse_settings(text: str) -> dict:
    """``"precision=fp32,channels_last=false"`` → TransferConfig overrides (true/false/none understood)."""
    settings: dict = {}
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


def compare_stylizations(
    content: str = "tubingen",
    style: str = "starry_night",
    *,
    size: int = 256,
    steps: int = 60,
    a: dict | None = None,
    b: dict | None = None,
    output: str | os.PathLike | None = None,
    device: str = "cpu",
    log: Callable[[str], object] = lambda message: None,
) -> dict:
    """Stylise the same pair with settings ``a`` and ``b``; report the pixel difference.

    ``a`` and ``b`` are :class:`~nst_helpers.TransferConfig` overrides (default:
    ``a`` = :data:`~ours.PLAIN`, every speed option off; ``b`` = the defaults).
    Both start from the same image with the same seed, so any difference comes
    from the numerics. ``output``: a PNG with content | A | B | 10 x |A - B|
    side by side.
    """
    a = dict(PLAIN) if a is None else a
    b = {} if b is None else b
    runs = []
    for settings in (a, b):
        config = replace(TransferConfig(), size=size, steps=steps, device=device, **settings)
        result = stylize(content, style, config)
        runs.append(result)
        log(f"  compare {settings or 'defaults'}: {result.summary()}")
    first, second = runs[0].image, runs[1].image
    diff = (first - second).abs()
    mse = diff.square().mean().item()
    report = {
        "content": content,
        "style": style,
        "size": size,
        "steps": steps,
        "a": a,
        "b": b,
        "max_abs_diff": diff.max().item(),
        "mean_abs_diff": diff.mean().item(),
        "psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else None,  # None: identical
        "seconds_a": runs[0].seconds,
        "seconds_b": runs[1].seconds,
        "final_loss_a": runs[0].history["total"][-1],
        "final_loss_b": runs[1].history["total"][-1],
    }
    if output is not None:
        original = load_image(sample_image(content) if is_sample_name(content) else content, max_size=size)
        panel = torch.cat([original, first, second, (10 * diff).clamp(0, 1)], dim=-1)
        report["image"] = str(save_image(panel, output))
    return report
