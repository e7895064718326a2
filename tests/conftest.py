"""Shared fixtures: small images, random-weight VGGs, and the optional offline VGG16 from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nst_helpers import load_vgg

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NST_SHARED_DIR", ROOT.parent / "shared"))
SHARED_WEIGHTS = SHARED / "weights" / "vgg16_caffe_features_fp16.pth"
SHARED_IMAGES = SHARED / "images"


@pytest.fixture(autouse=True)
def _seed_and_clean_env(monkeypatch):
    """Seed every test and keep the user's NST_* variables from changing what a test means."""
    torch.manual_seed(0)
    for name in ("NST_WEIGHTS", "NST_VGG", "NST_INPUT_NORM", "NST_QUICK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def vgg19_random():
    return load_vgg(arch="vgg19", weights="random", input_norm="torchvision", device="cpu")


@pytest.fixture(scope="session")
def vgg16_random():
    return load_vgg(arch="vgg16", weights="random", input_norm="torchvision", device="cpu")


@pytest.fixture(scope="session")
def vgg16_shared():
    if not SHARED_WEIGHTS.is_file():
        pytest.skip(f"offline VGG16 weights not found at {SHARED_WEIGHTS} (../shared is absent)")
    return load_vgg(weights=str(SHARED_WEIGHTS), device="cpu")


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not (SHARED_IMAGES / "MANIFEST.csv").is_file():
        pytest.skip(f"sample images not found at {SHARED_IMAGES} (../shared is absent)")
    return SHARED_IMAGES


def smooth_image(height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    """A deterministic, smooth-ish test picture in [0, 1], [1, 3, H, W]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(2, height // 8), max(2, width // 8), generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def stripes_image(height: int = 48, width: int = 64, period: int = 6) -> torch.Tensor:
    """Diagonal colour stripes: a simple 'style' texture."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    phase = ((xx + yy) % period).float() / period
    return torch.stack([phase, 1 - phase, (phase * 2) % 1]).unsqueeze(0)
