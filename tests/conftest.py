"""Shared fixtures: random-weight VGGs, the optional offline VGG16 and images from ../shared, a loopback
HTTP server. Plain helper functions are in helpers.py (import them with `from helpers import ...`)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import torch

from helpers import SHARED_IMAGES, SHARED_WEIGHTS, LoopbackHandler
from nst_helpers import load_vgg


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


@pytest.fixture(scope="session")
def local_server():
    """Base URL of an HTTP server on 127.0.0.1 answering as :class:`helpers.LoopbackHandler` says (no internet)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoopbackHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- notebooks (nbval)
# Kept here rather than in notebooks/conftest.py: two conftest.py files outside packages clash on the
# module name `conftest`. `make test` collects tests/ and notebooks/ in one run.


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
