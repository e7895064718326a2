"""Notebook checks (nbval): skip, with the reason, when the sample images cannot be had.

The notebooks read the sample images through ``nst_helpers.sample_image``
(``NST_DATA_DIR`` or a download). On a machine with neither, every notebook
would fail on its first image for a reason that has nothing to do with the
notebook, so they are skipped and the reason is printed instead.
"""

import pytest


def _missing_samples() -> str | None:
    from nst_helpers import SAMPLES, ImageLoadError, sample_image

    try:
        for name in SAMPLES:
            sample_image(name)
    except ImageLoadError as error:
        return str(error)
    return None


def pytest_collection_modifyitems(config, items):
    notebooks = [item for item in items if str(item.fspath).endswith(".ipynb")]
    if not notebooks:
        return
    problem = _missing_samples()
    if problem:
        skip = pytest.mark.skip(reason=f"notebooks need the sample images (set NST_DATA_DIR): {problem}")
        for item in notebooks:
            item.add_marker(skip)
