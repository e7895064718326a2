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


# --------------------------------------------------------------------------- notebooks (nbval)
# Kept here rather than in notebooks/conftest.py: two conftest modules would clash on
# `from conftest import ...`. `make test` collects tests/ and notebooks/ in one run.


def _missing_samples() -> str | None:
    from nst_helpers import SAMPLES, ImageLoadError, sample_image

    try:
        for name in SAMPLES:
            sample_image(name)
    except ImageLoadError as error:
        return str(error)
    return None


def pytest_collection_modifyitems(config, items):
    """Skip the notebooks, saying why, when the sample images cannot be had.

    The notebooks read the samples through ``sample_image`` (``NST_DATA_DIR`` or
    a download). With neither, every notebook would fail on its first image for
    a reason that has nothing to do with the notebook.
    """
    notebooks = [item for item in items if str(item.fspath).endswith(".ipynb")]
    if not notebooks:
        return
    problem = _missing_samples()
    if problem:
        skip = pytest.mark.skip(reason=f"notebooks need the sample images (set NST_DATA_DIR): {problem}")
        for item in notebooks:
            item.add_marker(skip)
