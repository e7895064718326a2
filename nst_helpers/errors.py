"""Exception types shared by the package.

Every error we raise on bad input derives from :class:`NSTError`, so the
command line (and a notebook cell) can show its one-line message instead of
a traceback from deep inside torch or PIL.
"""

from __future__ import annotations

__all__ = ["NSTError", "ImageLoadError", "ImageSaveError", "WeightsError", "SettingsError"]


class NSTError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class ImageLoadError(NSTError, ValueError):
    """An image could not be read, decoded or resized."""


class ImageSaveError(NSTError, OSError):
    """An image could not be written (the tensor is still in memory)."""


class WeightsError(NSTError, RuntimeError):
    """VGG weights could not be downloaded, found or loaded."""


class SettingsError(NSTError, ValueError):
    """A setting (layer name, weight, size, device ...) is invalid."""
